"""``convforge.fuse_bn``: fold BatchNorm layers into the convolutions that feed them, for inference.

In evaluation mode a BatchNorm after a convolution is an affine map per channel,
y = γ·(x − μ)/√(σ² + ε) + β, so it folds into the convolution's weight and bias:

    W' = W · s,   b' = (b − μ) · s + β,   with s = γ / √(σ² + ε) per output channel.

A BatchNorm (``nn.BatchNorm1d/2d/3d`` exactly; subclasses such as timm's
``BatchNormAct2d`` also apply an activation and are left alone) folds when its only
input is a convolution whose output nothing else reads. Such pairs are found by tracing
the model with ``torch.fx``; a model that cannot be traced is searched for convolution →
BatchNorm neighbours inside ``nn.Sequential`` containers instead. Folded BatchNorms
become ``nn.Identity``; the model is copied, never changed in place.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.fx
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from convforge.errors import ConvforgeError

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)  # exactly these: subclasses may do more (timm's BatchNormAct)


# what symbolic tracing raises on code it cannot follow (control flow on proxies, unsupported calls)
_TRACE_FAILURES = (torch.fx.proxy.TraceError, TypeError, ValueError, RuntimeError, AttributeError, KeyError,
                   IndexError, NotImplementedError, AssertionError)  # fmt: skip


def _is_norm(module: nn.Module | None) -> bool:
    return type(module) in _NORMS


def fold_batch_norm(conv: nn.Conv1d | nn.Conv2d | nn.Conv3d, norm: nn.modules.batchnorm._BatchNorm) -> nn.Module:
    """A copy of ``conv`` that computes ``norm(conv(x))`` as ``norm`` does in evaluation mode
    (``torch.nn.utils.fusion.fuse_conv_bn_eval``, after checking that the pair can fold)."""
    if norm.running_mean is None or norm.running_var is None:
        raise ConvforgeError("a BatchNorm without running statistics (track_running_stats=False) cannot be folded")
    if norm.num_features != conv.out_channels:
        raise ConvforgeError(f"a BatchNorm of {norm.num_features} channels cannot follow a conv with "
                             f"{conv.out_channels} outputs")  # fmt: skip
    if conv.training or norm.training:  # fold the evaluation-mode maps, leaving the caller's modules as they are
        conv, norm = copy.deepcopy(conv).eval(), copy.deepcopy(norm).eval()
    return fuse_conv_bn_eval(conv, norm)


def _pairs_by_tracing(model: nn.Module) -> list[tuple[str, str]] | None:
    """(conv name, norm name) pairs where the norm reads only the conv and only the norm reads the conv."""
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except _TRACE_FAILURES:  # data-dependent control flow and the like: use the structural search
        return None
    modules = dict(model.named_modules())
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not _is_norm(modules.get(node.target)) or len(node.args) != 1:
            continue
        source = node.args[0]
        if (isinstance(source, torch.fx.Node) and source.op == "call_module"
                and isinstance(modules.get(source.target), _CONVS) and len(source.users) == 1):  # fmt: skip
            pairs.append((source.target, node.target))
    return pairs


def _pairs_in_sequentials(model: nn.Module) -> list[tuple[str, str]]:
    pairs = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Sequential):
            children = list(module.named_children())
            for (first_name, first), (second_name, second) in zip(children, children[1:]):
                if isinstance(first, _CONVS) and _is_norm(second):
                    prefix = f"{name}." if name else ""
                    pairs.append((prefix + first_name, prefix + second_name))
    return pairs


def fuse_bn(model: nn.Module, where: Callable[[nn.Module], bool] | None = None) -> nn.Module:
    """A copy of ``model`` in evaluation mode with every foldable BatchNorm folded into its convolution.

    ``where``, if given, limits the folding to pairs whose convolution sits directly
    in a module for which ``where(module)`` is true, e.g. only the "Conv" units of a
    network, as some papers count their FLOPs.
    """
    fused = copy.deepcopy(model).eval()
    pairs = _pairs_by_tracing(fused)
    if pairs is None:
        pairs = _pairs_in_sequentials(fused)
    if where is not None:
        pairs = [(c, n) for c, n in pairs if where(fused.get_submodule(c.rpartition(".")[0]))]
    for conv_name, norm_name in pairs:
        conv, norm = fused.get_submodule(conv_name), fused.get_submodule(norm_name)
        fused.set_submodule(conv_name, fold_batch_norm(conv, norm))
        fused.set_submodule(norm_name, nn.Identity())
    return fused
