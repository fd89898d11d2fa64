"""Specs: networks declared as rows [from, repeats, block, args], with scaling, names and clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convforge.spec import Spec, SpecError, build_spec, list_blocks, make_divisible, register_block

PYRAMID = {
    "in_channels": 3,
    "width": 0.5,
    "depth": 0.5,
    "layers": [
        [-1, 1, "Conv", [64, 3, 2]],  # 0: 32 channels at 16×16
        [-1, 4, "Conv", [128, 3, 1]],  # 1: 64 channels, 4 × 0.5 = 2 repeats
        [-1, 1, "Conv", [128, 3, 2], "p2"],  # 2: 64 channels at 8×8
        [-1, 1, "Upsample", [2]],  # 3: back to 16×16
        [[-1, 1], 1, "Concat", []],  # 4: 64 + 64 channels
    ],
    "outputs": ["p2", -1],
}


def test_a_spec_builds_the_declared_network_with_scaling_names_and_several_outputs():
    model = build_spec(PYRAMID)
    p2, last = model(torch.randn(2, 3, 32, 32))
    assert p2.shape == (2, 64, 8, 8) and last.shape == (2, 128, 16, 16)
    assert model.channels == [32, 64, 64, 64, 128]
    assert isinstance(model.rows[1], nn.Sequential) and len(model.rows[1]) == 2  # depth-scaled repeats


def test_the_same_spec_loads_from_yaml(tmp_path):
    import yaml

    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(PYRAMID))
    a, b = build_spec(PYRAMID), build_spec(path)
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]


def test_channels_are_capped_then_scaled_to_a_multiple_of_the_divisor():
    assert make_divisible(20) == 24 and make_divisible(3) == 8 and make_divisible(64) == 64
    spec = {"width": 0.3, "max_channels": 100, "layers": [[-1, 1, "Conv", [256, 1, 1]]]}
    assert build_spec(spec).channels == [32]  # min(256, 100) × 0.3 = 30 → 32


def test_user_blocks_join_the_registry_with_a_decorator():
    @register_block("ScaledIdentity", channels="same")
    def scaled_identity(c_in: int, factor: float = 2.0) -> nn.Module:
        class Scale(nn.Module):
            def forward(self, x):
                return x * factor

        return Scale()

    assert "ScaledIdentity" in list_blocks()
    model = build_spec({"in_channels": 1, "layers": [[-1, 1, "ScaledIdentity", [3.0]]]})
    assert torch.equal(model(torch.ones(1, 1, 2, 2)), torch.full((1, 1, 2, 2), 3.0))


@pytest.mark.parametrize(
    "row, field",
    [
        ([-1, 1, "Conv"], "row"),
        ([5, 1, "Conv", [8]], "from"),
        (["x", 1, "Conv", [8]], "from"),
        ([-1, 0, "Conv", [8]], "repeats"),
        ([-1, 1, "Nope", [8]], "block"),
        ([-1, 1, "Conv", 8], "args"),
        ([-1, 1, "Conv", ["wide"]], "args"),
        ([-1, 1, "Conv", [8, 3, 1, 1, "extra", "args"]], "args"),
    ],
)
def test_an_error_names_the_row_and_the_field(row, field):
    spec = {"layers": [[-1, 1, "Conv", [8, 3, 1]], row]}
    with pytest.raises(SpecError, match=rf"row 1 \({field}\)"):
        build_spec(spec)


def test_unknown_fields_outputs_and_files_are_refused_by_name(tmp_path):
    with pytest.raises(SpecError, match="unknown spec field"):
        Spec.load({"layers": [], "widht": 1})
    with pytest.raises(SpecError, match="no row or output is named 'p9'"):
        build_spec({"layers": [[-1, 1, "Conv", [8]]], "outputs": ["p9"]})
    with pytest.raises(SpecError, match="could not read"):
        Spec.load(tmp_path / "missing.yaml")


TINY_CLASSIFIER = """
in_channels: 3
num_classes: 10
input_size: [3, 32, 32]
layers:
  - [-1, 1, Conv, [16, 3, 2]]
  - [-1, 2, Conv, [32, 3, 1]]
  - [-1, 1, MaxPool, [2]]
  - [-1, 1, Classify, [num_classes]]
"""


def test_a_spec_file_is_a_model_name_for_profile_and_train(tmp_path, shared_data, monkeypatch):
    import subprocess
    import sys

    import convforge

    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_CLASSIFIER)
    model = convforge.create_model(str(path))
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert convforge.create_model(str(path), num_classes=4, in_chans=1)(torch.randn(1, 1, 32, 32)).shape == (1, 4)
    assert convforge.get_model_info(str(path)).input_size == (3, 32, 32)

    run = subprocess.run([sys.executable, "-m", "convforge", "profile", str(path)], capture_output=True, text=True,
                         timeout=300, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "tiny.yaml" in run.stdout and "MACs" in run.stdout

    monkeypatch.chdir(tmp_path)
    result = convforge.train("tiny.yaml", data="mnist", data_root=str(shared_data), train_subset=2000, val_subset=500,
                             epochs=3, batch_size=32, opt="adamw", lr=3e-3, project=str(tmp_path),
                             progress=False)  # fmt: skip
    assert result.last["val_top1"] > 40  # well above chance (10 %), on 1-channel images via in_chans
    assert result.run_dir == tmp_path / "classify" / "tiny"  # named after the spec, without its suffix
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the run rebuilds its network from any working folder
    scores = convforge.evaluate(result.run_dir)  # the whole test split
    assert scores["count"] == 10000 and scores["top1"] > 40


def test_a_user_block_cannot_take_a_built_in_name():
    from convforge.errors import ConvforgeError

    with pytest.raises(ConvforgeError, match="already registered"):

        @register_block("Conv")
        def my_conv(c_in: int, c_out: int) -> nn.Module:
            return nn.Conv2d(c_in, c_out, 1)


def test_a_block_can_declare_further_channel_arguments_that_scale_with_width():
    @register_block("WideThenNarrow", scaled=(1,))
    def wide_then_narrow(c_in: int, c_out: int, hidden: int | None = None) -> nn.Module:
        hidden = hidden or c_in
        return nn.Sequential(nn.Conv2d(c_in, hidden, 1), nn.Conv2d(hidden, c_out, 1))

    model = build_spec({"width": 0.5, "layers": [[-1, 1, "WideThenNarrow", [64, 100]],
                                                 [-1, 1, "WideThenNarrow", [64, None]]]})  # fmt: skip
    assert model.rows[0][0].out_channels == 56  # 100 × 0.5 = 50 → 56, a multiple of 8
    assert model.rows[1][0].out_channels == 32  # None passes through: the block's own default (c_in)


def test_building_with_overrides_leaves_the_callers_spec_as_it_was():
    spec = Spec.load(PYRAMID)
    model = build_spec(spec, width=1.0, in_chans=1)
    assert model.channels[0] == 64 and model.spec.in_channels == 1
    assert (spec.width, spec.in_channels) == (0.5, 3)


def test_create_model_reads_a_spec_file_once(tmp_path, monkeypatch):
    import yaml

    import convforge

    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump({**PYRAMID, "outputs": [-1]}))
    reads = []
    real = type(path).read_text
    monkeypatch.setattr(type(path), "read_text", lambda self, *a, **k: reads.append(self) or real(self, *a, **k))
    convforge.create_model(str(path), num_classes=3)
    assert reads.count(path) == 1


def test_a_spec_that_names_its_task_as_earlier_versions_did_still_trains_as_that_task(tmp_path):
    import yaml

    import convforge

    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump({**PYRAMID, "task": "classification", "outputs": [-1]}))
    assert convforge.get_model_info(str(path)).task == "classify"
