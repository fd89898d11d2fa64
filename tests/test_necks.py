"""Necks as spec rows: FPN, PAN and BiFPN read several levels and give several named outputs, each with the
neck's channels at its input level's size."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from convforge import profile
from convforge.errors import ConvforgeError
from convforge.nn.bifpn import BiFPN
from convforge.spec import SpecError, build_spec

NECKS = ["FPN", "PAN", "BiFPN"]


def _backbone() -> list:
    """Three levels at strides 8, 16 and 32 with 32, 48 and 64 channels."""
    return [[-1, 1, "Conv", [16, 3, 2]], [-1, 1, "Conv", [32, 3, 2]], [-1, 1, "Conv", [32, 3, 2], "c3"],
            [-1, 1, "Conv", [48, 3, 2], "c4"], [-1, 1, "Conv", [64, 3, 2], "c5"]]  # fmt: skip


def _network(neck: str, repeats: int = 1, width: float = 1.0, head: bool = False):
    layers = [*_backbone(), [["c3", "c4", "c5"], repeats, neck, [24], ["p3", "p4", "p5"]]]
    spec = {"in_channels": 3, "width": width, "input_size": [3, 64, 64], "layers": layers,
            "outputs": ["p3", "p4", "p5"]}  # fmt: skip
    if head:
        spec["layers"].append([["p3", "p4", "p5"], 1, "Detect", [5]])
        spec["outputs"] = [-1]
    return build_spec(spec)


@pytest.mark.parametrize("neck", NECKS)
@pytest.mark.parametrize("size", [64, 72, 50])
def test_each_neck_gives_its_channels_at_every_input_levels_size(neck, size):
    x = torch.randn(2, 3, size, size)
    levels = build_spec({"in_channels": 3, "layers": _backbone(), "outputs": ["c3", "c4", "c5"]})(x)
    outputs = _network(neck)(x)
    assert len(outputs) == 3
    for out, level in zip(outputs, levels):  # at 50×50 the levels are 7, 4 and 2 wide: not exact halves
        assert out.shape == (2, 24, *level.shape[-2:])
    assert _network(neck).channels[-1] == [24, 24, 24]


@pytest.mark.parametrize("neck", NECKS)
def test_each_neck_trains_and_is_counted_like_the_flop_counter(neck):
    model = _network(neck, head=True)
    model.train()
    outputs = model(torch.randn(2, 3, 64, 64))
    sum(o.sum() for o in outputs).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    result = profile(model, (3, 64, 64))
    assert result.uncounted_ops == {}
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(torch.randn(1, 3, 64, 64))
    assert result.macs == counter.get_total_flops() // 2


def test_a_neck_read_by_its_row_index_passes_all_its_outputs_in_order():
    by_names = _network("BiFPN", head=True)
    layers = [*_backbone(), [["c3", "c4", "c5"], 1, "BiFPN", [24]], [-1, 1, "Detect", [5]]]
    by_index = build_spec({"in_channels": 3, "layers": layers})
    by_index.load_state_dict(by_names.state_dict())
    x = torch.randn(1, 3, 64, 64)
    for a, b in zip(by_names.eval()(x), by_index.eval()(x)):
        torch.testing.assert_close(a, b)


def test_a_repeated_bifpn_row_stacks_layers_and_width_scales_its_channels():
    model = _network("BiFPN", repeats=3, width=0.5)
    neck = model.rows[-1]
    assert len(neck) == 3 and all(isinstance(layer, BiFPN) for layer in neck)
    assert [o.shape[1] for o in model(torch.randn(1, 3, 64, 64))] == [16, 16, 16]  # 24 × 0.5, rounded up to 8


def test_bifpn_fuses_with_normalised_non_negative_weights():
    neck = BiFPN([8, 8, 8], 8).eval()
    node = neck.bottom_up[0]
    with torch.no_grad():
        node.weight.copy_(torch.tensor([2.0, -5.0, 2.0]))  # the negative weight is cut to 0 by ReLU
    xs = [torch.full((1, 8, 4, 4), v) for v in (1.0, 100.0, 3.0)]
    captured = {}
    node.act.register_forward_hook(lambda m, i, o: captured.setdefault("fused", i[0]))
    node(xs)
    torch.testing.assert_close(captured["fused"], torch.full((1, 8, 4, 4), (2 * 1 + 2 * 3) / (4 + 1e-4)))


def test_neck_rows_with_bad_names_or_inputs_are_refused_by_row_and_field():
    with pytest.raises(SpecError, match=r"row 5 \(name\).*2 names for a block of 3 output"):
        build_spec({"layers": [*_backbone(), [["c3", "c4", "c5"], 1, "FPN", [24], ["p3", "p4"]]]})
    with pytest.raises(SpecError, match=r"row 5 \(name\).*'c4' already names"):
        build_spec({"layers": [*_backbone(), [["c3", "c4", "c5"], 1, "FPN", [24], ["p3", "c4", "p5"]]]})
    with pytest.raises(SpecError, match=r"row 5 \(from\).*no earlier row or output is named 'p9'"):
        build_spec({"layers": [*_backbone(), [["c3", "p9"], 1, "FPN", [24]]]})
    with pytest.raises(SpecError, match=r"row 5 \(args\).*at least 2 levels"):
        build_spec({"layers": [*_backbone(), [-1, 1, "PAN", [24]]]})
    with pytest.raises(SpecError, match=r"row 6 \(from\).*reads one input, got 3"):
        build_spec({"layers": [*_backbone(), [["c3", "c4", "c5"], 1, "FPN", [24]], [-1, 1, "Conv", [8]]]})


def test_a_one_input_block_reading_a_whole_neck_is_refused_before_it_runs():
    with pytest.raises(SpecError, match=r"row 6 \(from\): Upsample reads one input, got 3 \(a row of several outputs"):
        build_spec({"layers": [*_backbone(), [["c3", "c4", "c5"], 1, "FPN", [24]], [-1, 1, "Upsample", [2]]]})
    build_spec({"layers": [*_backbone(), [["c3", "c4", "c5"], 1, "FPN", [24], ["p3", "p4", "p5"]],
                           ["p4", 1, "Upsample", [2]]]})  # fmt: skip


def test_a_single_name_names_the_whole_neck_and_a_list_must_name_every_output():
    model = build_spec({"layers": [*_backbone(), [["c3", "c4", "c5"], 1, "FPN", [24], "pyramid"]],
                        "outputs": ["pyramid"]})  # fmt: skip
    assert len(model(torch.randn(1, 3, 64, 64))) == 3
    with pytest.raises(SpecError, match=r"row 5 \(name\): 1 names for a block of 3 output"):
        build_spec({"layers": [*_backbone(), [["c3", "c4", "c5"], 1, "FPN", [24], ["p3"]]]})
    with pytest.raises(SpecError, match=r"row 5 \(name\): a name is a string"):
        build_spec({"layers": [*_backbone(), [["c3", "c4", "c5"], 1, "FPN", [24], None]]})


def test_a_registered_neck_that_does_not_say_its_channels_is_refused_by_name():
    from convforge.spec import register_block

    @register_block("ChannelessPair", channels="list")
    def channeless_pair(c_in):
        return torch.nn.Identity()

    with pytest.raises(SpecError, match=r"row 5 \(block\): ChannelessPair .* out_channels"):
        build_spec({"layers": [*_backbone(), [["c4", "c5"], 1, "ChannelessPair", []]]})


@pytest.mark.parametrize("neck", NECKS)
def test_levels_given_coarsest_first_are_refused_in_one_sentence(neck):
    layers = [*_backbone(), [["c5", "c4", "c3"], 1, neck, [24]]]
    model = build_spec({"in_channels": 3, "layers": layers})
    with pytest.raises(ConvforgeError, match=f"{neck} reads its levels finest first"):
        model(torch.randn(1, 3, 64, 64))
