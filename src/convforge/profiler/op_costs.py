"""What each tensor operation costs, under each counting convention.

Costs are given for ATen operations, the level every PyTorch call reaches (modules,
``F.conv2d``, ``@``, ``torch.einsum`` and ``F.scaled_dot_product_attention`` alike),
so that nothing a model computes is missed.

Conventions (all in MACs; FLOPs = 2 × MACs in every convention):

``macs``
    Multiply-accumulates of convolution, linear, matmul/bmm/einsum and attention
    (the two products of scaled dot-product attention). Biases are not counted. This
    is what fvcore and ptflops call "flops".
``thop``
    As thop / Ultralytics count, so that papers reporting thop figures can be
    reproduced: the ``macs`` products, BatchNorm/LayerNorm/GroupNorm = 2 × elements
    (× 2 again with an affine), nearest upsample = output elements, bilinear = 11 ×,
    bicubic = 259 ×, average pooling = one add per pooled input plus one divide per
    output, softmax = 3n − 1 per row, PReLU = elements; activations, max pooling,
    concatenation and conv bias = 0. A mean over all spatial axes is a global average
    pool and counted as one; other means are reductions, free as in thop. Nearest upsampling follows thop up to 2.0, the
    releases behind published figures such as LeYOLO's; ultralytics-thop 2.2 counts it
    as 0.
``thop_hooks``
    The ``thop`` costs of only what the original thop (0.1) sees: operations run
    directly by a module of exactly a class it hooks (convolutions, linear layers,
    norms, average pooling, upsampling, softmax, PReLU; see
    :mod:`convforge.profiler.thop_hooks`). Functional calls inside other modules count
    0, as in thop 0.1. LeYOLO's published GFLOPs are counted this way.
``full``
    Every operation: the products (with bias adds), normalisation, activations,
    elementwise arithmetic, pooling, reductions, softmax and resampling, each
    non-product operation counting as one MAC as in ``thop``.

Operations PyTorch decomposes before dispatch are counted as their parts: ``nn.RMSNorm``
on the CPU, for instance, is elementwise arithmetic and a reduction, not a norm.
Recurrent layers (``mkldnn_rnn_layer``) have no formula yet and are listed as uncounted.

Each operation also carries a *category* (``conv``, ``matmul``, ``attention``,
``norm``, ``activation``, ``elementwise``, ``pooling``, ``reduction``, ``softmax``,
``upsample``, ``data``), so that a total can be broken down by class.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

CONVENTIONS = ("macs", "thop", "thop_hooks", "full")
CATEGORIES = (
    "conv",
    "matmul",
    "attention",
    "norm",
    "activation",
    "elementwise",
    "pooling",
    "reduction",
    "softmax",
    "upsample",
    "data",
)


@dataclass(frozen=True)
class OpCost:
    """The cost of one call of one operation, in MACs, under each convention."""

    category: str
    macs: int = 0
    thop: int = 0
    full: int = 0
    thop_hooks: int = 0  # set by the profiler, which knows the module that ran the operation

    def under(self, convention: str) -> int:
        """The cost under a named convention."""
        return getattr(self, convention)


CostRule = Callable[[tuple, dict, Any], "OpCost | tuple[OpCost, ...] | None"]


def _numel(shape) -> int:
    return math.prod(int(s) for s in shape)


def _first_tensor(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


# ---------------------------------------------------------------- products


def _convolution(args: tuple, kwargs: dict, out: Any) -> OpCost:
    x, w, bias = args[0], args[1], args[2]
    transposed = bool(args[6]) if len(args) > 6 else bool(kwargs.get("transposed", False))
    batch = x.shape[0]
    # A (non-transposed) conv does Cout × Cin/groups × kernel MACs per output position;
    # a transposed conv scatters that much work per *input* position.
    positions = _numel(x.shape[2:]) if transposed else _numel(out.shape[2:])
    macs = batch * w.numel() * positions
    bias_adds = out.numel() if bias is not None else 0
    return OpCost("conv", macs, macs, macs + bias_adds)


def _mm(args: tuple, kwargs: dict, out: Any) -> OpCost:
    a, b = args[0], args[1]
    macs = a.shape[0] * a.shape[1] * b.shape[1]
    return OpCost("matmul", macs, macs, macs)


def _addmm(args: tuple, kwargs: dict, out: Any) -> OpCost:
    a, b = args[1], args[2]
    macs = a.shape[0] * a.shape[1] * b.shape[1]
    return OpCost("matmul", macs, macs, macs + out.numel())


def _bmm(args: tuple, kwargs: dict, out: Any) -> OpCost:
    a, b = args[0], args[1]
    macs = a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
    return OpCost("matmul", macs, macs, macs)


def _baddbmm(args: tuple, kwargs: dict, out: Any) -> OpCost:
    a, b = args[1], args[2]
    macs = a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
    return OpCost("matmul", macs, macs, macs + out.numel())


def _addmv(args: tuple, kwargs: dict, out: Any) -> OpCost:
    a = args[1]
    macs = a.shape[0] * a.shape[1]
    return OpCost("matmul", macs, macs, macs + out.numel())


def _mv(args: tuple, kwargs: dict, out: Any) -> OpCost:
    a = args[0]
    macs = a.shape[0] * a.shape[1]
    return OpCost("matmul", macs, macs, macs)


def _cdist(args: tuple, kwargs: dict, out: Any) -> OpCost:
    # pairwise distances: one multiply-accumulate per coordinate of every pair
    macs = _first_tensor(out).numel() * args[0].shape[-1]
    return OpCost("matmul", macs, macs, 2 * macs)


def _trilinear(args: tuple, kwargs: dict, out: Any) -> OpCost | None:
    # F.bilinear's kernel, called as _trilinear(x1, weight[out, in1, in2], x2, ...):
    # y_k = x1ᵀ·W_k·x2 takes in1 × in2 MACs per output; thop charges (in1 + 1) × in2.
    x1, weight, x2 = args[0], args[1], args[2]
    if weight.dim() != 3:
        return None
    outputs, in1, in2 = _first_tensor(out).numel(), x1.shape[-1], x2.shape[-1]
    macs = outputs * in1 * in2
    return OpCost("matmul", macs, outputs * (in1 + 1) * in2, macs)


def _dot(args: tuple, kwargs: dict, out: Any) -> OpCost:
    macs = args[0].numel()
    return OpCost("matmul", macs, macs, macs)


def _sdpa(args: tuple, kwargs: dict, out: Any) -> tuple[OpCost, ...]:
    # The fused kernels. thop counts only the two products of F.scaled_dot_product_attention;
    # when PyTorch takes the unfused path instead (scale, bmm, _safe_softmax, bmm) the same
    # macs and thop totals come out, in the matmul and softmax categories.
    q, k, v = args[0], args[1], args[2]
    rows = _numel(q.shape[:-1])  # batch × heads × queries
    keys = k.shape[-2]
    macs = rows * keys * (q.shape[-1] + v.shape[-1])  # Q·Kᵀ, then softmax(·)·V
    scale = rows * keys
    softmax = rows * (3 * keys - 1)
    return OpCost("attention", macs, macs, macs + scale), OpCost("softmax", 0, 0, softmax)


def _native_multi_head_attention(args: tuple, kwargs: dict, out: Any) -> tuple[OpCost, ...]:
    # The fused fast path of nn.MultiheadAttention (batch-first, eval): in-projections of
    # query, key and value and the out-projection (matmul), the two attention products
    # (attention), and the softmax, reported as three parts.
    query, key = args[0], args[1]
    embed_dim, heads = int(args[3]), int(args[4])
    batch, queries, keys = query.shape[0], query.shape[-2], key.shape[-2]
    projections = batch * embed_dim * embed_dim * (2 * queries + 2 * keys)
    biases = batch * embed_dim * (2 * queries + 2 * keys)
    products = 2 * batch * queries * keys * embed_dim
    scale = batch * heads * queries * keys
    softmax = batch * heads * queries * (3 * keys - 1)
    return (
        OpCost("matmul", projections, projections, projections + biases),
        OpCost("attention", products, products, products + scale),
        OpCost("softmax", 0, softmax, softmax),
    )


def _mkldnn_rnn_layer(args: tuple, kwargs: dict, out: Any) -> OpCost:
    # One layer and direction of an LSTM or GRU on CPU: (input, w_ih, w_hh, b_ih, b_hh, ...). Each step does
    # the input and hidden products of every gate (w_ih is [gates·H, I], w_hh [gates·H, H]); ``full`` adds the
    # bias adds and the gate arithmetic (about 10 operations per hidden unit and step).
    x, w_ih, w_hh = args[0], args[1], args[2]
    steps = x.numel() // x.shape[-1]  # time × batch
    macs = steps * (w_ih.numel() + w_hh.numel())
    hidden = w_hh.shape[1]
    return OpCost("matmul", macs, macs, macs + steps * (2 * w_ih.shape[0] + 10 * hidden))


# ---------------------------------------------------------------- normalisation


def _norm(input_index: int, weight_index: int, training_index: int | None = None, stats: bool = False) -> CostRule:
    """Normalisation; ``stats`` for norms that always compute their statistics (LayerNorm, GroupNorm)."""

    def rule(args: tuple, kwargs: dict, out: Any) -> OpCost:
        n = args[input_index].numel()
        affine = len(args) > weight_index and args[weight_index] is not None
        cost = 2 * n * (2 if affine else 1)  # normalise (2/elt), then scale and shift (2/elt)
        training = training_index is not None and len(args) > training_index and bool(args[training_index])
        statistics = 2 * n if (stats or training) else 0  # mean and variance
        return OpCost("norm", 0, cost, cost + statistics)

    return rule


# ---------------------------------------------------------------- activations and elementwise

# Per-element cost of activations under ``full``: comparisons, exponentials and
# divisions each count as one operation.
ACTIVATION_COSTS = {
    "relu": 1,
    "threshold": 1,
    "hardtanh": 2,
    "leaky_relu": 2,
    "rrelu_with_noise": 2,
    "prelu": 2,
    "_prelu_kernel": 2,
    "elu": 3,
    "celu": 3,
    "selu": 4,
    "hardsigmoid": 3,
    "hardswish": 4,
    "sigmoid": 3,
    "log_sigmoid": 4,
    "log_sigmoid_forward": 4,
    "silu": 4,
    "tanh": 5,
    "softplus": 3,
    "mish": 7,
    "gelu": 8,
    "glu": 4,
    "hardshrink": 1,
    "softshrink": 2,
}


def _activation(name: str) -> CostRule:
    per_element = ACTIVATION_COSTS[name]
    counted_by_thop = name in ("prelu", "_prelu_kernel")  # thop counts only PReLU, as elements

    def rule(args: tuple, kwargs: dict, out: Any) -> OpCost:
        n = _first_tensor(out).numel()
        return OpCost("activation", 0, n if counted_by_thop else 0, per_element * n)

    return rule


ELEMENTWISE_COSTS = {
    **dict.fromkeys(
        (
            "add sub rsub mul div neg reciprocal abs sign sqrt rsqrt exp exp2 expm1 log log2 log10 log1p "
            "pow square sin cos tan asin acos atan atan2 sinh cosh erf erfc erfinv floor ceil round trunc frac "
            "remainder fmod clamp clamp_min clamp_max clip maximum minimum fmax fmin where lerp hypot "
            "eq ne lt le gt ge logical_and logical_or logical_xor logical_not bitwise_and bitwise_or bitwise_xor "
            "bitwise_not isnan isinf nan_to_num masked_fill xlogy sgn heaviside copysign floor_divide logit "
            "scatter_add index_add"
        ).split(),
        1,
    ),
    "addcmul": 2,
    "addcdiv": 2,
    "native_dropout": 2,  # a mask draw and a scaled multiply per element, in training mode
}


def _elementwise(name: str) -> CostRule:
    per_element = ELEMENTWISE_COSTS[name]

    def rule(args: tuple, kwargs: dict, out: Any) -> OpCost:
        return OpCost("elementwise", 0, 0, per_element * _first_tensor(out).numel())

    return rule


# ---------------------------------------------------------------- pooling, reductions, softmax, resampling


def _pair(value: Any, dims: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * dims
    value = tuple(value)
    return value * dims if len(value) == 1 else value


def _window_inputs(size: int, outputs: int, k: int, s: int, p: int, include_pad: bool) -> int:
    """Inputs summed over all windows along one axis (padding counted only when ``include_pad``)."""
    lower, upper = (-p, size + p) if include_pad else (0, size)
    return sum(max(min(i * s - p + k, upper) - max(i * s - p, lower), 0) for i in range(outputs))


def _max_pool(dims: int) -> CostRule:
    def rule(args: tuple, kwargs: dict, out: Any) -> OpCost:
        y = _first_tensor(out)
        kernel = _pair(args[1], dims)
        return OpCost("pooling", 0, 0, y.numel() * max(_numel(kernel) - 1, 1))

    return rule


def _avg_pool(dims: int) -> CostRule:
    def rule(args: tuple, kwargs: dict, out: Any) -> OpCost:
        x, y = args[0], _first_tensor(out)
        kernel = _pair(args[1], dims)
        stride = _pair(args[2] if len(args) > 2 and args[2] else kernel, dims)
        padding = _pair(args[3] if len(args) > 3 else 0, dims)
        include_pad = bool(args[5]) if len(args) > 5 else True
        windows = 1
        for size, o, k, s, p in zip(x.shape[-dims:], y.shape[-dims:], kernel, stride, padding):
            windows *= _window_inputs(size, o, k, s, p, include_pad)
        cost = _numel(x.shape[:-dims]) * windows + y.numel()  # one add per pooled input, one divide per output
        return OpCost("pooling", 0, cost, cost)

    return rule


def _adaptive_windows(x_shape, y_shape) -> int:
    """Inputs summed over all windows of an adaptive pool (output j spans [j·I//O, ⌈(j+1)·I/O⌉))."""
    total = 1
    for i, o in zip(x_shape, y_shape):
        total *= o if i == o else sum(-(-(j + 1) * i // o) - j * i // o for j in range(o))
    return total


def _adaptive_avg_pool(args: tuple, kwargs: dict, out: Any) -> OpCost:
    x, y = args[0], _first_tensor(out)
    cost = _adaptive_windows(x.shape, y.shape) + y.numel()
    return OpCost("pooling", 0, cost, cost)


def _adaptive_max_pool(args: tuple, kwargs: dict, out: Any) -> OpCost:
    x, y = args[0], _first_tensor(out)
    return OpCost("pooling", 0, 0, max(_adaptive_windows(x.shape, y.shape) - y.numel(), y.numel()))


def _mean(args: tuple, kwargs: dict, out: Any) -> OpCost:
    # A mean over every axis after the channels is how PyTorch runs a global average pool
    # (AdaptiveAvgPool2d(1), x.mean((2, 3))), which thop counts as a pool: one add per input,
    # one divide per output. Any other mean is a reduction, which thop does not count.
    x, y = args[0], _first_tensor(out)
    cost = x.numel() + y.numel()
    dims = args[1] if len(args) > 1 else kwargs.get("dim")
    if dims is not None and x.dim() >= 3:
        axes = {d % x.dim() for d in ([dims] if isinstance(dims, int) else dims)}
        if axes == set(range(2, x.dim())):
            return OpCost("pooling", 0, cost, cost)
    return OpCost("reduction", 0, 0, cost)


def _reduction(args: tuple, kwargs: dict, out: Any) -> OpCost:
    return OpCost("reduction", 0, 0, args[0].numel())


def _softmax(log: bool, thop_counts: bool = True) -> CostRule:
    def rule(args: tuple, kwargs: dict, out: Any) -> OpCost:
        x, dim = args[0], args[1]
        n = x.shape[dim] if x.dim() else 1
        rows = x.numel() // n if n else 0
        cost = rows * (n + max(n - 1, 0) + n) + (rows if log else 0)  # exp, sum, divide (and a log)
        return OpCost("softmax", 0, cost if thop_counts else 0, cost)

    return rule


UPSAMPLE_COSTS = {"nearest": 1, "nearest_exact": 1, "linear": 5, "bilinear": 11, "bicubic": 259, "trilinear": 31}


def _upsample(mode: str) -> CostRule:
    per_output = UPSAMPLE_COSTS[mode]

    def rule(args: tuple, kwargs: dict, out: Any) -> OpCost:
        n = _first_tensor(out).numel()
        return OpCost("upsample", 0, per_output * n, per_output * n)

    return rule


def _grid_sampler(args: tuple, kwargs: dict, out: Any) -> OpCost:
    n = _first_tensor(out).numel()
    return OpCost("upsample", 0, 0, 11 * n)


def _free(category: str) -> CostRule:
    cost = OpCost(category)

    def rule(args: tuple, kwargs: dict, out: Any) -> OpCost:
        return cost

    return rule


# Operations that move or create data and compute nothing: known, and costed at 0 in every convention.
DATA_MOVEMENT = (
    "view _unsafe_view reshape _reshape_alias permute transpose t expand expand_as contiguous clone copy "
    "_to_copy to cat stack split split_with_sizes chunk unbind slice select index index_select gather "
    "unsqueeze squeeze flatten unflatten detach alias empty empty_like empty_strided zeros zeros_like ones "
    "ones_like full full_like fill zero new_empty new_empty_strided new_zeros new_ones new_full as_strided "
    "constant_pad_nd pad reflection_pad1d reflection_pad2d reflection_pad3d replication_pad1d replication_pad2d "
    "replication_pad3d narrow roll flip repeat tile pixel_shuffle pixel_unshuffle channel_shuffle "
    "native_channel_shuffle lift_fresh lift_fresh_copy arange scalar_tensor embedding unfold im2col col2im "
    "slice_scatter select_scatter index_put _unsafe_index _unsafe_index_put scatter masked_select nonzero "
    "tril triu bernoulli rand rand_like randn randn_like randint randperm normal uniform _local_scalar_dense "
    "set resize _index_put_impl diagonal movedim swapaxes split_copy unbind_copy view_copy unsafe_split "
    "unsafe_split_with_sizes unsafe_chunk linspace max_unpool2d max_unpool3d _embedding_bag_forward_only"
).split()


def _build_table() -> dict[str, CostRule]:
    table: dict[str, CostRule] = {}
    # Every convolution reaches the dispatcher as one of these (input, weight, bias, stride,
    # padding, dilation, transposed, ...); backend kernels run below it and are never seen.
    for name in ("convolution", "_convolution", "convolution_overrideable"):
        table[name] = _convolution
    table.update(mm=_mm, addmm=_addmm, bmm=_bmm, baddbmm=_baddbmm, addmv=_addmv, mv=_mv, dot=_dot, vdot=_dot)
    table["_addmm_activation"] = _addmm
    table["_cdist_forward"] = _cdist
    table["_trilinear"] = _trilinear
    for name in ("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention",
                 "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention",
                 "_scaled_dot_product_fused_attention_overrideable"):  # fmt: skip
        table[name] = _sdpa
    table["_native_multi_head_attention"] = _native_multi_head_attention
    table["mkldnn_rnn_layer"] = _mkldnn_rnn_layer
    # normalisation: (input index, weight index, training-flag index)
    table["native_batch_norm"] = _norm(0, 1, 5)
    table["_native_batch_norm_legit"] = _norm(0, 1, 5)
    table["_native_batch_norm_legit_no_training"] = _norm(0, 1)
    table["_native_batch_norm_legit_functional"] = _norm(0, 1, 5)
    table["_batch_norm_with_update"] = _norm(0, 1, None)
    table["_batch_norm_no_update"] = _norm(0, 1)
    table["native_layer_norm"] = _norm(0, 2, stats=True)
    table["native_group_norm"] = _norm(0, 1, stats=True)
    table["_fused_rms_norm"] = _norm(0, 2, stats=True)
    table["_weight_norm_interface"] = _norm(0, 1, stats=True)
    for name in ACTIVATION_COSTS:
        table[name] = _activation(name)
    for name in ELEMENTWISE_COSTS:
        table[name] = _elementwise(name)
    for dims in (1, 2, 3):
        table[f"max_pool{dims}d"] = _max_pool(dims)
        table[f"max_pool{dims}d_with_indices"] = _max_pool(dims)
        table[f"avg_pool{dims}d"] = _avg_pool(dims)
        table[f"adaptive_avg_pool{dims}d"] = _adaptive_avg_pool
        table[f"_adaptive_avg_pool{dims}d"] = _adaptive_avg_pool
        table[f"adaptive_max_pool{dims}d"] = _adaptive_max_pool
    table["fractional_max_pool2d"] = _max_pool(2)
    table["fractional_max_pool3d"] = _max_pool(3)
    table["mean"] = _mean
    for name in ("sum", "prod", "amax", "amin", "max", "min", "argmax", "argmin", "var", "std", "var_mean",
                 "std_mean", "norm", "linalg_vector_norm", "logsumexp", "cumsum", "cumprod", "all", "any",
                 "topk", "sort"):  # fmt: skip
        table[name] = _reduction
    table["_softmax"] = _softmax(log=False)
    table["_log_softmax"] = _softmax(log=True)
    table["_safe_softmax"] = _softmax(log=False, thop_counts=False)  # only inside unfused SDPA, see _sdpa
    for dims, linear in ((1, "linear"), (2, "bilinear"), (3, "trilinear")):
        table[f"upsample_nearest{dims}d"] = _upsample("nearest")
        table[f"_upsample_nearest_exact{dims}d"] = _upsample("nearest_exact")
        table[f"upsample_{linear}{dims}d"] = _upsample(linear)
        table[f"_upsample_{linear}{dims}d_aa"] = _upsample(linear)
    table["upsample_bicubic2d"] = _upsample("bicubic")
    table["_upsample_bicubic2d_aa"] = _upsample("bicubic")
    table["grid_sampler_2d"] = _grid_sampler
    for name in DATA_MOVEMENT:
        table[name] = _free("data")
    return table


COST_TABLE: dict[str, CostRule] = _build_table()


def op_name(func: Any) -> str:
    """The ATen name of a dispatched operation, in-place and out variants folded in (``relu_`` → ``relu``)."""
    name = func.overloadpacket.__name__
    if name.endswith("_") and not name.endswith("__") and name.rstrip("_") in COST_TABLE:
        name = name.rstrip("_")
    return name


def cost_of(name: str, args: tuple, kwargs: dict, out: Any) -> tuple[OpCost, ...] | None:
    """The cost of one call, as one part per category, or None when convforge has no formula for the operation."""
    rule = COST_TABLE.get(name)
    if rule is None:
        return None
    cost = rule(args, kwargs, out)
    if cost is None:  # the rule does not cover this form of the operation
        return None
    return cost if isinstance(cost, tuple) else (cost,)
