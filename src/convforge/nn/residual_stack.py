"""Residual stacks of equal width in three layouts: sequential, parallel, and Taylor order n.

A stack of L residual branches F_1 … F_L composes, in the sequential (deep) layout, to
``y = (I + F_L) ∘ … ∘ (I + F_1)(x)``. For linear branches the product expands exactly:
``y = x + Σ_k F_k x + Σ_{j<k} F_k F_j x + … + F_L ⋯ F_1 x``. Keeping the terms of order
up to n gives :class:`TaylorResidualStack`; order 1 is the parallel (shallow) layout,
``y = x + Σ_k F_k(x)``, and order L is the sequential one.

All three layouts hold the same branch modules under the same names
(``branches.0.conv.weight`` …), so they have exactly the same parameters and their
state dicts load into one another.

For non-linear branches the expansion is convforge's own definition: the order-m term
after branch k is the order-m term before it plus ``F_k`` applied to the order-(m−1)
term accumulated by the branches before k. Order 1 is still exactly the parallel
layout; order L equals the sequential layout only when the branches are linear.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from timm.layers import create_act_layer, get_act_layer
from torch import nn

from convforge.errors import InvalidValueError

# activation names a residual branch takes; timm.layers builds them (``hardswish`` is timm's ``hard_swish``)
ACTIVATIONS = ("relu", "relu6", "leaky_relu", "elu", "gelu", "silu", "hardswish", "tanh", "sigmoid", "identity")
_TIMM_NAMES = {"hardswish": "hard_swish"}
NORMS = ("batch", "none")


def make_activation(act: str | type[nn.Module] | nn.Module) -> nn.Module:
    """An activation module from a name in :data:`ACTIVATIONS` (built by ``timm.layers.create_act_layer``),
    a module class or a module."""
    if isinstance(act, nn.Module):
        return act
    if isinstance(act, type) and issubclass(act, nn.Module):
        return act()
    if isinstance(act, str) and act.lower() in ACTIVATIONS:
        return create_act_layer(_TIMM_NAMES.get(act.lower(), act.lower()))
    raise InvalidValueError(f"activation {act!r} is not known; use one of {', '.join(ACTIVATIONS)} or a module class")


def _is_elementwise_activation(act: nn.Module) -> bool:
    """Whether ``act`` is a parameter-free element-wise activation, so one call on all branches at once equals one
    call per branch."""
    return type(act) in _ELEMENTWISE and next(act.parameters(), None) is None


_ELEMENTWISE = {get_act_layer(_TIMM_NAMES.get(n, n)) for n in ACTIVATIONS} | {
    nn.GELU, nn.Sigmoid, nn.Tanh, nn.Mish, nn.Softplus, nn.Hardsigmoid, nn.Hardtanh}  # fmt: skip


class ResidualBranch(nn.Module):
    """One residual branch, ``F(h) = scale · act(norm(conv(h)))``, mapping c channels to c.

    The convolution is k×k, stride 1, "same" padding. It has a bias when there is no
    norm (unless ``bias`` says otherwise).
    """

    def __init__(
        self,
        channels: int,
        kernel: int = 3,
        act: str | type[nn.Module] | nn.Module = "relu",
        norm: str | None = "batch",
        scale: float = 1.0,
        bias: bool | None = None,
    ) -> None:
        super().__init__()
        norm = "none" if norm is None else norm
        _check_positive_int("channels", channels, MAX_WIDTH)
        if not isinstance(kernel, int) or isinstance(kernel, bool) or kernel < 1 or kernel % 2 == 0:
            raise InvalidValueError(f"kernel = {kernel!r} is not allowed; use an odd positive integer (1, 3, 5, ...)")
        if norm not in NORMS:
            raise InvalidValueError(f"norm = {norm!r} is not allowed; use one of {', '.join(NORMS)}")
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
            raise InvalidValueError(f"branch scale = {scale!r} is not allowed; use a finite number")
        bias = norm == "none" if bias is None else bias
        self.conv = nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=bias)
        self.norm = nn.BatchNorm2d(channels) if norm == "batch" else nn.Identity()
        self.act = make_activation(act)
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.norm(self.conv(x)))
        return y if self.scale == 1.0 else y * self.scale

    def extra_repr(self) -> str:
        return f"scale={self.scale}" if self.scale != 1.0 else ""


MAX_DEPTH = 10_000  # branches in one stack, as many blocks as a whole spec may hold
MAX_WIDTH = 65_536  # channels, as in specs


def _check_positive_int(name: str, value: object, most: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
        raise InvalidValueError(f"{name} = {value!r} is not allowed; use an integer from 1 to {most:,}")


class ResidualStack(nn.Module):
    """Common base of the three layouts: ``depth`` branches of ``channels`` channels each.

    Build one from its settings, or wrap existing branches with :meth:`from_branches`
    (which shares them: no parameter is copied).
    """

    layout = "stack"

    def __init__(
        self,
        channels: int = 0,
        depth: int = 0,
        kernel: int = 3,
        act: str | type[nn.Module] | nn.Module = "relu",
        norm: str | None = "batch",
        branch_scale: float = 1.0,
        bias: bool | None = None,
        *,
        branches: Iterable[nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if branches is None:
            _check_positive_int("channels", channels, MAX_WIDTH)
            _check_positive_int("depth", depth, MAX_DEPTH)
            branches = [ResidualBranch(channels, kernel, act, norm, branch_scale, bias) for _ in range(depth)]
        self.branches = nn.ModuleList(branches)
        if len(self.branches) == 0:
            raise InvalidValueError("a residual stack needs at least one branch")

    @classmethod
    def from_branches(cls, branches: Iterable[nn.Module], **kwargs) -> ResidualStack:
        """A stack of this layout over the given branch modules, shared, not copied."""
        return cls(branches=branches, **kwargs)

    @property
    def depth(self) -> int:
        return len(self.branches)

    @property
    def channels(self) -> int | None:
        """The width, when the branches are :class:`ResidualBranch` (None otherwise)."""
        first = self.branches[0]
        return first.conv.in_channels if isinstance(first, ResidualBranch) else None

    def extra_repr(self) -> str:
        return f"layout={self.layout}, depth={self.depth}"


class SequentialResidualStack(ResidualStack):
    """The deep layout: ``h_k = h_{k−1} + F_k(h_{k−1})``."""

    layout = "sequential"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for branch in self.branches:
            x = x + branch(x)
        return x


class ParallelResidualStack(ResidualStack):
    """The shallow layout: every branch reads the input, ``y = x + Σ_k F_k(x)``.

    ``fused`` chooses the fast path: one convolution with depth × channels outputs,
    the norm and the activation on all of them at once, then a grouped sum. ``None``
    (the default) uses it whenever the branches allow it (:attr:`fusable`); ``False``
    always runs the branches one by one; ``True`` insists, and fails if they do not allow it.
    Both paths give the same output and update BatchNorm statistics the same way.

    Whether the branches allow it is decided once, at the first call, and decided again
    after ``train()``/``eval()``, ``to()``, or ``load_state_dict`` on the stack or a
    module holding it. After replacing parts of a branch in place, call :meth:`reset_fusion`.
    """

    layout = "parallel"

    def __init__(self, *args, fused: bool | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fused = fused
        self._decided = False  # whether _blocker holds this stack's answer
        self._blocker: str | None = None

    @classmethod
    def from_branches(cls, branches: Iterable[nn.Module], fused: bool | None = None) -> ParallelResidualStack:
        return cls(branches=branches, fused=fused)

    def reset_fusion(self) -> None:
        """Forget whether the branches can run fused; the next call decides again."""
        self._decided = False

    def _fusion_blocker(self) -> str | None:
        if not self._decided:
            self._blocker, self._decided = _fusion_blocker(list(self.branches)), True
        return self._blocker

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self.reset_fusion()  # loaded BatchNorm counters can differ between branches
        super()._load_from_state_dict(*args, **kwargs)

    def train(self, mode: bool = True) -> ParallelResidualStack:
        self.reset_fusion()  # BatchNorm settings between branches are compared in the new mode
        return super().train(mode)

    def _apply(self, fn, *args, **kwargs):
        self.reset_fusion()  # dtypes and devices may change
        return super()._apply(fn, *args, **kwargs)

    @property
    def fusable(self) -> bool:
        """Whether the branches are alike plain conv (+ BatchNorm) + element-wise activation."""
        return self._fusion_blocker() is None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused is False:
            return self._unfused(x)
        blocker = self._fusion_blocker()
        if blocker is None:
            return self._fused(x)
        if self.fused:
            raise InvalidValueError(f"this parallel stack cannot use the fused path: {blocker}")
        return self._unfused(x)

    def _unfused(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for branch in self.branches:
            out = out + branch(x)
        return out

    def _fused(self, x: torch.Tensor) -> torch.Tensor:
        branches: list[ResidualBranch] = list(self.branches)  # type: ignore[assignment]
        first = branches[0]
        conv = first.conv
        weight = torch.cat([b.conv.weight for b in branches])
        bias = torch.cat([b.conv.bias for b in branches]) if conv.bias is not None else None
        y = F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation)
        if isinstance(first.norm, nn.BatchNorm2d):
            y = _batch_norm_all(y, [b.norm for b in branches])
        y = first.act(y)
        if first.scale != 1.0:
            y = y * first.scale
        return x + y.unflatten(1, (len(branches), -1)).sum(1)


def _fusion_blocker(branches: list[nn.Module]) -> str | None:
    """Why these branches cannot run as one convolution (None when they can)."""
    if not all(type(b) is ResidualBranch for b in branches):
        return "every branch must be a ResidualBranch"
    first = branches[0]

    def conv_key(b: ResidualBranch) -> tuple:
        c = b.conv
        return (c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding, c.dilation, c.groups,
                c.padding_mode, c.bias is not None, c.weight.dtype, c.weight.device)  # fmt: skip

    if any(conv_key(b) != conv_key(first) for b in branches) or first.conv.groups != 1:
        return "the branch convolutions differ in shape or settings, or are grouped"
    if first.conv.padding_mode != "zeros" or isinstance(first.conv.padding, str):
        return "the branch convolutions must use explicit zero padding"
    norm_type = type(first.norm)
    if norm_type not in (nn.BatchNorm2d, nn.Identity) or any(type(b.norm) is not norm_type for b in branches):
        return "the norms must all be BatchNorm2d or all absent"
    if norm_type is nn.BatchNorm2d:

        def bn_key(bn: nn.BatchNorm2d) -> tuple:
            count = int(bn.num_batches_tracked) if bn.momentum is None and bn.track_running_stats else 0
            return bn.eps, bn.momentum, bn.affine, bn.track_running_stats, bn.training, count

        if any(bn_key(b.norm) != bn_key(first.norm) for b in branches):
            return "the BatchNorm settings differ between branches"
    act_type = type(first.act)
    if not _is_elementwise_activation(first.act):
        return f"the activation {act_type.__name__} is not a parameter-free element-wise one"
    if any(type(b.act) is not act_type or repr(b.act) != repr(first.act) for b in branches):
        return "the activations differ between branches"
    if any(b.scale != first.scale for b in branches):
        return "the branch scales differ"
    return None


def _batch_norm_all(y: torch.Tensor, norms: list[nn.BatchNorm2d]) -> torch.Tensor:
    """BatchNorm of the concatenated branch outputs, with each branch's statistics kept in its own module.

    Follows the norms' own mode (a BatchNorm frozen with ``.eval()`` inside a training
    model stays frozen), as the unfused path does.
    """
    first = norms[0]
    training = first.training
    weight = torch.cat([n.weight for n in norms]) if first.affine else None
    bias = torch.cat([n.bias for n in norms]) if first.affine else None
    if not first.track_running_stats:
        return F.batch_norm(y, None, None, weight, bias, True, 0.0, first.eps)
    mean = torch.cat([n.running_mean for n in norms])
    var = torch.cat([n.running_var for n in norms])
    if not training:
        return F.batch_norm(y, mean, var, weight, bias, False, 0.0, first.eps)
    for n in norms:
        n.num_batches_tracked.add_(1)
    momentum = first.momentum if first.momentum is not None else 1.0 / float(first.num_batches_tracked)
    out = F.batch_norm(y, mean, var, weight, bias, True, momentum, first.eps)
    with torch.no_grad():  # hand the updated running statistics back to each branch
        for n, m, v in zip(norms, mean.chunk(len(norms)), var.chunk(len(norms))):
            n.running_mean.copy_(m)
            n.running_var.copy_(v)
    return out


class TaylorResidualStack(ResidualStack):
    """The expansion of the sequential stack, truncated after the terms of order ``order``.

    Order 1 is the parallel layout; order ``depth`` (or more) reproduces the sequential
    layout exactly when the branches are linear. Branch k is evaluated
    ``min(order, k)`` times, once per order it contributes to.

    With BatchNorm in training mode and order ≥ 2, each evaluation of a branch
    normalises its own input term with that term's batch statistics, and updates the
    running statistics once per evaluation; so the higher-order terms are not small in
    training, and evaluation mode sees statistics mixed over the orders. For the
    expansion in its mathematical sense, use branches without norm (``norm="none"``),
    or convert a trained model in evaluation mode.
    """

    layout = "taylor"

    def __init__(self, *args, order: int = 2, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _check_positive_int("order", order, MAX_DEPTH)
        self.order = order

    @classmethod
    def from_branches(cls, branches: Iterable[nn.Module], order: int = 2) -> TaylorResidualStack:
        return cls(branches=branches, order=order)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        terms: list[torch.Tensor | None] = [x] + [None] * self.order  # terms[m]: the order-m part so far
        for k, branch in enumerate(self.branches):
            for m in range(min(self.order, k + 1), 0, -1):  # high orders first: they read the lower ones
                contribution = branch(terms[m - 1])
                terms[m] = contribution if terms[m] is None else terms[m] + contribution
        out = terms[0]
        for term in terms[1:]:
            if term is not None:
                out = out + term
        return out

    def extra_repr(self) -> str:
        return f"layout=taylor{self.order}, depth={self.depth}"


LAYOUTS = ("sequential", "parallel", "taylor<n>")


def parse_layout(layout: str) -> tuple[type[ResidualStack], dict]:
    """``"sequential"``, ``"parallel"`` or ``"taylor<n>"`` → (stack class, its extra keyword arguments)."""
    text = str(layout).strip().lower()
    if text == "sequential":
        return SequentialResidualStack, {}
    if text == "parallel":
        return ParallelResidualStack, {}
    if text.startswith("taylor") and text[6:].isdecimal() and text[6:].isascii() and int(text[6:]) >= 1:
        return TaylorResidualStack, {"order": int(text[6:])}
    raise InvalidValueError(f"layout = {layout!r} is not allowed; use sequential, parallel or taylor<n> (n >= 1)")


def layout_name(stack: ResidualStack) -> str:
    """The layout string that :func:`parse_layout` reads back."""
    return f"taylor{stack.order}" if isinstance(stack, TaylorResidualStack) else stack.layout
