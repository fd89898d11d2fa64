"""A trained model in the form it should ship in: every train-time structure folded away, the function kept."""

from __future__ import annotations

import copy

from torch import nn

from convforge.surgery.collapse import collapse, collapsible_blocks
from convforge.surgery.fuse_bn import fuse_bn


def inference_form(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in evaluation mode with its collapsible linear blocks collapsed (SESR), timm's
    re-parameterisable branches merged (its ``reparameterize_model``), and BatchNorm folded into convolutions.

    The output equals the original's to float tolerance; the original is left as it was.
    """
    model = collapse(model) if collapsible_blocks(model) else copy.deepcopy(model)
    if _has_timm_reparameterisation(model):
        from timm.utils.model import reparameterize_model

        model = reparameterize_model(model, inplace=True)
    return fuse_bn(model.eval())


def reparameterize(model: nn.Module) -> nn.Module:
    """Fold every re-parameterisable structure of ``model`` into its inference form, in one call: SESR's
    collapsible blocks, RepVGG and MobileOne branches (and any timm block with ``reparameterize``), BatchNorm into
    convolutions, timm models included. The same operation as :func:`inference_form`, under the name timm users
    know; the original is left as it was."""
    return inference_form(model)


def _has_timm_reparameterisation(model: nn.Module) -> bool:
    """Whether timm's ``reparameterize_model`` applies: some module has a ``reparameterize``, ``fuse`` or
    ``switch_to_deploy`` method, and none uses one of those names for a submodule (which timm would call)."""
    names = ("reparameterize", "fuse", "switch_to_deploy")
    attributes = [getattr(m, name) for m in model.modules() for name in names if hasattr(m, name)]
    return bool(attributes) and all(callable(a) and not isinstance(a, nn.Module) for a in attributes)
