"""The block zoo as spec rows: each block builds, trains, and is counted exactly as PyTorch's FLOP counter counts
it, with no operation left uncounted."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from convforge import profile
from convforge.spec import SpecError, build_spec, list_blocks

ROWS = {
    "SE": [0.25],
    "ECA": [3],
    "CBAM": [],
    "CoordAttn": [],
    "Ghost": [32, 1, 2, 3, 1],
    "UIB": [32, 3, 3, 0, 2, 4.0],
    "PConv": [4, 2.0],
    "Res2Net": [64, 1, 4],
    "RepVGG": [32, 3, 2],
    "MobileOne": [32, 3, 1, 2],
    "ASPP": [32, [2, 4]],
    "PPM": [32, [1, 2, 4]],
}


def _network(block: str, args: list) -> torch.nn.Module:
    layers = [[-1, 1, "Conv", [32, 3, 1]], [-1, 1, block, args], [-1, 1, "Classify", [10]]]
    return build_spec({"in_channels": 3, "input_size": [3, 32, 32], "layers": layers})


def test_every_zoo_block_is_a_registered_spec_block():
    assert set(ROWS) <= set(list_blocks())


@pytest.mark.parametrize("block", list(ROWS))
def test_each_block_builds_from_a_row_trains_and_is_counted_like_the_flop_counter(block):
    model = _network(block, ROWS[block])
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    result = profile(model, (3, 32, 32))
    assert result.uncounted_ops == {}
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(torch.randn(1, 3, 32, 32))
    assert result.macs == counter.get_total_flops() // 2  # the counter reports 2 FLOPs per multiply-add


def test_a_bad_zoo_row_names_the_row_and_the_reason():
    with pytest.raises(SpecError, match="row 1.*divisible"):
        _network("PConv", [5])
    layers = [[-1, 1, "Conv", [32, 3, 1]], [-1, 1, "Res2Net", [30]]]
    with pytest.raises(SpecError, match="row 1.*divisible by 4"):
        build_spec({"in_channels": 3, "divisor": 2, "layers": layers})
