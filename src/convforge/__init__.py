"""convforge: build, measure, train, transform, search and explain efficient convolutional networks."""

from convforge import models as _models  # noqa: E402,F401,I001 - the built-in families register themselves, once
from convforge.engine.export import export
from convforge.engine.predict import predict, predict_files
from convforge.engine.recipe import Recipe
from convforge.engine.trainer import evaluate, train
from convforge.errors import ConvforgeError, ForwardError, UnknownModelError
from convforge.explain import LinearScope
from convforge.nas import search
from convforge.profiler import ProfileResult, measure_latency, profile
from convforge.registry import create_model, get_model_info, list_models, register_model
from convforge.surgery import collapse, fuse_bn, taylor_truncate, to_parallel, to_sequential
from convforge.tasks.detect import detect
from convforge.tasks.sr import upscale

__version__ = "0.1.0"

__all__ = [
    "ConvforgeError",
    "ForwardError",
    "LinearScope",
    "ProfileResult",
    "Recipe",
    "UnknownModelError",
    "collapse",
    "create_model",
    "detect",
    "evaluate",
    "export",
    "fuse_bn",
    "get_model_info",
    "list_models",
    "measure_latency",
    "predict",
    "predict_files",
    "profile",
    "register_model",
    "search",
    "taylor_truncate",
    "to_parallel",
    "to_sequential",
    "train",
    "upscale",
]
