"""``convforge.collapse``: a trained model with its collapsible linear blocks folded into plain convolutions."""

from __future__ import annotations

import copy

from torch import nn

from convforge.errors import ConvforgeError
from convforge.nn.collapsible_linear import CollapsibleLinearBlock


def collapsible_blocks(model: nn.Module) -> list[tuple[str, CollapsibleLinearBlock]]:
    """The model's collapsible linear blocks, by qualified name."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, CollapsibleLinearBlock)]


def collapse(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in its compact inference form: every collapsible block replaced by one ``nn.Conv2d``.

    The original model is left as it was. A model without collapsible blocks is refused.
    """
    if not collapsible_blocks(model):
        raise ConvforgeError(f"{type(model).__name__} has no collapsible linear blocks to collapse")
    compact = copy.deepcopy(model)
    for name, block in collapsible_blocks(compact):
        conv = block.collapse()
        conv.train(block.training)
        if name == "":
            return conv
        compact.set_submodule(name, conv)
    return compact
