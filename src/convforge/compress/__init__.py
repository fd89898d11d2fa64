"""Compression: structured pruning (on Torch-Pruning), INT8 quantisation (on onnxruntime) and distillation losses.

Every pruned model records its structure (:mod:`convforge.runs.structure`), so it saves as
safetensors and rebuilds from its registered name without pickle. Names load on first use,
so that the distillation losses import without Torch-Pruning.
"""

from __future__ import annotations

from convforge.lazy_names import lazy_names

_PUBLIC = {
    **dict.fromkeys(("prune", "PruneResult", "PruningError", "LayerWidth"), "convforge.compress.pruning"),
    "PruneTarget": "convforge.compress.pruning_target",
    **dict.fromkeys(("prune_run", "sensitivity_run", "PruneRunResult"), "convforge.compress.prune_run"),
    **dict.fromkeys(("layer_sensitivity", "prunable_groups"), "convforge.compress.sensitivity"),
    **dict.fromkeys(("hinton_kd_loss", "output_distillation_loss"), "convforge.compress.distillation"),
    "IMPORTANCES": "convforge.compress.importance",
    **dict.fromkeys(("quantize", "QuantizeResult"), "convforge.compress.quantization"),
    "compare_speed": "convforge.compress.speed_comparison",
}

__all__ = sorted(_PUBLIC)


__getattr__, __dir__ = lazy_names(__name__, _PUBLIC)
