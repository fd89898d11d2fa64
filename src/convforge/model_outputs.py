"""A model's outputs, whatever their nesting: one tensor, or lists, tuples and dicts of them."""

from __future__ import annotations

from typing import Any

import torch


def output_shapes(output: Any) -> Any:
    """The output's shape, or the same nesting of lists and dicts with each tensor's shape (None for non-tensors)."""
    if isinstance(output, torch.Tensor):
        return tuple(output.shape)
    if isinstance(output, dict):
        return {k: output_shapes(v) for k, v in output.items()}
    if isinstance(output, (list, tuple)):
        return [output_shapes(o) for o in output]
    return None


def output_tensors(output: Any) -> list[torch.Tensor]:
    """Every tensor in the output, in order."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        return [t for o in output for t in output_tensors(o)]
    return []
