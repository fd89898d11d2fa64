"""INT8 post-training quantisation on onnxruntime: accuracy kept, layers named, files evaluated like checkpoints."""

import json
import math

import numpy as np
import onnx
import pytest
import torch
from torch import nn

import convforge
from convforge.cli import main
from convforge.compress.calibration import CalibrationSet
from convforge.compress.onnx_graph import float_layers, module_path, weighted_layers
from convforge.compress.quantization import fewest_fp32_layers, quantize
from convforge.compress.quantization_error import LayerError
from convforge.engine.export import export_onnx
from convforge.engine.recipe import Recipe
from convforge.errors import ConvforgeError
from convforge.runs.loading import load_trained
from convforge.runs.onnx_model import OnnxModel, load_onnx
from convforge.surgery import inference_form
from convforge.tasks import get_task

VAL = 1000  # test images scored per model


@pytest.fixture(scope="module")
def fashion_run(tmp_path_factory, shared_data):
    """A ResNet-20 trained briefly on real Fashion-MNIST images, quantised once with its defaults."""
    project = tmp_path_factory.mktemp("runs")
    convforge.train("resnet20", data="fashion-mnist", train_subset=4096, val_subset=512, epochs=2, batch_size=128,
                    project=str(project), progress=False)  # fmt: skip
    run = project / "classify" / "resnet20"
    result = quantize(run, calib=256, latency_batch=8, val_subset=VAL, progress=False)
    return run, result


def test_a_quantised_resnet20_keeps_its_top1_within_two_points_through_onnxruntime(fashion_run, capsys):
    run, result = fashion_run
    fp32, int8 = result.metrics["FP32 onnxruntime"]["top1"], result.metrics["INT8 onnxruntime"]["top1"]
    assert fp32 > 30  # it learnt something, so the comparison means something
    assert abs(fp32 - int8) <= 2
    # convforge eval runs the INT8 file through the task's own evaluation, beside the FP32 PyTorch model
    assert main(["eval", str(run / "model.int8.onnx"), "--val-subset", str(VAL)]) == 0
    lines = capsys.readouterr().out.splitlines()
    scores = {line.split(":")[0]: float(line.split("top1 ")[1].split(" %")[0]) for line in lines}
    assert set(scores) == {"model.int8.onnx (onnxruntime)", "FP32 PyTorch"}
    assert scores["model.int8.onnx (onnxruntime)"] == pytest.approx(int8, abs=0.01)
    assert abs(scores["FP32 PyTorch"] - scores["model.int8.onnx (onnxruntime)"]) <= 2


def test_int8_outputs_point_the_same_way_as_fp32_on_real_images(fashion_run, shared_data):
    run, result = fashion_run
    trained = load_trained(run)
    recipe = Recipe.from_values({**Recipe.stored_values(trained.config["recipe"]), "val_subset": 256})
    images = next(iter(get_task("classify").build_data(recipe).val))[0]
    with torch.no_grad():
        fp32 = trained.model(images)
    int8 = OnnxModel(result.int8_path)(images)
    cosine = nn.functional.cosine_similarity(fp32, int8, dim=1)
    assert cosine.mean() >= 0.99 and cosine.min() > 0.9


def test_the_run_holds_both_files_the_record_and_the_plot(fashion_run):
    run, result = fashion_run
    for name in ("model.onnx", "model.int8.onnx", "quantization.json", "plots/quantization.png"):
        assert (run / name).is_file(), name
    assert result.fp32_path == run / "model.onnx" and result.int8_path == run / "model.int8.onnx"
    assert result.export_parity is True
    assert not result.excluded and not float_layers(onnx.load(str(result.int8_path)))  # every layer is INT8
    # one SQNR per weighted layer, named like the model's modules, high for a network that quantises well
    modules = dict(inference_form(load_trained(run).model).named_modules())
    weighted = [e for e in result.layers if e.weighted]
    assert [e.module for e in weighted] == [
        name for name in modules if isinstance(modules[name], (nn.Conv2d, nn.Linear))
    ]
    assert all(e.int8 and 15 < e.sqnr_db < 60 for e in weighted)
    # the residual additions are quantised operations too, listed with their module and operation
    assert {e.label for e in result.layers if not e.weighted} >= {"layer1.0 (Add)", "layer3.2 (Add)"}
    # a layer reads what the one before it wrote (ReLU folded into the quantised output): the same SQNR
    by_module = {e.module: e for e in weighted}
    assert by_module["layer1.0.conv2"].input_sqnr_db == pytest.approx(by_module["layer1.0.conv1"].sqnr_db)
    record = json.loads((run / "quantization.json").read_text(), parse_constant=pytest.fail)  # strict JSON
    assert record["metrics"] == result.metrics and len(record["layers"]) == len(result.layers)
    assert "layer1.0.conv1" in result.layer_table() and "SQNR" in result.layer_table()


def test_the_latency_table_times_eager_fp32_and_int8_at_batch_1_and_n(fashion_run):
    _, result = fashion_run
    speed = result.speed
    assert {(r.variant, r.batch) for r in speed.rows} == {
        (v, b) for v in ("FP32 PyTorch eager", "FP32 onnxruntime", "INT8 onnxruntime") for b in (1, 8)
    }
    assert all(0 < r.p10_ms <= r.median_ms <= r.p90_ms for r in speed.rows)
    assert speed.threads == torch.get_num_threads()
    ratio = speed.ratio("FP32 onnxruntime", "INT8 onnxruntime", 8)
    verdict = speed.verdict()
    assert ("as fast as" in verdict) == (ratio >= 1.1) and ("not faster" in verdict) == (ratio < 1.1)


def test_excluded_layers_stay_fp32_in_the_graph(fashion_run, tmp_path):
    run, _ = fashion_run
    result = quantize(run, out=tmp_path, calib=64, exclude=["layer3.2", "fc"], evaluate=False, latency=False,
                      progress=False)  # fmt: skip
    graph = onnx.load(str(result.int8_path))
    kept = {layer.module for layer in float_layers(graph)}
    assert kept == {"layer3.2.conv1", "layer3.2.conv2", "fc"} == set(result.excluded)
    nodes = {n.name: n for n in graph.graph.node}
    producers = {o: n.op_type for n in graph.graph.node for o in n.output}
    fc = next(n for n in nodes.values() if n.op_type == "Gemm")
    assert fc.input[1] not in producers or producers[fc.input[1]] != "DequantizeLinear"  # its weight is float
    assert sum(not e.int8 for e in result.layers if e.weighted) == 3
    with pytest.raises(ConvforgeError, match="layer9"):
        quantize(run, out=tmp_path, calib=8, exclude=["layer9"], evaluate=False, latency=False, progress=False)


def test_calibration_with_the_same_seed_is_deterministic(fashion_run, tmp_path):
    run, _ = fashion_run
    trained = load_trained(run)
    recipe = Recipe.from_values(Recipe.stored_values(trained.config["recipe"]))
    task = get_task("classify")
    first, again = (CalibrationSet.from_task(task, recipe, 100, seed=3) for _ in range(2))
    other = CalibrationSet.from_task(task, recipe, 100, seed=4)
    assert len(first) == 100 and all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first.batches[0], other.batches[0])

    def scales(seed: int, folder) -> dict[str, np.ndarray]:
        folder.mkdir()
        path = quantize(run, out=folder, calib=64, seed=seed, evaluate=False, latency=False, progress=False).int8_path
        return {i.name: onnx.numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer
                if i.name.endswith("_scale")}  # fmt: skip

    a, b, c = scales(0, tmp_path / "a"), scales(0, tmp_path / "b"), scales(1, tmp_path / "c")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)


class _SoftplusNet(nn.Module):
    """Convolutions around an activation onnxruntime cannot quantise (Softplus)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.Softplus()
        self.head = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.stem(x)))


def test_an_operation_without_an_int8_form_stays_fp32_named_while_the_rest_quantises(tmp_path):
    images = torch.rand(32, 3, 16, 16)
    result = quantize(_SoftplusNet(), images, out=tmp_path, latency=False, progress=False)
    assert set(result.float_operations) == {"Softplus"} and result.float_operations["Softplus"] == ["act"]
    assert "Softplus ×1 (act)" in result.summary()
    assert not result.excluded  # both convolutions are INT8
    assert [e.module for e in result.layers] == ["stem", "head"] and all(e.int8 for e in result.layers)
    assert result.fp32_tail == 0  # the head's output is the model's
    assert not result.metrics and not (tmp_path / "quantization.json").exists()  # a bare module is not scored


def test_evaluating_an_onnx_file_on_the_wrong_task_or_input_size_is_one_sentence(fashion_run, capsys):
    run, _ = fashion_run
    path = run / "model.int8.onnx"
    with pytest.raises(ConvforgeError, match="takes inputs of shape Nx1x28x28, not 256x1x8x8"):
        convforge.evaluate(path, "digits")
    with pytest.raises(ConvforgeError, match="is a classify model, not a sr model"):
        convforge.evaluate(path, "set5", task="sr")
    assert main(["eval", str(path), "--data", "set5"]) == 1
    assert "unknown dataset 'set5'" in capsys.readouterr().err


def test_an_onnx_file_without_a_run_record_is_refused_in_a_sentence(tmp_path):
    path = tmp_path / "bare.onnx"
    torch.onnx.export(nn.Conv2d(3, 4, 3), (torch.rand(1, 3, 8, 8),), str(path), dynamo=False)
    with pytest.raises(ConvforgeError, match="carries no convforge run record"):
        load_onnx(path)
    (tmp_path / "junk.onnx").write_bytes(b"not a graph")
    with pytest.raises(ConvforgeError, match="not a readable ONNX file"):
        load_onnx(tmp_path / "junk.onnx")


@pytest.mark.parametrize("name", ["resnet20", "timm:mobilenetv3_small_100", "leyolo_nano"])
def test_node_names_map_back_to_the_modules_they_came_from(name, tmp_path):
    model = inference_form(convforge.create_model(name, **({"num_classes": 10} if name != "leyolo_nano" else {})))
    size = (1, 3, 32, 32) if name != "leyolo_nano" else (1, 3, 64, 64)
    path = export_onnx(model, tmp_path / "m.onnx", size, check=False).path
    modules = dict(model.named_modules())
    layers = weighted_layers(onnx.load(str(path)))
    kinds = {"Conv": (nn.Conv2d,), "Gemm": (nn.Linear,), "MatMul": (nn.Linear,), "ConvTranspose": (nn.ConvTranspose2d,)}
    assert layers and all(isinstance(modules.get(layer.module), kinds[layer.op]) for layer in layers), [
        (layer.module, layer.op) for layer in layers]  # fmt: skip
    assert module_path("/rows.35/box.2/box.2.0/conv/Conv") == "rows.35.box.2.0.conv"


def test_bad_settings_are_refused_by_name(fashion_run, tmp_path):
    run, _ = fashion_run
    for kwargs, words in (({"method": "kl"}, "method 'kl'"), ({"activations": "fp8"}, "activations 'fp8'"),
                          ({"calib": 0}, "positive integer, got 0"), ({"auto_exclude": -1}, "auto_exclude"),
                          ({"latency_batch": 0}, "latency_batch")):  # fmt: skip
        with pytest.raises(ConvforgeError, match=words):
            quantize(run, progress=False, **kwargs)
    with pytest.raises(ConvforgeError, match="needs a trained run"):
        quantize(nn.Conv2d(3, 3, 1), torch.rand(4, 3, 8, 8), out=tmp_path, auto_exclude=1.0)
    with pytest.raises(ConvforgeError, match="evaluate=False"):
        quantize(run, auto_exclude=1.0, evaluate=False)
    (tmp_path / "file").write_text("")
    with pytest.raises(ConvforgeError, match="is a file; name a folder"):
        quantize(run, out=tmp_path / "file")
    with pytest.raises(ConvforgeError, match="already an ONNX file"):
        quantize(run / "model.int8.onnx")
    with pytest.raises(ConvforgeError, match="MiB of input"):
        quantize(run, out=tmp_path, latency_batch=10**6)
    assert not (tmp_path / "model.onnx").exists()  # refused before any work


def testfewest_fp32_layers_with_a_tolerance_already_met_keeps_every_layer_int8(fashion_run, tmp_path):
    run, result = fashion_run
    met = quantize(run, out=tmp_path, calib=256, auto_exclude=max(result.drop(), 0) + 1, latency=False,
                   val_subset=VAL, progress=False)  # fmt: skip
    assert met.excluded == [] and len(met.auto_exclude) == 1 and met.auto_exclude[0]["kept_fp32"] == []


@pytest.mark.slow
def testfewest_fp32_layers_keeps_the_fewest_layers_that_meet_the_tolerance(fashion_run, tmp_path):
    run, default = fashion_run
    strict = quantize(run, out=tmp_path, calib=256, auto_exclude=0.0, latency=False, val_subset=VAL, progress=False)
    reference = strict.metrics["FP32 onnxruntime"]["top1"]
    passing = [t for t in strict.auto_exclude if reference - t["score"] <= 0]
    failing = [t for t in strict.auto_exclude if reference - t["score"] > 0]
    assert strict.auto_exclude[0]["kept_fp32"] == []
    if failing and passing:  # INT8 lost something, and keeping some layers in FP32 won it back
        assert len(strict.excluded) == min(len(t["kept_fp32"]) for t in passing)
        assert all(len(t["kept_fp32"]) < len(strict.excluded) for t in failing)
        assert math.isclose(strict.metrics["INT8 onnxruntime"]["top1"], passing[-1]["score"])
        # the layers kept first are those that lose the most SQNR on their own
        ranked = [e.label for e in sorted(default.layers, key=lambda e: -e.lost_db)]
        assert set(strict.excluded) == set(ranked[: len(strict.excluded)])
    elif not failing:
        assert strict.excluded == []


@pytest.mark.slow
def test_a_detector_quantises_fused_and_is_scored_on_map_through_onnxruntime(tmp_path, shared_data):
    convforge.train("leyolo_nano", data=str(shared_data / "coco128" / "coco128.yaml"), image_size=160, epochs=1,
                    batch_size=16, project=str(tmp_path), progress=False)  # fmt: skip
    run = tmp_path / "detect" / "leyolo_nano"
    result = quantize(run, calib=32, latency=False, progress=False)
    assert result.export_parity is True and not result.excluded
    for scores in result.metrics.values():
        assert set(scores) == {"map50_95", "map50", "map75", "count"} and scores["count"] == 128
    assert sum(e.weighted for e in result.layers) == len(weighted_layers(onnx.load(str(result.fp32_path))))
    assert result.fp32_tail > 0  # the box decoding after the head's convolutions stays FP32
    graph = onnx.load(str(result.fp32_path)).graph
    assert not any(n.op_type == "BatchNormalization" for n in graph.node)  # folded before export


def _errors(n: int) -> list[LayerError]:
    """Operation i loses i dB on its own, so the search ranks the last one first."""
    return [LayerError(f"l{i}", f"/l{i}/Conv", "Conv", 30.0 - i, 40.0, True) for i in range(n)]


@pytest.mark.parametrize("needed", [0, 1, 3, 5, 8])
def test_auto_exclude_finds_the_fewest_ranked_operations_that_meet_the_tolerance(needed):
    ranked = [f"/l{i}/Conv" for i in reversed(range(8))]

    def score(kept: list[str]) -> float:  # each of the first ``needed`` ranked operations costs one point
        return 90.0 - sum(1 for node in ranked[:needed] if node not in kept)

    chosen, tries = fewest_fp32_layers(0.0, _errors(8), score, 90.0)
    assert [e.node for e in chosen] == ranked[:needed]
    assert len(tries) <= 2 + 2 * math.ceil(math.log2(8))  # doubling, then bisection
    assert tries[0]["kept_fp32"] == []


def test_auto_exclude_keeps_the_best_try_when_even_all_fp32_misses_the_tolerance():
    with pytest.warns(UserWarning, match="keeping the best try"):
        chosen, tries = fewest_fp32_layers(0.1, _errors(4), lambda kept: 80.0 + len(kept) / 10, 90.0)
    assert len(chosen) == 4 and tries[-1]["kept_fp32"] == ["l3", "l2", "l1", "l0"]


def test_operations_asked_for_stay_fp32_and_are_not_ranked():
    chosen, tries = fewest_fp32_layers(0.0, _errors(3), lambda kept: 90.0 if "/l1/Conv" in kept else 89.0, 90.0,
                                       fixed=["/l2/Conv"])  # fmt: skip
    assert [e.node for e in chosen] == ["/l1/Conv"] and all("l2" not in t["kept_fp32"] for t in tries)


def test_a_tolerance_met_to_the_last_float_bit_counts_as_met():
    chosen, _ = fewest_fp32_layers(0.1, _errors(2), lambda kept: 91.3, 91.4)
    assert chosen == []


def _activation_scales(path) -> dict[str, np.ndarray]:
    graph = onnx.load(str(path)).graph
    return {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer
            if i.name.endswith("_scale") and "weight" not in i.name and "bias" not in i.name}  # fmt: skip


def test_each_calibration_method_chooses_its_own_activation_ranges(tmp_path):
    torch.manual_seed(1)
    model, images = _SoftplusNet(), torch.randn(64, 3, 16, 16)
    images[0, 0, 0, 0] = 1000.0  # one outlier, which min/max must cover and the others may clip
    scales = {}
    for method in ("minmax", "entropy", "percentile"):
        result = quantize(model, images, out=tmp_path / method, method=method, latency=False, progress=False)
        scales[method] = _activation_scales(result.int8_path)
    assert scales["minmax"].keys() == scales["entropy"].keys() == scales["percentile"].keys()
    for method in ("entropy", "percentile"):  # both clip what min/max keeps: the 99.999th percentile a little
        assert all(np.all(scales[method][k] <= scales["minmax"][k] + 1e-9) for k in scales["minmax"])
        assert any(np.all(scales[method][k] < scales["minmax"][k]) for k in scales["minmax"])
    # the entropy ranges lose the outlier to keep the resolution of everything else
    assert all(np.all(scales["entropy"][k] < 0.5 * scales["minmax"][k]) for k in scales["minmax"])
