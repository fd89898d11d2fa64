"""Putting a checkpoint's tensors into a model: every mismatch and every non-finite value named, in one sentence."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from convforge.errors import ConvforgeError

SHOWN = 3  # tensor names quoted per kind of mismatch


def _some(names: list[str]) -> str:
    return ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def load_weights(model: nn.Module, weights: Mapping[str, torch.Tensor], source: str, made_for: str = "") -> None:
    """Load ``weights`` into ``model`` exactly, or raise one sentence: which tensors are missing, unexpected or of
    another shape (``made_for``: the model the checkpoint says it holds), or which hold NaN or infinity."""
    bad = [name for name, t in weights.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise ConvforgeError(f"{source} holds non-finite values (NaN or infinity) in {_some(bad)}: the training "
                             "diverged before it was saved; use an earlier checkpoint")  # fmt: skip
    own = model.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    reshaped = [f"{k} {tuple(weights[k].shape)} for {tuple(own[k].shape)}" for k in own
                if k in weights and weights[k].shape != own[k].shape]  # fmt: skip
    if missing or unexpected or reshaped:
        parts = [f"{label}: {_some(names)}" for label, names in
                 (("missing", missing), ("unexpected", unexpected), ("other shapes", reshaped)) if names]  # fmt: skip
        made = f" (it was made for {made_for})" if made_for else ""
        raise ConvforgeError(f"the weights in {source} do not fit the model{made}; {'; '.join(parts)}")
    model.load_state_dict(weights)
