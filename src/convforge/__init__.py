"""convforge: build, measure, train, transform, search and explain efficient convolutional networks."""

from convforge.errors import ConvforgeError, ForwardError, UnknownModelError
from convforge.profile import ProfileResult, measure_latency, profile
from convforge.registry import create_model, get_model_info, list_models, register_model

__version__ = "0.1.0"

__all__ = [
    "ConvforgeError",
    "ForwardError",
    "ProfileResult",
    "UnknownModelError",
    "create_model",
    "get_model_info",
    "list_models",
    "measure_latency",
    "profile",
    "register_model",
]
