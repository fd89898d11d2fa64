import csv
import io
import json

import pytest
import torch
from torch import nn

import convforge
from convforge.errors import ForwardError


def test_peak_activation_memory_of_a_chain_is_two_live_tensors():
    # conv1's output (8×32×32 float32 = 32 KiB) is still alive while ReLU writes its own;
    # after that conv1's output is freed and the ReLU output lives beside conv2's.
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
    result = convforge.profile(model, (3, 32, 32))
    assert result.activation_peak_bytes == 2 * 8 * 32 * 32 * 4
    assert result.activation_peak_mib == pytest.approx(0.0625)


def test_peak_activation_memory_grows_with_batch_size():
    model = convforge.create_model("resnet20")
    one = convforge.profile(model, (3, 32, 32), batch_size=1).activation_peak_bytes
    four = convforge.profile(model, (3, 32, 32), batch_size=4).activation_peak_bytes
    assert four == pytest.approx(4 * one, rel=0.05)


def test_parameters_total_and_trainable():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    model[0].weight.requires_grad_(False)
    result = convforge.profile(model, (4,))
    assert result.params == 4 * 3 + 3 + 3 * 2 + 2
    assert result.trainable_params == result.params - 12


def test_flops_are_twice_macs_in_every_convention():
    result = convforge.profile(convforge.create_model("resnet20"), (3, 32, 32))
    for convention in ("macs", "thop", "full"):
        view = result.with_convention(convention)
        assert view.flops == 2 * view.macs == 2 * result.macs_by_convention[convention]
    assert result.macs_by_convention["macs"] < result.macs_by_convention["thop"] < result.macs_by_convention["full"]


def test_full_convention_reports_each_class_separately():
    result = convforge.profile(convforge.create_model("resnet20"), (3, 32, 32), convention="full")
    assert {"conv", "matmul", "norm", "activation", "elementwise", "pooling"} <= set(result.by_category)
    assert sum(result.by_category.values()) == result.macs


def test_latency_records_median_spread_batch_and_threads():
    model = convforge.create_model("simplenet_cifar_310k")
    result = convforge.profile(model, (3, 32, 32), batch_size=2, latency=True, runs=7, warmup=2, threads=1)
    lat = result.latency
    assert lat.runs == 7 and lat.warmup == 2 and lat.batch_size == 2 and lat.threads == 1
    assert lat.min_ms <= lat.p10_ms <= lat.median_ms <= lat.p90_ms <= lat.max_ms
    assert 0 < lat.iqr_ms <= lat.p90_ms - lat.p10_ms and lat.device == "cpu"
    assert "median" in result.summary_table()


def test_latency_is_not_measured_unless_asked():
    assert convforge.profile(nn.Linear(2, 2), (2,)).latency is None


def test_per_module_table_lists_path_type_shape_params_and_macs():
    result = convforge.profile(convforge.create_model("resnet20"), (3, 32, 32))
    table = result.module_table(max_depth=1)
    assert "layer1" in table and "Sequential" in table and "1x16x32x32" in table
    assert "layer1.0" not in [row.path for row in result.module_rows(max_depth=1)]
    top = {row.path: row for row in result.modules}
    assert sum(top[p].macs["macs"] for p in ("conv1", "layer1", "layer2", "layer3", "fc")) == result.macs


def test_json_and_csv_forms_carry_the_same_figures():
    result = convforge.profile(convforge.create_model("resnet20"), (3, 32, 32))
    data = json.loads(result.to_json(per_module=True))
    assert data["macs"] == result.macs and data["flops"] == 2 * result.macs
    assert data["params"] == 269_722
    assert data["modules"][0]["module"] == "(model)"
    rows = list(csv.reader(io.StringIO(result.to_csv())))
    assert ["macs", str(result.macs)] in rows
    module_rows = list(csv.DictReader(io.StringIO(result.to_csv(per_module=True))))
    assert int(module_rows[0]["macs_macs"]) == result.macs


def test_failing_forward_names_the_innermost_module():
    model = convforge.create_model("simplenet_cifar_5m")
    with pytest.raises(ForwardError) as caught:
        convforge.profile(model, (3, 4, 4), name="simplenet_cifar_5m")
    err = caught.value
    assert err.module_type == "MaxPool2d"
    assert err.module_path.startswith("features.")
    assert err.module_path in str(err) and "1x3x4x4" in str(err)


def test_profiling_restores_training_mode_and_leaves_no_hooks():
    model = convforge.create_model("resnet20").train()
    convforge.profile(model, (3, 32, 32))
    assert model.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_bad_inputs_and_conventions_are_rejected_with_the_value():
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="convention must be one of"):
        convforge.profile(model, (2,), convention="ptflops")
    with pytest.raises(ValueError, match="positive"):
        convforge.profile(model, (0,))
    with pytest.raises(ValueError, match="per-sample shape"):
        convforge.profile(model, "3x32x32")


def test_example_tensor_and_several_inputs_are_accepted():
    class Pair(nn.Module):
        def forward(self, a, b):
            return a @ b

    assert convforge.profile(Pair(), (torch.randn(2, 3), torch.randn(3, 4))).macs == 24
    assert convforge.profile(nn.Linear(3, 4), torch.randn(5, 3)).macs == 60


def test_plot_writes_a_png_chart(tmp_path):
    from convforge.profiler import plot_profile

    result = convforge.profile(convforge.create_model("resnet20"), (3, 32, 32))
    path = plot_profile(result, tmp_path / "charts" / "resnet20.png", depth=2)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_child_exception_caught_by_its_parent_does_not_corrupt_attribution():
    class Fragile(nn.Module):
        def forward(self, x):
            raise RuntimeError("no fast path")

    class Careful(nn.Module):
        def __init__(self):
            super().__init__()
            self.fast = Fragile()
            self.conv = nn.Conv2d(2, 2, 1, bias=False)

        def forward(self, x):
            try:
                return self.fast(x)
            except RuntimeError:
                return self.conv(x) * 2

    result = convforge.profile(Careful(), (2, 4, 4), convention="full")
    rows = {row.path: row for row in result.modules}
    assert rows["fast"].macs["full"] == 0
    assert rows[""].macs["full"] == rows["conv"].macs["full"] + 2 * 16  # the multiply belongs to the parent


def test_torchscript_submodules_are_profiled_without_hooks():
    model = nn.Sequential(nn.Linear(4, 4), torch.jit.script(nn.Linear(4, 4)))
    result = convforge.profile(model, (4,))
    assert result.macs == 32
    assert all(not m._forward_hooks for m in model.modules() if not isinstance(m, torch.jit.ScriptModule))


def test_views_of_existing_tensors_allocate_no_activation_memory():
    class PositionalTable(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = torch.randn(1, 10_000, 8)  # a plain attribute, not a buffer

        def forward(self, x):
            return x + self.table[:, :4]

    result = convforge.profile(PositionalTable(), (4, 8))
    assert result.activation_peak_bytes == 4 * 8 * 4
