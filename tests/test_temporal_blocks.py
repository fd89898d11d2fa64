"""MM-Pyramid's blocks on hand cases: the band mask, the dilated block's reach, the gates, the pyramid and fusion."""

import pytest
import torch

import convforge
from convforge.nn.band_attention import BandMaskedAttention, band_mask
from convforge.nn.dilated_temporal import DilatedTemporalBlock
from convforge.nn.gated_fusion import GatedFusion
from convforge.nn.temporal_pyramid import LevelFusion, PyramidUnit


@pytest.mark.parametrize("dilation", [0, 1, 2, 4, 8, 12])
def test_the_band_mask_keeps_exactly_the_steps_within_the_dilation(dilation):
    mask = band_mask(10, dilation)
    for i in range(10):
        for j in range(10):
            assert bool(mask[i, j]) == (abs(i - j) <= dilation)
    assert band_mask(10, dilation) is mask  # built once per length, dilation and device


@pytest.mark.parametrize("dilation", [1, 2, 4])
def test_attention_at_a_step_sees_only_its_band(dilation):
    torch.manual_seed(0)
    block = BandMaskedAttention(32, heads=4, dilation=dilation).eval()
    x, context = torch.randn(2, 10, 32), torch.randn(2, 10, 32)
    t = 4
    for source in (None, context):  # self-attention, and keys and values from the other stream
        base = block(x, source)
        for step in range(10):
            changed_x, changed_context = x.clone(), context.clone()
            bump = torch.randn(2, 32)  # not a constant: LayerNorm would remove a constant shift
            if source is None:
                changed_x[:, step] += bump
            else:
                changed_context[:, step] += bump
            moved = block(changed_x, None if source is None else changed_context)
            differs = not torch.allclose(moved[:, t], base[:, t], atol=1e-6)
            assert differs == (abs(step - t) <= dilation), (step, source is None)


@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_the_dilated_block_reaches_t_minus_d_t_and_t_plus_d(dilation):
    torch.manual_seed(0)
    block = DilatedTemporalBlock(16, dilation)
    x = (torch.rand(1, 12, 16) + 2.0).requires_grad_()  # positive: the final ReLU passes the residual
    block(x)[0, 6].sum().backward()
    reached = {t for t in range(12) if x.grad[0, t].abs().sum() > 0}
    assert reached == {6 - dilation, 6, 6 + dilation}


def test_the_gates_weigh_own_and_cross_attention_each_from_both():
    gate = GatedFusion(4)
    own, cross = torch.randn(3, 4), torch.randn(3, 4)
    with torch.no_grad():
        for layer, bias in ((gate.gate_self, 50.0), (gate.gate_cross, -50.0)):
            layer.weight.zero_()
            layer.bias.fill_(bias)
    assert torch.allclose(gate(own, cross), own)  # σ(50) ≈ 1, σ(−50) ≈ 0
    torch.manual_seed(1)
    gate = GatedFusion(4)
    both = torch.cat([own, cross], -1)
    expected = torch.sigmoid(gate.gate_self(both)) * own + torch.sigmoid(gate.gate_cross(both)) * cross
    assert torch.allclose(gate(own, cross), expected)


def test_a_pyramid_unit_mixes_the_two_streams_and_keeps_their_shape():
    torch.manual_seed(0)
    unit = PyramidUnit(32, dilation=2, heads=4).eval()
    audio, visual = torch.randn(2, 10, 32), torch.randn(2, 10, 32)
    a, v = unit(audio, visual)
    assert a.shape == v.shape == (2, 10, 32)
    a2, _ = unit(audio, visual + torch.randn_like(visual))
    assert not torch.allclose(a, a2)  # the audio stream read the visual one


def test_level_fusion_attends_across_levels_and_sums_them_with_sigmoid_weights():
    torch.manual_seed(0)
    fusion = LevelFusion(32, heads=4).eval()
    levels = torch.randn(4, 2, 10, 32)
    out = fusion(levels)
    assert out.shape == (2, 10, 32)
    moved = levels.clone()
    moved[:, :, 7] += torch.randn(4, 2, 32)  # another time step: fusion works within each step
    assert torch.allclose(fusion(moved)[:, 3], out[:, 3], atol=1e-6)


def test_the_profiler_counts_the_masked_attention():
    block = BandMaskedAttention(64, heads=8, dilation=2).eval()
    result = convforge.profile(block, (10, 64))
    per_op = result.to_dict()
    text = str(per_op)
    assert "attention" in text  # counted as dense T×T: 2 · heads · T² · head width
    assert 2 * 8 * 10 * 10 * 8 <= result.macs


def test_several_input_shapes_parse_from_the_command_line_and_profile():
    import pytest

    from convforge.cli.arguments import parse_input_size
    from convforge.errors import ConvforgeError

    assert parse_input_size("10x128,80x2048,10x512") == ((10, 128), (80, 2048), (10, 512))
    assert parse_input_size("3x32x32") == (3, 32, 32)
    for bad in ("10x128,", "10x0,3x3", "3x32", "9x99999x99999"):
        with pytest.raises(ConvforgeError, match="--input"):
            parse_input_size(bad)
