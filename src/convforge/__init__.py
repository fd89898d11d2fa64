"""convforge: build, measure, train, transform, search and explain efficient convolutional networks.

The public names load on first use (PEP 562), so that ``import convforge`` and the
command line start without importing torch. The model registry's names come from
:mod:`convforge.models`, whose import registers every built-in family once.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it
_PUBLIC = {
    **dict.fromkeys(("create_model", "get_model_info", "list_models", "register_model"), "convforge.models"),
    **dict.fromkeys(("ConvforgeError", "ForwardError", "UnknownModelError"), "convforge.errors"),
    "export": "convforge.engine.export",
    **dict.fromkeys(("predict", "predict_files"), "convforge.engine.predict"),
    "Recipe": "convforge.engine.recipe",
    **dict.fromkeys(("evaluate", "train"), "convforge.engine.trainer"),
    "LinearScope": "convforge.explain",
    "search": "convforge.nas",
    **dict.fromkeys(("ProfileResult", "measure_latency", "profile"), "convforge.profiler"),
    **dict.fromkeys(("collapse", "fuse_bn", "taylor_truncate", "to_parallel", "to_sequential"), "convforge.surgery"),
    "detect": "convforge.tasks.detect",
    "upscale": "convforge.tasks.sr",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'convforge' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
