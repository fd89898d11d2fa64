"""Run convforge's fast functional paths through their modules while a model is traced for pruning.

Some blocks compute with weights they assemble in ``forward`` (a collapsible linear block in
collapsed mode, a parallel residual stack fused into one convolution). Torch-Pruning follows
modules, so while a model is traced and pruned these blocks take their module-by-module
path, which computes the same function; afterwards they take their fast path again.
"""

from __future__ import annotations

from torch import nn

from convforge.nn.collapsible_linear import CollapsibleLinearBlock
from convforge.nn.residual_stack import ParallelResidualStack

Saved = list[tuple[str, str, object]]  # (module name, attribute, value before)


def use_module_paths(model: nn.Module) -> Saved:
    """Make ``model``'s collapsible blocks run expanded and its parallel stacks unfused; returns what to restore."""
    saved: Saved = []
    for name, module in model.named_modules():
        if isinstance(module, CollapsibleLinearBlock):
            saved.append((name, "mode", module.mode))
            module.mode = "expanded"
        elif isinstance(module, ParallelResidualStack):
            saved.append((name, "fused", module.fused))
            module.fused = False
    return saved


def restore(model: nn.Module, saved: Saved) -> None:
    """Put back what :func:`use_module_paths` changed (on ``model`` or a copy of it)."""
    modules = dict(model.named_modules())
    for name, attr, value in saved:
        module = modules[name]
        setattr(module, attr, value)
        if isinstance(module, ParallelResidualStack):
            module.reset_fusion()


def folded_layers(model: nn.Module) -> list[str]:
    """Layers whose output channels vanish when their block runs folded (a collapsed block's expansion): pruning
    them saves nothing at inference, so they are left alone."""
    return [f"{name}.expand" if name else "expand" for name, module in model.named_modules()
            if isinstance(module, CollapsibleLinearBlock) and module.mode == "collapsed"]  # fmt: skip
