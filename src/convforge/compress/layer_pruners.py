"""Torch-Pruning handlers for convforge layers it cannot follow on its own.

:class:`~convforge.nn.pad_shortcut.PadShortcut` (the option-A shortcut of CIFAR ResNets)
zero-pads channels: its outputs are not its inputs one to one, so Torch-Pruning's default
(an element-wise op) misaligns the residual sum. Its handler removes output channels from
the shortcut's ``sources`` list, and turns outputs whose input channel was removed into
zero channels, as pruning does to a convolution's input weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from convforge.nn.pad_shortcut import PadShortcut


class PadShortcutPruner(tp.pruner.BasePruningFunc):
    """Prunes a :class:`PadShortcut` by editing its ``sources`` (output j copies input ``sources[j]`` or is zero)."""

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        removed = set(int(i) for i in idxs)
        layer.sources = [s for j, s in enumerate(layer.sources) if j not in removed]
        return layer

    def prune_in_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        removed = set(int(i) for i in idxs)
        renumber, kept = {}, 0
        for i in range(layer.in_channels):
            if i not in removed:
                renumber[i] = kept
                kept += 1
        layer.sources = [renumber.get(s, -1) if s >= 0 else -1 for s in layer.sources]
        layer.in_channels = kept
        return layer

    def get_out_channels(self, layer: nn.Module) -> int:
        return layer.out_channels

    def get_in_channels(self, layer: nn.Module) -> int:
        return layer.in_channels


LAYER_PRUNERS: dict[type[nn.Module], tp.pruner.BasePruningFunc] = {PadShortcut: PadShortcutPruner()}


def dependency_graph(model: nn.Module, example: torch.Tensor, output_transform: Any = None) -> tp.DependencyGraph:
    """Torch-Pruning's dependency graph of ``model`` traced at ``example``, with convforge's layer handlers."""
    with torch.enable_grad():
        return tp.DependencyGraph().build_dependency(model, example, output_transform=output_transform,
                                                     customized_pruners=dict(LAYER_PRUNERS), verbose=False)  # fmt: skip
