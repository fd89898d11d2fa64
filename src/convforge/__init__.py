"""convforge: build, measure, train, transform, search and explain efficient convolutional networks.

The public names load on first use (PEP 562), so that ``import convforge`` and the
command line start without importing torch. The model registry's names come from
:mod:`convforge.models`, whose import registers every built-in family once.
"""

from __future__ import annotations

from convforge.lazy_names import lazy_names

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
    **dict.fromkeys(("prune", "prune_run", "quantize"), "convforge.compress"),
    "search": "convforge.nas",
    **dict.fromkeys(("ProfileResult", "measure_latency", "profile"), "convforge.profiler"),
    **dict.fromkeys(
        ("collapse", "fuse_bn", "inference_form", "reparameterize", "taylor_truncate", "to_parallel", "to_sequential"),
        "convforge.surgery",
    ),
    "detect": "convforge.tasks.detect",
    "compare_models": "convforge.experiments",
    "explain_file": "convforge.explain.image_file",
    "list_runs": "convforge.runs.run_listing",
    "model_rows": "convforge.model_table",
    "run_study": "convforge.experiments.deep_vs_shallow",
    "validation_report": "convforge.engine.validation_report",
    "upscale": "convforge.tasks.sr",
}

__all__ = sorted(_PUBLIC)


__getattr__, __dir__ = lazy_names(__name__, _PUBLIC)
