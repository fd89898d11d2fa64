"""MACs of single operations against counts worked out by hand."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import convforge
from convforge.profiler import count_macs


def costs(model, *inputs):
    """(macs, thop, full) of one forward pass."""
    result = convforge.profile(model, inputs if len(inputs) > 1 else inputs[0])
    return tuple(result.macs_by_convention[c] for c in ("macs", "thop", "full"))


def conv_case(conv, shape):
    return conv, torch.randn(*shape)


@pytest.mark.parametrize(
    ("layer", "shape", "expected"),
    [
        # Cout × Hout × Wout × Cin/groups × kh × kw (× batch)
        (nn.Conv2d(3, 8, 3, padding=1, bias=False), (1, 3, 10, 10), 8 * 10 * 10 * 3 * 9),
        (nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False), (1, 4, 9, 9), 6 * 5 * 5 * 4 * 9),
        (nn.Conv2d(2, 4, 3, dilation=2, bias=False), (1, 2, 10, 10), 4 * 6 * 6 * 2 * 9),
        (nn.Conv2d(8, 16, 3, padding=1, groups=4, bias=False), (1, 8, 10, 10), 16 * 10 * 10 * 2 * 9),
        (nn.Conv2d(8, 8, 5, padding=2, groups=8, bias=False), (2, 8, 6, 6), 2 * 8 * 6 * 6 * 1 * 25),
        (nn.Conv1d(4, 5, 3, bias=False), (1, 4, 10), 5 * 8 * 4 * 3),
        # transposed: Cin × Hin × Win × Cout/groups × kh × kw
        (nn.ConvTranspose2d(4, 3, 3, stride=2, bias=False), (1, 4, 5, 5), 4 * 5 * 5 * 3 * 9),
        (nn.ConvTranspose2d(4, 6, 2, stride=2, groups=2, bias=False), (1, 4, 3, 3), 4 * 3 * 3 * 3 * 4),
    ],
    ids=["plain", "strided", "dilated", "grouped", "depthwise", "conv1d", "transposed", "transposed-grouped"],
)
def test_convolution_macs(layer, shape, expected):
    macs, thop, full = costs(layer, torch.randn(*shape))
    assert macs == expected
    assert thop == expected  # thop ignores the bias too
    assert full == expected


def test_conv_bias_is_counted_only_under_full():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    macs, thop, full = costs(conv, torch.randn(1, 3, 10, 10))
    assert macs == thop == 8 * 100 * 27
    assert full == macs + 8 * 100


def test_linear_macs_on_2d_and_3d_inputs():
    linear = nn.Linear(20, 30)
    assert costs(linear, torch.randn(4, 20))[0] == 4 * 20 * 30
    assert count_macs(linear, (20,), batch_size=4) == 4 * 20 * 30
    macs, _, full = costs(linear, torch.randn(2, 5, 20))
    assert macs == 2 * 5 * 20 * 30
    assert full == macs + 2 * 5 * 30


class Products(nn.Module):
    def forward(self, a, b, c, d):
        return (a @ b).sum() + torch.einsum("bij,bjk->bik", c, d).sum() + torch.bmm(c, d).sum()


def test_matmul_einsum_and_bmm_in_functional_form():
    a, b = torch.randn(3, 4, 5), torch.randn(5, 6)
    c, d = torch.randn(2, 3, 4), torch.randn(2, 4, 5)
    result = convforge.profile(Products(), (a, b, c, d))
    assert result.macs == 3 * 4 * 5 * 6 + 2 * 3 * 4 * 5 + 2 * 3 * 4 * 5
    assert result.by_category == {"matmul": result.macs}


class Attention(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


class ManualAttention(nn.Module):
    def forward(self, q, k, v):
        weights = (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).softmax(-1)
        return weights @ v


def test_scaled_dot_product_attention_counts_both_products():
    q, k, v = torch.randn(2, 4, 10, 8), torch.randn(2, 4, 12, 8), torch.randn(2, 4, 12, 8)
    expected = 2 * 4 * 10 * 12 * (8 + 8)  # Q·Kᵀ then weights·V
    fused = convforge.profile(Attention(), (q, k, v))
    assert fused.by_category == {"attention": expected}
    assert convforge.profile(ManualAttention(), (q, k, v)).macs == expected


def test_attention_with_a_wider_value_head_takes_the_unfused_path_and_counts_the_same():
    q, k, v = torch.randn(2, 4, 10, 8), torch.randn(2, 4, 12, 8), torch.randn(2, 4, 12, 16)
    expected = 2 * 4 * 10 * 12 * (8 + 16)
    assert convforge.profile(Attention(), (q, k, v)).macs == expected
    assert convforge.profile(ManualAttention(), (q, k, v)).macs == expected


def test_multihead_attention_fast_path_counts_projections_and_products():
    mha = nn.MultiheadAttention(16, 2, batch_first=True).eval()
    x = torch.randn(2, 5, 16)

    class SelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = mha

        def forward(self, x):
            return self.mha(x, x, x, need_weights=False)[0]

    projections = 2 * (5 * 16 * 16) * 4  # q, k, v in and the out-projection, per batch element
    products = 2 * 2 * 5 * 5 * 16
    assert convforge.profile(SelfAttention(), x).macs == projections + products


@pytest.mark.parametrize(("affine", "per_element"), [(True, 4), (False, 2)])
def test_batchnorm_is_free_in_macs_and_2_or_4_per_element_in_thop(affine, per_element):
    bn = nn.BatchNorm2d(8, affine=affine)
    macs, thop, full = costs(bn, torch.randn(2, 8, 4, 4))
    assert macs == 0
    assert thop == full == per_element * 2 * 8 * 4 * 4


def test_layernorm_and_groupnorm_follow_the_norm_rule():
    assert costs(nn.LayerNorm(6), torch.randn(3, 6))[1] == 4 * 18
    assert costs(nn.GroupNorm(2, 4), torch.randn(1, 4, 3, 3))[1] == 4 * 36


def test_max_pooling_is_free_in_thop_and_counts_comparisons_in_full():
    macs, thop, full = costs(nn.MaxPool2d(2), torch.randn(1, 3, 8, 8))
    assert (macs, thop) == (0, 0)
    assert full == 3 * 4 * 4 * 3  # three comparisons per 2×2 window


def test_average_pooling_counts_one_add_per_pooled_input_and_one_divide_per_output():
    assert costs(nn.AvgPool2d(2), torch.randn(1, 3, 8, 8))[1] == 3 * 64 + 3 * 16
    # windows along one 5-wide axis with kernel 3, stride 2, padding 1: [0,2) [1,4) [3,5) → 7 inputs
    assert costs(nn.AvgPool2d(3, 2, 1, count_include_pad=False), torch.randn(1, 1, 5, 5))[1] == 7 * 7 + 9
    # with padding included the windows are 3 + 3 + 3 = 9 per axis
    assert costs(nn.AvgPool2d(3, 2, 1, count_include_pad=True), torch.randn(1, 1, 5, 5))[1] == 9 * 9 + 9


def test_adaptive_average_pooling():
    assert costs(nn.AdaptiveAvgPool2d(1), torch.randn(1, 4, 6, 6))[1] == 4 * 36 + 4
    # 5 → 2 windows: [0, 3) and [2, 5), three inputs each
    assert costs(nn.AdaptiveAvgPool2d(2), torch.randn(1, 1, 5, 5))[1] == 6 * 6 + 4


def test_upsampling_costs_per_output_element():
    x = torch.randn(1, 2, 3, 3)
    assert costs(nn.Upsample(scale_factor=2, mode="nearest"), x)[1:] == (72, 72)
    assert costs(nn.Upsample(scale_factor=2, mode="bilinear"), x)[1] == 11 * 72


def test_softmax_costs_3n_minus_1_per_row():
    assert costs(nn.Softmax(dim=-1), torch.randn(2, 5))[1] == 2 * (3 * 5 - 1)


def test_activations_and_elementwise_are_free_except_under_full():
    class Block(nn.Module):
        def forward(self, x):
            return F.relu(x) + torch.sigmoid(x) * x

    macs, thop, full = costs(Block(), torch.randn(1, 10))
    assert (macs, thop) == (0, 0)
    assert full == 10 * (1 + 3 + 1 + 1)  # relu, sigmoid, mul, add
    result = convforge.profile(Block(), torch.randn(1, 10), convention="full")
    assert result.by_category == {"activation": 40, "elementwise": 20}


def test_operation_without_a_formula_is_listed_by_name_not_counted_as_zero():
    class Spectral(nn.Module):
        def forward(self, x):
            return torch.fft.rfft(x).abs()

    result = convforge.profile(Spectral(), torch.randn(1, 16))
    assert result.uncounted_ops == {"_fft_r2c": 1}
    assert "_fft_r2c" in result.summary_table()


class Inner(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 3, 3, 3))

    def forward(self, x):
        return F.conv2d(x, self.weight, padding=1)


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = Inner()
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.inner(x).mean((2, 3)))


def test_functional_calls_are_charged_to_the_innermost_module():
    result = convforge.profile(Outer(), (3, 5, 5))
    rows = {row.path: row for row in result.modules}
    assert rows["inner"].macs["macs"] == 4 * 25 * 27
    assert rows["head"].macs["macs"] == 8
    assert rows[""].macs["macs"] == result.macs == 4 * 25 * 27 + 8
    assert rows["inner"].output_shape == (1, 4, 5, 5)
    assert rows[""].params == 4 * 27 + 4 * 2 + 2


def test_fused_and_unfused_attention_give_the_same_macs_and_thop_totals():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = torch.randn(1, 2, 6, 8), torch.randn(1, 2, 6, 8), torch.randn(1, 2, 6, 8)
    fused = convforge.profile(Attention(), (q, k, v))
    with sdpa_kernel(SDPBackend.MATH):
        unfused = convforge.profile(Attention(), (q, k, v))
    for convention in ("macs", "thop"):
        assert fused.macs_by_convention[convention] == unfused.macs_by_convention[convention]
    # the unfused path scales q and k separately, which `full` sees as extra elementwise work
    assert unfused.macs_by_convention["full"] > fused.macs_by_convention["full"]


def test_spatial_means_are_pools_and_other_means_are_reductions():
    class Means(nn.Module):
        def forward(self, x):
            return x.mean((2, 3)).sum() + x.mean(1).sum()

    result = convforge.profile(Means(), (3, 4, 4), convention="full")
    assert result.macs_of(op="mean", convention="thop") == 3 * 16 + 3  # only the global pool
    assert result.by_category["pooling"] == 3 * 16 + 3
    assert result.by_category["reduction"] >= 3 * 16 + 16


def test_thop_hooks_counts_only_what_runs_directly_in_a_module_class_thop_hooks():
    class Functional(torch.nn.Module):
        def forward(self, x):
            return torch.softmax(x, 1)

    class SubclassedNorm(torch.nn.BatchNorm1d):
        """thop matches classes exactly: a subclass goes uncounted."""

    x = (4, 10)
    seen = convforge.profile(torch.nn.Sequential(torch.nn.Softmax(1), torch.nn.BatchNorm1d(4)), x,
                             convention="thop_hooks")  # fmt: skip
    assert seen.macs == seen.macs_by_convention["thop"] == (3 * 4 - 1) * 10 + 4 * 10 * 2 * 2  # softmax over 4, BN
    unseen = convforge.profile(torch.nn.Sequential(Functional(), SubclassedNorm(4)), x, convention="thop_hooks")
    assert unseen.macs == 0 and unseen.macs_by_convention["thop"] == seen.macs
