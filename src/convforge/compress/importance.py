"""Channel importance criteria, by name, on Torch-Pruning's implementations."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch_pruning as tp
from torch import nn

from convforge.errors import InvalidValueError

IMPORTANCES = {
    "l1": "weight magnitude, L1 norm",
    "l2": "weight magnitude, L2 norm",
    "bn": "BatchNorm scale |γ| (layers without BatchNorm fall back to nothing)",
    "taylor": "first-order Taylor |w · ∂L/∂w|, from a few real batches",
    "lamp": "layer-adaptive magnitude (LAMP)",
    "fpgm": "distance to the filters' geometric median (FPGM)",
    "random": "random scores: the baseline every criterion must beat",
}

TaylorLoss = Callable[[nn.Module], torch.Tensor]  # the loss of a model on a few real batches


def check_importance(name: str) -> str:
    if name not in IMPORTANCES:
        raise InvalidValueError(f"importance {name!r} is not known; use one of {', '.join(IMPORTANCES)}")
    return name


def build_importance(name: str) -> tp.importance.Importance:
    """Torch-Pruning's criterion for ``name``."""
    check_importance(name)
    if name in ("l1", "l2"):
        return tp.importance.MagnitudeImportance(p=1 if name == "l1" else 2)
    return {
        "bn": tp.importance.BNScaleImportance,
        "taylor": tp.importance.TaylorImportance,
        "lamp": tp.importance.LAMPImportance,
        "fpgm": tp.importance.FPGMImportance,
        "random": tp.importance.RandomImportance,
    }[name]()


def prepare_gradients(model: nn.Module, importance: str, taylor_loss: TaylorLoss | None) -> None:
    """Taylor importance reads ``.grad``: compute the loss's gradients on ``model`` (other criteria need none)."""
    if importance != "taylor":
        return
    if taylor_loss is None:
        raise InvalidValueError("importance 'taylor' needs gradients: pass taylor_loss, a function of the model that "
                                "returns its loss on a few real batches")  # fmt: skip
    was_training = model.training
    model.eval()  # BatchNorm statistics stay as trained
    model.zero_grad(set_to_none=True)
    try:
        with torch.enable_grad():
            taylor_loss(model).backward()
    finally:
        model.train(was_training)
