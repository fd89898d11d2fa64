"""LinearScope: replay a network as the affine map it applies around one input.

The model runs on one batch ``[x0, probe_1, …, probe_P]`` (and a final zero probe when
the bias part is asked for). Linear operations (convolutions, linear layers, pooling by
averaging, additions, concatenation, pixel shuffle, upsampling, BatchNorm in evaluation
mode, reshapes) treat every element alike.
At every non-linear operation, element 0 goes through the real function and every
other element gets the affine action that the function took on element 0:

- piecewise-linear units (ReLU, ReLU6, LeakyReLU, PReLU, hard-tanh, hard-sigmoid,
  clamping, max pooling) use the linear piece element 0 fell on (the gain ``1[z0 > 0]``,
  the winning positions);
- gates (SiLU = x·σ(x), GELU = x·Φ(x), Hardswish = x·hardsigmoid(x), and any product
  of two activations such as a squeeze-excitation ``x * gate``) keep the gate computed
  from element 0;
- other point-wise functions g (sigmoid, tanh, ELU, softplus) use the
  secant through ``(0, g(0))`` and ``(z0, g(z0))``: ``g(0) + z·(g(z0) − g(0))/z0``;
- normalisations that use the statistics of their input (LayerNorm, GroupNorm,
  InstanceNorm) use those of element 0.

So element 0 of the output is F(x0); element p is A(x0)·x_p + c(x0), exactly affine in
the probe; and a zero probe gives c(x0), the part that biases and
normalisation offsets contribute along the recorded path. Feeding x_p = x0 gives F(x0)
back. Operations are intercepted at the level of torch functions, so functional calls
inside ``forward`` (``F.relu``, ``torch.sigmoid``, ``x * gate``) are handled as well as
modules; any operation that is neither known linear nor linearised here raises
:class:`UnsupportedOperationError` naming it, rather than giving a wrong answer.

The batch dimension must stay first through the network (as it does in CNNs).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from convforge.errors import ConvforgeError


class UnsupportedOperationError(ConvforgeError):
    """The network uses an operation that LinearScope cannot replay as an affine map."""


# Operations that are affine in their (single) activation input: applied to the whole batch as they are.
LINEAR_OPS = frozenset(
    """
    conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d linear
    avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d
    interpolate upsample upsample_nearest upsample_bilinear pixel_shuffle pixel_unshuffle channel_shuffle pad
    dropout dropout1d dropout2d dropout3d alpha_dropout feature_alpha_dropout
    add __add__ __radd__ __iadd__ add_ sub __sub__ __rsub__ __isub__ sub_ neg __neg__ negative
    sum mean cat concat concatenate stack hstack vstack
    view view_as reshape reshape_as flatten unflatten permute transpose t contiguous unsqueeze squeeze expand
    expand_as repeat repeat_interleave flip roll narrow chunk split split_with_sizes tensor_split unbind __getitem__
    select
    index_select clone to float double half type type_as __setitem__ movedim moveaxis swapaxes
    """.split()
)


def _name(func: Callable) -> str:
    name = getattr(func, "__name__", None) or str(func)
    if name == "__get__":  # property getters: Tensor.shape.__get__ and friends
        owner = getattr(func, "__self__", None)
        return f"{getattr(owner, '__name__', 'attribute')}.__get__"
    return name


@dataclass
class ScopeOutput:
    """One LinearScope call: F(x0), A(x0)·x_p + c(x0) for each probe, and c(x0) when asked for."""

    output: torch.Tensor  # F(x0), batch of 1
    affine: torch.Tensor  # A(x0)·x_p + c(x0), one row per probe
    bias: torch.Tensor | None  # c(x0), batch of 1; None for a call with bias=False

    @property
    def linear(self) -> torch.Tensor:
        """A(x0)·x_p, one row per probe (needs the bias part)."""
        if self.bias is None:
            raise ConvforgeError("this LinearScope call left out c(x0) (bias=False), so A·x cannot be separated")
        return self.affine - self.bias


def _tensors(*values: Any) -> Iterator[torch.Tensor]:
    """The tensors in ``values``, two levels into lists, tuples and dicts (``cat``'s list, ``split``'s tuple)."""
    for value in values:
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, (list, tuple, dict, type({}.values()))):
            for item in value.values() if isinstance(value, dict) else value:
                if isinstance(item, torch.Tensor):
                    yield item
                elif isinstance(item, (list, tuple)):
                    yield from (t for t in item if isinstance(t, torch.Tensor))


class _TensorSet:
    """A set of tensors by identity (tensors compare by value, so a WeakSet cannot hold them)."""

    def __init__(self) -> None:
        self._refs: dict[int, weakref.ref] = {}

    def add(self, tensor: torch.Tensor) -> None:
        self._refs[id(tensor)] = weakref.ref(tensor)

    def __contains__(self, value: Any) -> bool:
        ref = self._refs.get(id(value))
        return ref is not None and ref() is value


class _Replay(TorchFunctionMode):
    """Intercepts torch functions during one forward of ``[x0, probes…]``."""

    def __init__(self) -> None:
        super().__init__()
        self.batched = _TensorSet()  # activations: tensors that carry [x0, probes…]
        self.gates = _TensorSet()  # activations that came out of a sigmoid-like gate

    def mark(self, out: Any) -> Any:
        if isinstance(out, torch.Tensor):
            self.batched.add(out)
        else:
            for t in _tensors(out):
                self.batched.add(t)
        return out

    def is_batched(self, value: Any) -> bool:
        return value in self.batched

    def touches_batched(self, args: tuple, kwargs: dict) -> bool:
        """Whether an argument (or an item of a list, tuple or dict argument, as for ``cat``) is an activation."""
        batched = self.batched
        for value in (*args, *kwargs.values()):
            if isinstance(value, dict):
                value = tuple(value.values())
            if isinstance(value, (list, tuple)):
                if any(item in batched for item in value):
                    return True
            elif value in batched:
                return True
        return False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        route = _ROUTES.get(func)
        if route is None:
            route = _ROUTES[func] = _route(func)
        name, handler = route
        if handler is _UNTOUCHED or not self.touches_batched(args, kwargs):
            return func(*args, **kwargs)
        if handler is not None:
            target = args[0] if args else None
            if (
                isinstance(target, torch.Tensor)
                and target.requires_grad
                and torch.is_grad_enabled()
                and (_is_in_place(func, kwargs))
            ):  # replay on a copy, so that autograd keeps the input it saved, then write back as asked
                target.copy_(handler(self, func, (target.clone(), *args[1:]), kwargs))
                return self.mark(target)
            return self.mark(handler(self, func, args, kwargs))
        out = func(*args, **kwargs)
        if next(_tensors(out), None) is None:
            return out  # sizes, shapes, dtypes: no activation values leave
        raise UnsupportedOperationError(
            f"LinearScope cannot replay {name!r} on the network's activations as an affine map; "
            "supported are linear operations, the point-wise activations, max pooling, norms and products of "
            "two activations (see convforge.explain.linear_scope)"
        )


# ------------------------------------------------------------------ helpers


def _split(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(element 0, the probes) of a batched activation."""
    return z[:1], z[1:]


def _join(first: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
    return torch.cat([first, rest.to(first.dtype)], 0)


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _is_in_place(func: Callable, kwargs: dict) -> bool:
    """``relu_``-style variants, and functional calls with ``inplace=True``."""
    name = _name(func)
    return (name.endswith("_") and not name.endswith("__")) or bool(kwargs.get("inplace"))


def _in_place(z: torch.Tensor, out: torch.Tensor, func: Callable, kwargs: dict) -> torch.Tensor:
    """For an in-place call, write the result into ``z`` as the caller expects (when autograd records,
    the replay ran on a copy of the input and the dispatcher writes the result back)."""
    if _is_in_place(func, kwargs) and not (z.requires_grad and torch.is_grad_enabled()):
        z.copy_(out)
        return z
    return out


# ------------------------------------------------------------------ piecewise-linear units
# On the piece that element 0 fell on, the unit is z ↦ gain·z + offset; applying that to the
# whole batch gives element 0's true output and every probe's replay in one operation.


def _step(z: torch.Tensor) -> torch.Tensor:
    """1 where ``z > 0``, else 0, in z's dtype: sign∘relu in one buffer, which on CPU is about twice as fast
    as a comparison, and whose float mask multiplies the batch far faster than a boolean one fills it."""
    return torch.relu(z.detach()).sign_()  # a constant gain: no gradient flows through it


def _relu(mode: _Replay, func, args, kwargs):
    z = args[0]
    if torch.is_grad_enabled() and z.requires_grad:
        return _in_place(z, z * _step(z[:1]), func, kwargs)
    if _is_in_place(func, kwargs):
        return z.mul_(_step(z[:1]))
    # Without autograd: relu of the whole batch, then the probes overwritten by z·1[z0 > 0].
    out = torch.relu(z)
    torch.mul(z[1:], torch.sign(out[:1]), out=out[1:])
    return out


def _leaky_relu(mode: _Replay, func, args, kwargs):
    z = args[0]
    slope = _arg(args, kwargs, 1, "negative_slope", 0.01)
    return _in_place(z, z * (slope + (1 - slope) * _step(z[:1])), func, kwargs)


def _prelu(mode: _Replay, func, args, kwargs):
    z, weight = args[0], _arg(args, kwargs, 1, "weight")
    shape = [1] * z.dim()
    if weight.numel() > 1:
        shape[1] = weight.numel()
    slope = weight.reshape(shape)
    return z * (slope + (1 - slope) * _step(z[:1]))


def _hardtanh(mode: _Replay, func, args, kwargs):
    z = args[0]
    name = _name(func).rstrip("_")
    low, high = (0.0, 6.0) if name == "relu6" else (_arg(args, kwargs, 1, "min_val", -1.0),
                                                     _arg(args, kwargs, 2, "max_val", 1.0))  # fmt: skip
    if low > high:
        raise ValueError(f"hardtanh needs min_val <= max_val, got {low} and {high}")
    z0 = z[:1]
    above, below = 1 - _step(high - z0), 1 - _step(z0 - low)  # z0 ≥ high, z0 ≤ low
    return _in_place(z, z * (1 - above - below) + (high * above + low * below), func, kwargs)


def _hardsigmoid(mode: _Replay, func, args, kwargs):
    z = args[0]  # hardsigmoid(z) = clamp(z/6 + 1/2, 0, 1): three linear pieces
    z0, zp = _split(z)
    above, below = 1 - _step(3 - z0), 1 - _step(z0 + 3)  # z0 ≥ 3, z0 ≤ -3
    inside = 1 - above - below
    out = _join(F.hardsigmoid(z0), zp * (inside / 6) + (inside / 2 + above))
    mode.gates.add(out)
    return _in_place(z, out, func, kwargs)


def _clamp(mode: _Replay, func, args, kwargs):
    z, name = args[0], _name(func).rstrip("_")
    if name == "clamp_max":
        low, high = None, _arg(args, kwargs, 1, "max")
    else:
        low, high = _arg(args, kwargs, 1, "min"), _arg(args, kwargs, 2, "max")
    if isinstance(low, torch.Tensor) or isinstance(high, torch.Tensor):
        raise UnsupportedOperationError(f"LinearScope replays {_name(func)!r} with number bounds, not tensor bounds")
    if low is None and high is None:
        return func(*args, **kwargs)  # torch refuses a clamp without bounds; let it say so
    if low is not None and high is not None and low > high:
        return _in_place(z, z * 0 + high, func, kwargs)  # torch's rule: every value becomes max
    z0 = z[:1]
    above = 1 - _step(high - z0) if high is not None else torch.zeros_like(z0)  # z0 ≥ high
    below = 1 - _step(z0 - low) if low is not None else torch.zeros_like(z0)  # z0 ≤ low
    offset = (high * above if high is not None else 0) + (low * below if low is not None else 0)
    return _in_place(z, z * (1 - above - below) + offset, func, kwargs)


_POOL_ARGS = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
_ADAPTIVE_POOL_ARGS = ("output_size", "return_indices")


def _max_pool(mode: _Replay, func, args, kwargs):
    z = args[0]
    name = _name(func).lstrip("_")
    dims = 1 if "1d" in name else 3 if "3d" in name else 2
    adaptive = name.startswith("adaptive")
    names = _ADAPTIVE_POOL_ARGS if adaptive else _POOL_ARGS
    settings = {**dict(zip(names, args[1:])), **kwargs}
    wants_indices = bool(settings.pop("return_indices", False)) or name.endswith("_with_indices")
    pool = getattr(F, f"{'adaptive_' if adaptive else ''}max_pool{dims}d")
    z0, zp = _split(z)
    out0, index = pool(z0, **settings, return_indices=True)
    flat = zp.flatten(-dims)
    picked = flat.gather(-1, index.flatten(-dims).expand(zp.shape[0], *index.shape[1:-dims], -1))
    out = _join(out0, picked.reshape(zp.shape[0], *out0.shape[1:]))
    return (out, torch.cat([index] * z.shape[0])) if wants_indices else out


# ------------------------------------------------------------------ gates (x · g(x))


def _gate_fn(name: str, approximate: str = "none") -> Callable[[torch.Tensor], torch.Tensor]:
    if name == "silu":
        return torch.sigmoid
    if name == "hardswish":
        return F.hardsigmoid
    if name == "mish":
        return lambda z: torch.tanh(F.softplus(z))
    if approximate == "tanh":
        return lambda z: 0.5 * (1 + torch.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z**3)))
    return lambda z: 0.5 * (1 + torch.erf(z / math.sqrt(2)))  # gelu


def _self_gated(mode: _Replay, func, args, kwargs):
    z = args[0]
    name = _name(func).rstrip("_")
    gate = _gate_fn(name, _arg(args, kwargs, 1, "approximate", "none") if name == "gelu" else "none")
    return _in_place(z, z * gate(z[:1]), func, kwargs)  # element 0: z0·g(z0); probes: z·g(z0)


def _product(mode: _Replay, func, args, kwargs):
    u, v = args[0], _arg(args, kwargs, 1, "other")
    if not (mode.is_batched(u) and mode.is_batched(v)):
        return func(*args, **kwargs)  # an activation times a constant: linear
    op = torch.matmul if "matmul" in _name(func) else torch.mul
    if u in mode.gates and v not in mode.gates:  # keep the gate as computed from element 0
        out = op(u[:1], v)
    else:
        out = op(u, v[:1])
    return _in_place(args[0], out, func, kwargs)


def _division(mode: _Replay, func, args, kwargs):
    if mode.is_batched(_arg(args, kwargs, 1, "other")):
        raise UnsupportedOperationError(f"LinearScope cannot replay {_name(func)!r} with an activation as divisor")
    return func(*args, **kwargs)


# ------------------------------------------------------------------ other point-wise functions (secant gain)


def _secant(g: Callable[[torch.Tensor], torch.Tensor]):
    def handler(mode: _Replay, func, args, kwargs):
        z = args[0]
        z0, zp = _split(z)
        at_zero = g(torch.zeros((), dtype=z.dtype, device=z.device))
        g0 = g(z0)
        eps = 1e-4 if z.dtype in (torch.float16, torch.bfloat16) else 1e-6
        tiny = z0.abs() < eps
        slope_at_zero = (
            g(torch.full((), eps, dtype=z.dtype, device=z.device))
            - g(torch.full((), -eps, dtype=z.dtype, device=z.device))
        ) / (2 * eps)
        slope = torch.where(tiny, slope_at_zero, (g0 - at_zero) / torch.where(tiny, torch.ones_like(z0), z0))
        out = _join(g0, zp * slope + at_zero)
        if _name(func).rstrip("_") == "sigmoid":
            mode.gates.add(out)
        return _in_place(z, out, func, kwargs)

    return handler


def _with_args(function: Callable, keys: tuple[str, ...], defaults: tuple) -> Callable:
    def make(mode: _Replay, func, args, kwargs):
        values = [_arg(args, kwargs, i + 1, k, d) for i, (k, d) in enumerate(zip(keys, defaults))]
        return _secant(lambda z: function(z, *values))(mode, func, args, kwargs)

    return make


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


def _layer_norm(mode: _Replay, func, args, kwargs):
    z, shape = args[0], _arg(args, kwargs, 1, "normalized_shape")
    weight, bias, eps = (
        _arg(args, kwargs, 2, "weight"),
        _arg(args, kwargs, 3, "bias"),
        _arg(args, kwargs, 4, "eps", 1e-5),
    )
    dims = tuple(range(z.dim() - len(shape), z.dim()))
    return _scale_shift(_normalise_with_first(z, dims, eps), weight, bias)


def _group_norm(mode: _Replay, func, args, kwargs):
    z, groups = args[0], _arg(args, kwargs, 1, "num_groups")
    weight, bias, eps = (
        _arg(args, kwargs, 2, "weight"),
        _arg(args, kwargs, 3, "bias"),
        _arg(args, kwargs, 4, "eps", 1e-5),
    )
    grouped = z.reshape(z.shape[0], groups, -1)
    out = _normalise_with_first(grouped, (2,), eps).reshape(z.shape)
    return _scale_shift(out, weight, bias, [1, -1] + [1] * (z.dim() - 2))


def _instance_norm(mode: _Replay, func, args, kwargs):
    z = args[0]
    use_input_stats = _arg(args, kwargs, 5, "use_input_stats", True)
    if not use_input_stats:
        return func(*args, **kwargs)  # running statistics: affine
    weight, bias, eps = (
        _arg(args, kwargs, 3, "weight"),
        _arg(args, kwargs, 4, "bias"),
        _arg(args, kwargs, 7, "eps", 1e-5),
    )
    out = _normalise_with_first(z, tuple(range(2, z.dim())), eps)
    return _scale_shift(out, weight, bias, [1, -1] + [1] * (z.dim() - 2))


def _batch_norm(mode: _Replay, func, args, kwargs):
    training = _arg(args, kwargs, 5, "training", False)
    if training:
        raise UnsupportedOperationError(
            "LinearScope needs BatchNorm in evaluation mode (running statistics); this one normalises with batch "
            "statistics (training mode or track_running_stats=False)"
        )
    return func(*args, **kwargs)


_HANDLERS: dict[str, Callable] = {}
for _names, _handler in [
    (("relu", "relu_"), _relu),
    (("leaky_relu", "leaky_relu_"), _leaky_relu),
    (("prelu",), _prelu),
    (("hardtanh", "hardtanh_", "relu6"), _hardtanh),
    (("clamp", "clamp_", "clip", "clip_", "clamp_min", "clamp_max"), _clamp),
    (("max_pool1d", "max_pool2d", "max_pool3d", "_max_pool1d", "_max_pool2d", "_max_pool3d",
      "max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices", "adaptive_max_pool1d",
      "adaptive_max_pool2d", "adaptive_max_pool3d", "adaptive_max_pool1d_with_indices",
      "adaptive_max_pool2d_with_indices", "adaptive_max_pool3d_with_indices"), _max_pool),
    (("silu", "silu_", "gelu", "hardswish", "hardswish_", "mish", "mish_"), _self_gated),
    (("mul", "mul_", "__mul__", "__rmul__", "__imul__", "multiply", "matmul", "__matmul__"), _product),
    (("div", "div_", "__truediv__", "__itruediv__", "true_divide"), _division),
    (("sigmoid", "sigmoid_"), _secant(torch.sigmoid)),
    (("tanh", "tanh_"), _secant(torch.tanh)),
    (("hardsigmoid", "hardsigmoid_"), _hardsigmoid),
    (("elu", "elu_"), _with_args(F.elu, ("alpha",), (1.0,))),
    (("softplus",), _with_args(F.softplus, ("beta", "threshold"), (1.0, 20.0))),
    (("layer_norm",), _layer_norm),
    (("group_norm",), _group_norm),
    (("instance_norm",), _instance_norm),
    (("batch_norm",), _batch_norm),
]:  # fmt: skip
    for _n in _names:
        _HANDLERS[_n] = _handler


# Tensor attributes that carry no activation values.
_METADATA = frozenset(
    f"{attribute}.__get__"
    for attribute in "shape ndim dtype device layout is_cuda is_sparse is_quantized is_meta requires_grad".split()
) | frozenset("dim size numel ndimension element_size stride is_contiguous is_floating_point _assert".split())


def _linear(mode: _Replay, func, args, kwargs):
    return func(*args, **kwargs)


_UNTOUCHED = "untouched"  # the route of metadata calls: they run as they are


def _route(func: Callable) -> tuple[str, Any]:
    """(name, handler) of a torch function: a handler, ``_UNTOUCHED`` for metadata, or None for an operation
    LinearScope cannot replay."""
    name = _name(func)
    if name in _METADATA:
        return name, _UNTOUCHED
    if name in _HANDLERS:
        return name, _HANDLERS[name]
    return name, _linear if name in LINEAR_OPS else None


_ROUTES: dict[Callable, tuple[str, Any]] = {}  # filled as functions are met


def bias_share_of(linear: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """|c| / (|A·x| + |c|) elementwise: the share of each output's magnitude that comes from the bias part."""
    bias = bias.abs()
    return bias / (linear.abs() + bias).clamp_min(torch.finfo(bias.dtype).tiny)


class LinearScope:
    """The linear interpreter of ``model`` (put in evaluation mode).

    ``scope(x0, probes)`` returns F(x0), A(x0)·probe + c(x0) for each probe and c(x0)
    from one forward pass of a batch of ``2 + len(probes)``; with ``bias=False`` the
    zero probe that yields c(x0) is left out (a batch of ``1 + len(probes)``). ``x0`` is
    a batch of one input (1×C×H×W); ``probes`` a batch of inputs of the same shape.
    Autograd records the pass as it would the forward (run it under ``torch.no_grad()``
    when no gradient is wanted: that is also the faster path). The analyses below build
    on that call; all indices into inputs and outputs are flat (row-major) positions
    within one example.
    """

    def __init__(self, model: nn.Module, chunk: int = 64) -> None:
        self.model = model.eval()
        self.chunk = chunk  # probes per forward pass in the analyses

    def __call__(self, x0: torch.Tensor, probes: torch.Tensor | None = None, bias: bool = True) -> ScopeOutput:
        if x0.dim() < 2 or x0.shape[0] != 1:
            raise ConvforgeError(f"x0 must be a batch of one input (1×C×H×W), got shape {tuple(x0.shape)}")
        probes = probes if probes is not None else x0.new_zeros((0, *x0.shape[1:]))
        if probes.shape[1:] != x0.shape[1:]:
            raise ConvforgeError(f"probes of shape {tuple(probes.shape[1:])} do not match x0 {tuple(x0.shape[1:])}")
        parts = [x0, probes.to(x0.dtype)] + ([torch.zeros_like(x0)] if bias else [])
        out = self.replay(torch.cat(parts))
        if not bias:
            return ScopeOutput(out[:1], out[1:], None)
        return ScopeOutput(out[:1], out[1:-1], out[-1:])

    def replay(self, batch: torch.Tensor) -> torch.Tensor:
        """The network on ``[x0, …]`` with every element after the first replayed through x0's affine map."""
        mode = _Replay()
        with mode:
            mode.mark(batch)
            out = self.model(batch)
        if not isinstance(out, torch.Tensor):
            raise ConvforgeError(f"LinearScope needs a model that returns one tensor, got {type(out).__name__}")
        return out

    # ------------------------------------------------------------ analyses

    def bias_part(self, x0: torch.Tensor) -> torch.Tensor:
        """c(x0): what biases and normalisation offsets contribute to the output, batch of one."""
        with torch.no_grad():
            return self(x0).bias

    def apply(self, x0: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        """A(x0)·v for a batch of input-shaped ``vectors`` (in chunks)."""
        with torch.no_grad():
            return torch.cat([self(x0, part).linear for part in vectors.split(self.chunk)])

    def apply_transposed(self, x0: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        """A(x0)ᵀ·v for a batch of output-shaped ``vectors``, by vector–Jacobian products (in chunks)."""
        results = []
        for part in vectors.split(self.chunk):
            probes = torch.zeros((len(part), *x0.shape[1:]), dtype=x0.dtype, device=x0.device, requires_grad=True)
            with torch.enable_grad():
                affine = self(x0.detach(), probes, bias=False).affine  # c does not depend on the probes
                (grad,) = torch.autograd.grad(affine, probes, part.to(affine.dtype))
            results.append(grad)
        return torch.cat(results)

    def columns(self, x0: torch.Tensor, indices: list[int] | torch.Tensor) -> torch.Tensor:
        """Columns of A(x0): the responses to unit impulses at the given input positions."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        impulses = torch.zeros((len(indices), x0[0].numel()), dtype=x0.dtype, device=x0.device)
        impulses[torch.arange(len(indices)), indices] = 1
        return self.apply(x0, impulses.view(-1, *x0.shape[1:]))

    def rows(self, x0: torch.Tensor, outputs: list[int] | torch.Tensor) -> torch.Tensor:
        """Rows of A(x0), input-shaped: Aᵀ·e_j for the given output positions."""
        outputs = torch.as_tensor(outputs, dtype=torch.long)
        with torch.no_grad():
            shape = self(x0, bias=False).output.shape[1:]
        selectors = torch.zeros((len(outputs), shape.numel()), dtype=x0.dtype, device=x0.device)
        selectors[torch.arange(len(outputs)), outputs] = 1
        return self.apply_transposed(x0, selectors.view(-1, *shape))

    def vote_map(self, x0: torch.Tensor, k: int) -> torch.Tensor:
        """Per-pixel votes for output ``k``: (row_k ⊙ x0) summed over channels, H×W.

        The votes add up to output k minus its bias part: Σ votes + c_k(x0) = F_k(x0).
        """
        return (self.rows(x0, [k])[0] * x0[0]).sum(0)

    def bias_share(self, x0: torch.Tensor) -> torch.Tensor:
        """For every output, |c| / (|A·x0| + |c|): the share of its magnitude that comes from the bias part."""
        with torch.no_grad():
            out = self(x0, x0)
        return bias_share_of(out.linear[0], out.bias[0])

    def top_singular(
        self, x0: torch.Tensor, k: int = 6, oversample: int = 8, power_iterations: int = 2, seed: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The ``k`` largest singular triplets of A(x0) by randomised SVD (Halko et al.).

        Only products with A and Aᵀ are used. Returns (U: k output-shaped left vectors,
        S: k singular values, V: k input-shaped right vectors), with A·v_i = s_i·u_i.
        """
        with torch.no_grad():
            out_shape = self(x0, bias=False).output.shape[1:]
        generator = torch.Generator(device=x0.device).manual_seed(seed)
        width = min(k + oversample, x0[0].numel(), out_shape.numel())
        omega = torch.randn((width, *x0.shape[1:]), dtype=x0.dtype, device=x0.device, generator=generator)
        y = self.apply(x0, omega).flatten(1)  # width × outputs: the rows are A·ω
        for _ in range(power_iterations):
            q = torch.linalg.qr(y.T).Q.T
            z = self.apply_transposed(x0, q.view(-1, *out_shape)).flatten(1)
            y = self.apply(x0, torch.linalg.qr(z.T).Q.T.reshape(-1, *x0.shape[1:])).flatten(1)
        q = torch.linalg.qr(y.T).Q  # outputs × width, orthonormal basis of A's range
        b = self.apply_transposed(x0, q.T.reshape(-1, *out_shape)).flatten(1)  # width × inputs: rows of Qᵀ A
        u_small, s, vh = torch.linalg.svd(b, full_matrices=False)
        u = q @ u_small
        return u.T[:k].reshape(-1, *out_shape), s[:k], vh[:k].reshape(-1, *x0.shape[1:])
