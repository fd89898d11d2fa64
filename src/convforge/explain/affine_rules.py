"""How LinearScope replays each operation: the affine action it took on element 0, applied to the whole batch.

A rule gets the replay (which knows the activations and the gates), the call, and its
own settings; it returns the operation's output with element 0 computed exactly and
every other element replayed. Rules are registered for torch's function objects
(``torch.relu``, ``Tensor.relu_``, ``F.relu``, ...), found by name in torch's
namespaces once, at import, and looked up by the object itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from convforge.errors import ConvforgeError

if TYPE_CHECKING:
    from convforge.explain.replay import Replay


class UnsupportedOperationError(ConvforgeError):
    """The network uses an operation that LinearScope cannot replay as an affine map."""


@dataclass(frozen=True)
class Call:
    """One intercepted call: the function object, its arguments, its name, and whether it writes in place."""

    func: Callable
    args: tuple
    kwargs: dict
    name: str
    in_place: bool

    def arg(self, index: int, name: str, default: Any = None) -> Any:
        """Positional argument ``index``, or keyword ``name``."""
        return self.args[index] if len(self.args) > index else self.kwargs.get(name, default)

    def run(self) -> Any:
        return self.func(*self.args, **self.kwargs)


# ------------------------------------------------------------------ helpers


def _split(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(element 0, the probes) of a batched activation."""
    return z[:1], z[1:]


def _join(first: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
    return torch.cat([first, rest.to(first.dtype)], 0)


def _written(z: torch.Tensor, out: torch.Tensor, call: Call) -> torch.Tensor:
    """For an in-place call, write the result into ``z`` as the caller expects (when autograd records, the replay
    ran on a copy of the input and the dispatcher writes the result back)."""
    if call.in_place and not (z.requires_grad and torch.is_grad_enabled()):
        z.copy_(out)
        return z
    return out


def _step(z: torch.Tensor) -> torch.Tensor:
    """1 where ``z > 0``, else 0, in z's dtype: sign∘relu in one buffer, which on CPU is about twice as fast
    as a comparison, and whose float mask multiplies the batch far faster than a boolean one fills it."""
    return torch.relu(z.detach()).sign_()  # a constant gain: no gradient flows through it


# ------------------------------------------------------------------ piecewise-linear units
# On the piece that element 0 fell on, the unit is z ↦ gain·z + offset; applying that to the
# whole batch gives element 0's true output and every probe's replay in one operation.


def relu(mode: Replay, call: Call) -> torch.Tensor:
    z = call.args[0]
    if torch.is_grad_enabled() and z.requires_grad:
        return _written(z, z * _step(z[:1]), call)
    if call.in_place:
        return z.mul_(_step(z[:1]))
    # Without autograd: relu of the whole batch, then the probes overwritten by z·1[z0 > 0].
    out = torch.relu(z)
    torch.mul(z[1:], torch.sign(out[:1]), out=out[1:])
    return out


def leaky_relu(mode: Replay, call: Call) -> torch.Tensor:
    z = call.args[0]
    slope = call.arg(1, "negative_slope", 0.01)
    return _written(z, z * (slope + (1 - slope) * _step(z[:1])), call)


def prelu(mode: Replay, call: Call) -> torch.Tensor:
    z, weight = call.args[0], call.arg(1, "weight")
    shape = [1] * z.dim()
    if weight.numel() > 1:
        shape[1] = weight.numel()
    slope = weight.reshape(shape)
    return z * (slope + (1 - slope) * _step(z[:1]))


def hardtanh(mode: Replay, call: Call, bounds: tuple[float, float] | None = None) -> torch.Tensor:
    """hard-tanh with its bounds, or ReLU6 (``bounds=(0, 6)``)."""
    z = call.args[0]
    low, high = bounds or (call.arg(1, "min_val", -1.0), call.arg(2, "max_val", 1.0))
    if low > high:
        raise ValueError(f"hardtanh needs min_val <= max_val, got {low} and {high}")
    z0 = z[:1]
    above, below = 1 - _step(high - z0), 1 - _step(z0 - low)  # z0 ≥ high, z0 ≤ low
    return _written(z, z * (1 - above - below) + (high * above + low * below), call)


def hardsigmoid(mode: Replay, call: Call) -> torch.Tensor:
    z = call.args[0]  # hardsigmoid(z) = clamp(z/6 + 1/2, 0, 1): three linear pieces
    z0, zp = _split(z)
    above, below = 1 - _step(3 - z0), 1 - _step(z0 + 3)  # z0 ≥ 3, z0 ≤ -3
    inside = 1 - above - below
    out = _join(F.hardsigmoid(z0), zp * (inside / 6) + (inside / 2 + above))
    mode.gates.add(out)
    return _written(z, out, call)


def clamp(mode: Replay, call: Call, only_max: bool = False) -> torch.Tensor:
    """clamp/clip with number bounds (``only_max``: clamp_max, whose one bound is the maximum)."""
    z = call.args[0]
    if only_max:
        low, high = None, call.arg(1, "max")
    else:
        low, high = call.arg(1, "min"), call.arg(2, "max")
    if isinstance(low, torch.Tensor) or isinstance(high, torch.Tensor):
        raise UnsupportedOperationError(f"LinearScope replays {call.name!r} with number bounds, not tensor bounds")
    if low is None and high is None:
        return call.run()  # torch refuses a clamp without bounds; let it say so
    if low is not None and high is not None and low > high:
        return _written(z, z * 0 + high, call)  # torch's rule: every value becomes max
    z0 = z[:1]
    above = 1 - _step(high - z0) if high is not None else torch.zeros_like(z0)  # z0 ≥ high
    below = 1 - _step(z0 - low) if low is not None else torch.zeros_like(z0)  # z0 ≤ low
    offset = (high * above if high is not None else 0) + (low * below if low is not None else 0)
    return _written(z, z * (1 - above - below) + offset, call)


_POOL_ARGS = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
_ADAPTIVE_POOL_ARGS = ("output_size", "return_indices")


def max_pool(mode: Replay, call: Call, dims: int, adaptive: bool, with_indices: bool) -> Any:
    """Max pooling: element 0's winning positions picked from every probe."""
    z = call.args[0]
    names = _ADAPTIVE_POOL_ARGS if adaptive else _POOL_ARGS
    settings = {**dict(zip(names, call.args[1:])), **call.kwargs}
    wants_indices = bool(settings.pop("return_indices", False)) or with_indices
    pool = getattr(F, f"{'adaptive_' if adaptive else ''}max_pool{dims}d")
    z0, zp = _split(z)
    out0, index = pool(z0, **settings, return_indices=True)
    flat = zp.flatten(-dims)
    picked = flat.gather(-1, index.flatten(-dims).expand(zp.shape[0], *index.shape[1:-dims], -1))
    out = _join(out0, picked.reshape(zp.shape[0], *out0.shape[1:]))
    return (out, torch.cat([index] * z.shape[0])) if wants_indices else out


# ------------------------------------------------------------------ gates (x · g(x))


def _gelu_gate(approximate: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if approximate == "tanh":
        return lambda z: 0.5 * (1 + torch.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z**3)))
    return lambda z: 0.5 * (1 + torch.erf(z / math.sqrt(2)))


GATES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "silu": torch.sigmoid,
    "hardswish": F.hardsigmoid,
    "mish": lambda z: torch.tanh(F.softplus(z)),
}


def self_gated(mode: Replay, call: Call, gate: str) -> torch.Tensor:
    """x·g(x) units: element 0 gets z0·g(z0), the probes z·g(z0)."""
    z = call.args[0]
    g = _gelu_gate(call.arg(1, "approximate", "none")) if gate == "gelu" else GATES[gate]
    return _written(z, z * g(z[:1]), call)


def product(mode: Replay, call: Call, matmul: bool = False) -> torch.Tensor:
    """A product of two activations keeps the gate (or the second factor) as computed from element 0."""
    u, v = call.args[0], call.arg(1, "other")
    if not (mode.is_batched(u) and mode.is_batched(v)):
        return call.run()  # an activation times a constant: linear
    op = torch.matmul if matmul else torch.mul
    if u in mode.gates and v not in mode.gates:  # keep the gate as computed from element 0
        out = op(u[:1], v)
    else:
        out = op(u, v[:1])
    return _written(call.args[0], out, call)


def division(mode: Replay, call: Call) -> torch.Tensor:
    if mode.is_batched(call.arg(1, "other")):
        raise UnsupportedOperationError(f"LinearScope cannot replay {call.name!r} with an activation as divisor")
    return call.run()


# ------------------------------------------------------------------ other point-wise functions (secant gain)


def secant(mode: Replay, call: Call, g: Callable[..., torch.Tensor], keys: tuple[tuple[str, Any], ...] = (),
           gate: bool = False) -> torch.Tensor:  # fmt: skip
    """A point-wise g replayed by its secant through (0, g(0)) and (z0, g(z0)); ``keys`` are g's further arguments
    with their defaults; ``gate`` marks the output as a gate (sigmoid)."""
    values = [call.arg(i + 1, key, default) for i, (key, default) in enumerate(keys)]
    z = call.args[0]
    z0, zp = _split(z)
    at_zero = g(torch.zeros((), dtype=z.dtype, device=z.device), *values)
    g0 = g(z0, *values)
    eps = 1e-4 if z.dtype in (torch.float16, torch.bfloat16) else 1e-6
    tiny = z0.abs() < eps
    slope_at_zero = (
        g(torch.full((), eps, dtype=z.dtype, device=z.device), *values)
        - g(torch.full((), -eps, dtype=z.dtype, device=z.device), *values)
    ) / (2 * eps)
    slope = torch.where(tiny, slope_at_zero, (g0 - at_zero) / torch.where(tiny, torch.ones_like(z0), z0))
    out = _join(g0, zp * slope + at_zero)
    if gate:
        mode.gates.add(out)
    return _written(z, out, call)


# ------------------------------------------------------------------ normalisations with input statistics


def _normalise_with_first(z: torch.Tensor, reduce_dims: tuple[int, ...], eps: float) -> torch.Tensor:
    z0, _ = _split(z)
    mean = z0.mean(reduce_dims, keepdim=True)
    var = z0.var(reduce_dims, keepdim=True, unbiased=False)
    return (z - mean) / torch.sqrt(var + eps)


def _scale_shift(
    out: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, shape: list[int] | None = None
) -> torch.Tensor:
    """A norm's affine tail: ``out · weight + bias``, each reshaped to ``shape`` (per channel) when given."""
    if weight is not None:
        out = out * (weight.reshape(shape) if shape else weight)
    return out + (bias.reshape(shape) if shape else bias) if bias is not None else out


def layer_norm(mode: Replay, call: Call) -> torch.Tensor:
    z, shape = call.args[0], call.arg(1, "normalized_shape")
    weight, bias, eps = call.arg(2, "weight"), call.arg(3, "bias"), call.arg(4, "eps", 1e-5)
    dims = tuple(range(z.dim() - len(shape), z.dim()))
    return _scale_shift(_normalise_with_first(z, dims, eps), weight, bias)


def group_norm(mode: Replay, call: Call) -> torch.Tensor:
    z, groups = call.args[0], call.arg(1, "num_groups")
    weight, bias, eps = call.arg(2, "weight"), call.arg(3, "bias"), call.arg(4, "eps", 1e-5)
    grouped = z.reshape(z.shape[0], groups, -1)
    out = _normalise_with_first(grouped, (2,), eps).reshape(z.shape)
    return _scale_shift(out, weight, bias, [1, -1] + [1] * (z.dim() - 2))


def instance_norm(mode: Replay, call: Call) -> torch.Tensor:
    z = call.args[0]
    if not call.arg(5, "use_input_stats", True):
        return call.run()  # running statistics: affine
    weight, bias, eps = call.arg(3, "weight"), call.arg(4, "bias"), call.arg(7, "eps", 1e-5)
    out = _normalise_with_first(z, tuple(range(2, z.dim())), eps)
    return _scale_shift(out, weight, bias, [1, -1] + [1] * (z.dim() - 2))


def batch_norm(mode: Replay, call: Call) -> torch.Tensor:
    if call.arg(5, "training", False):
        raise UnsupportedOperationError(
            "LinearScope needs BatchNorm in evaluation mode (running statistics); this one normalises with batch "
            "statistics (training mode or track_running_stats=False)"
        )
    return call.run()


def linear(mode: Replay, call: Call) -> Any:
    """Operations affine in their activation input run on the whole batch as they are."""
    return call.run()


# ------------------------------------------------------------------ the table, by name, resolved to objects

# Operations that are affine in their (single) activation input: applied to the whole batch as they are.
LINEAR_NAMES = """
    conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d linear
    avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d
    interpolate upsample upsample_nearest upsample_bilinear pixel_shuffle pixel_unshuffle channel_shuffle pad
    dropout dropout1d dropout2d dropout3d alpha_dropout feature_alpha_dropout
    add __add__ __radd__ __iadd__ add_ sub __sub__ __rsub__ __isub__ sub_ neg __neg__ negative
    sum mean cat concat concatenate stack hstack vstack
    view view_as reshape reshape_as flatten unflatten permute transpose t contiguous unsqueeze squeeze expand
    expand_as repeat repeat_interleave flip roll narrow chunk split split_with_sizes tensor_split unbind __getitem__
    select index_select clone to float double half type type_as __setitem__ movedim moveaxis swapaxes
""".split()

_MAX_POOLS = {
    f"{prefix}max_pool{d}d{suffix}": partial(max_pool, dims=d, adaptive=prefix == "adaptive_",
                                             with_indices=suffix == "_with_indices")
    for d in (1, 2, 3) for prefix in ("", "_", "adaptive_") for suffix in ("", "_with_indices")
    if not (prefix == "_" and suffix)
}  # fmt: skip

RULES: dict[str, Callable[..., Any]] = {
    **dict.fromkeys(("relu", "relu_"), relu),
    **dict.fromkeys(("leaky_relu", "leaky_relu_"), leaky_relu),
    "prelu": prelu,
    **dict.fromkeys(("hardtanh", "hardtanh_"), hardtanh),
    "relu6": partial(hardtanh, bounds=(0.0, 6.0)),
    **dict.fromkeys(("clamp", "clamp_", "clip", "clip_", "clamp_min", "clamp_min_"), clamp),
    **dict.fromkeys(("clamp_max", "clamp_max_"), partial(clamp, only_max=True)),
    **_MAX_POOLS,
    **dict.fromkeys(("silu", "silu_"), partial(self_gated, gate="silu")),
    "gelu": partial(self_gated, gate="gelu"),
    **dict.fromkeys(("hardswish", "hardswish_"), partial(self_gated, gate="hardswish")),
    **dict.fromkeys(("mish", "mish_"), partial(self_gated, gate="mish")),
    **dict.fromkeys(("mul", "mul_", "__mul__", "__rmul__", "__imul__", "multiply"), product),
    **dict.fromkeys(("matmul", "__matmul__"), partial(product, matmul=True)),
    **dict.fromkeys(("div", "div_", "__truediv__", "__itruediv__", "true_divide"), division),
    **dict.fromkeys(("sigmoid", "sigmoid_"), partial(secant, g=torch.sigmoid, gate=True)),
    **dict.fromkeys(("tanh", "tanh_"), partial(secant, g=torch.tanh)),
    **dict.fromkeys(("hardsigmoid", "hardsigmoid_"), hardsigmoid),
    **dict.fromkeys(("elu", "elu_"), partial(secant, g=F.elu, keys=(("alpha", 1.0),))),
    "softplus": partial(secant, g=F.softplus, keys=(("beta", 1.0), ("threshold", 20.0))),
    "layer_norm": layer_norm,
    "group_norm": group_norm,
    "instance_norm": instance_norm,
    "batch_norm": batch_norm,
    **dict.fromkeys(LINEAR_NAMES, linear),
}

# Tensor attributes and queries that carry no activation values: they run as they are.
METADATA_ATTRIBUTES = "shape ndim dtype device layout is_cuda is_sparse is_quantized is_meta requires_grad".split()
METADATA_METHODS = "dim size numel ndimension element_size stride is_contiguous is_floating_point".split()

NAMESPACES = (torch, torch.Tensor, F, torch._C._nn, torch.special)


def is_in_place_name(name: str) -> bool:
    """``relu_``-style names (not dunders such as ``__add__``)."""
    return name.endswith("_") and not name.endswith("__")


def function_objects(name: str) -> list[Callable]:
    """Every callable torch exposes under ``name`` in its namespaces (``torch.relu``, ``Tensor.relu``, ``F.relu``)."""
    found = []
    for namespace in NAMESPACES:
        candidate = getattr(namespace, name, None)
        if callable(candidate) and not isinstance(candidate, type) and candidate not in found:
            found.append(candidate)
    return found
