"""``convforge.quantize``: INT8 post-training quantisation for CPUs, on onnxruntime's static QDQ quantiser.

The pipeline: the trained model in its inference form (collapsible blocks collapsed,
re-parameterisable branches merged, BatchNorm folded) → ONNX (``model.onnx``, checked against
PyTorch) → onnxruntime's pre-processing (shape inference, graph optimisation) → static QDQ
quantisation with per-channel INT8 weights, calibrated on real training inputs drawn by the
task's own data pipeline with a fixed seed → ``model.int8.onnx``. Then the layer-by-layer SQNR,
the task's metric through onnxruntime for both files, and their latency beside PyTorch's.

Activations default to unsigned INT8 (U8S8): on this x86 CPU with VNNI, onnxruntime's U8S8
kernels ran ResNet-20 2.7× faster than FP32 at batch 64, while S8S8 ran slower than FP32
(``benchmarks/quantization.py`` measures both). ``activations="int8"`` gives S8S8.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from convforge.atomic import write_atomic, write_json_atomic
from convforge.compress.calibration import CalibrationSet, check_histogram_memory
from convforge.compress.onnx_graph import (
    describe_operations,
    float_layers,
    name_nodes,
    output_tail,
    select_layers,
    unquantised_operations,
    weighted_layers,
)
from convforge.compress.quantization_error import LayerError, layer_errors
from convforge.compress.speed_comparison import SpeedComparison, check_timed_input, compare_speed
from convforge.errors import ConvforgeError, InvalidValueError
from convforge.progress_bars import hidden
from convforge.runs.loading import TrainedModel, trained_model
from convforge.runs.onnx_model import is_onnx_path, write_metadata
from convforge.tables import format_metric, text_table

METHODS = ("minmax", "entropy", "percentile")
ACTIVATIONS = ("uint8", "int8")
FP32_FILE, INT8_FILE = "model.onnx", "model.int8.onnx"
SQNR_EXAMPLES = 128  # calibration examples the layer SQNR is measured on
PERCENTILE = 99.999  # the percentile method's clipping point
TOLERANCE_SLACK = 1e-9  # scores are sums of floats: 91.4 − 91.3 must count as within 0.1


@dataclass
class QuantizeResult:
    """What :func:`quantize` wrote and measured."""

    fp32_path: Path
    int8_path: Path
    method: str
    activations: str
    per_channel: bool
    calibration_examples: int
    seed: int
    excluded: list[str]  # kept in FP32 (asked for, or chosen by auto-exclude): module paths, "path (Op)" for others
    float_operations: dict[str, list[str]]  # operations onnxruntime has no INT8 form for → where they are
    layers: list[LayerError]
    export_parity: bool | None  # whether onnxruntime's FP32 output matched PyTorch's
    metric: str | None = None  # the task's primary metric
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # "FP32/INT8 onnxruntime" → scores
    auto_exclude: list[dict[str, Any]] = field(default_factory=list)  # each try: layers kept in FP32, metric
    speed: SpeedComparison | None = None
    plot: Path | None = None
    fp32_tail: int = 0  # operations after the last weighted layers (decoding, pixel shuffling), left in FP32

    def drop(self) -> float | None:
        """FP32 minus INT8 on the task's primary metric (positive: INT8 is worse)."""
        fp32, int8 = self.metrics.get("FP32 onnxruntime"), self.metrics.get("INT8 onnxruntime")
        if not (self.metric and fp32 and int8):
            return None
        return fp32[self.metric] - int8[self.metric]

    def layer_table(self) -> str:
        """SQNR per weighted layer (dB), its input's, and what the layer loses, in graph order."""
        rows = [(e.module, e.op, "INT8" if e.int8 else "FP32", _db(e.sqnr_db), _db(e.input_sqnr_db),
                 f"{e.lost_db:.1f}") for e in self.layers]  # fmt: skip
        return text_table(["module", "op", "runs in", "SQNR dB", "input SQNR dB", "lost dB"], rows, align="llrrrr")

    def metrics_table(self) -> str:
        """The task's scores of the FP32 and INT8 files, side by side."""
        if not self.metrics:
            return ""
        keys = [k for k in next(iter(self.metrics.values())) if k != "count"]
        rows = [(name, *(format_metric(k, scores[k]) for k in keys)) for name, scores in self.metrics.items()]
        return text_table(["model", *keys], rows, align="l" + "r" * len(keys))

    def summary(self) -> str:
        """What was written, and the accuracy and speed of INT8 against FP32."""
        kinds = "U8S8" if self.activations == "uint8" else "S8S8"
        kinds += ", per-channel" if self.per_channel else ", per-tensor"
        lines = [f"wrote {self.int8_path} (INT8, {self.method} calibration on {self.calibration_examples} examples, "
                 f"{kinds} weights) and {self.fp32_path} (FP32)"]  # fmt: skip
        if self.export_parity is False:
            lines.append("warning: onnxruntime's FP32 output differs from PyTorch's beyond the export tolerance")
        if self.excluded:
            lines.append(f"kept in FP32: {', '.join(self.excluded)}")
        if self.fp32_tail:
            lines.append(f"the {self.fp32_tail} operation(s) after the last weighted layers (the output's decoding) "
                         "run in FP32")  # fmt: skip
        if self.float_operations:
            lines.append("onnxruntime has no INT8 form for these operations, which run in FP32 between quantised "
                         f"layers: {describe_operations(self.float_operations)}")  # fmt: skip
        worst = sorted((e for e in self.layers if e.int8), key=lambda e: -e.lost_db)[:3]
        if worst:
            lines.append("most SQNR lost: " + ", ".join(f"{e.label} {e.lost_db:.1f} dB (to {_db(e.sqnr_db)})"
                                                        for e in worst))  # fmt: skip
        if self.metrics:
            lines += ["", self.metrics_table()]
            drop = self.drop()
            if drop is not None:
                lines.append(f"INT8 loses {format_metric(self.metric, drop)} {self.metric} against FP32")
        if self.speed is not None:
            lines += ["", self.speed.table(), self.speed.verdict()]
        if self.plot is not None:
            lines.append(f"layer SQNR plotted in {self.plot}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fp32": str(self.fp32_path), "int8": str(self.int8_path), "method": self.method,
            "activations": self.activations, "per_channel": self.per_channel,
            "calibration_examples": self.calibration_examples, "seed": self.seed, "excluded": self.excluded,
            "float_operations": self.float_operations, "fp32_tail": self.fp32_tail,
            "export_parity": self.export_parity, "metric": self.metric,
            "metrics": self.metrics, "auto_exclude": self.auto_exclude,
            "layers": [e.to_dict() for e in self.layers],
            "speed": self.speed.to_dict() if self.speed else None,
        }  # fmt: skip


def _db(value: float) -> str:
    return "exact" if math.isinf(value) and value > 0 else f"{value:.1f}"


def _stamp(path: Path, metadata: dict[str, Any] | None) -> None:
    """Write the run record (if any) into the ONNX file's metadata."""
    if metadata is not None:
        write_metadata(path, metadata)


def _quantiser():
    try:
        from onnxruntime import quantization
    except ImportError as err:
        raise ConvforgeError("quantisation needs onnxruntime (pip install onnxruntime)") from err
    return quantization


def quantisable_operation_types() -> set[str]:
    """Operation types onnxruntime's QDQ quantiser gives an INT8 form."""
    registry = _quantiser().registry
    return set(registry.QDQRegistry) | set(registry.QLinearOpsRegistry)


def _check_choice(name: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise InvalidValueError(f"{name} {value!r} is not one of {', '.join(allowed)}")


@dataclass
class _Settings:
    method: str
    activations: str
    per_channel: bool
    input_name: str
    ranges: dict[str, tuple[float, float]] | None = None  # entropy calibration's activation ranges, once computed


ENTROPY_BINS, ENTROPY_QUANTIZED_BINS = 2048, 128  # histogram bins, and the levels the KL search keeps (TensorRT's)


def _entropy_ranges(source: Path, calibration: CalibrationSet, input_name: str) -> dict[str, tuple[float, float]]:
    """Activation ranges that minimise the KL divergence to the FP32 histograms. onnxruntime's ``quantize_static``
    calls its entropy calibrator with as many histogram bins as quantised bins (128), which makes its thresholds
    the min/max; convforge calls the calibrator itself with 2048 bins and passes the ranges on as overrides."""
    q = _quantiser()
    from onnxruntime.quantization.calibrate import create_calibrator

    with tempfile.TemporaryDirectory(prefix="convforge-entropy-") as tmp:
        calibrator = create_calibrator(
            str(source), augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=q.CalibrationMethod.Entropy,
            extra_options={"num_bins": ENTROPY_BINS, "num_quantized_bins": ENTROPY_QUANTIZED_BINS},
        )  # fmt: skip
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its settings
            calibrator.collect_data(calibration.reader(input_name))
            data = calibrator.compute_data()
    return {name: tuple(float(v) for v in value.range_value) for name, value in data.items()}


def _quantize_file(source: Path, target: Path, calibration: CalibrationSet, settings: _Settings,
                   exclude: Sequence[str]) -> None:  # fmt: skip
    """Static QDQ quantisation of ``source`` into ``target``, leaving the nodes ``exclude`` in FP32."""
    q = _quantiser()
    method = {"minmax": q.CalibrationMethod.MinMax, "entropy": q.CalibrationMethod.MinMax,
              "percentile": q.CalibrationMethod.Percentile}[settings.method]  # fmt: skip
    extra: dict[str, Any] = {"CalibPercentile": PERCENTILE} if settings.method == "percentile" else {}
    if settings.method == "entropy":
        if settings.ranges is None:
            settings.ranges = _entropy_ranges(source, calibration, settings.input_name)
        extra["TensorQuantOverrides"] = {name: [{"rmin": np.float32(low), "rmax": np.float32(high)}]
                                         for name, (low, high) in settings.ranges.items()}  # fmt: skip
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # its calibrators print settings
        warnings.simplefilter("ignore")  # onnxruntime suggests pre-processing, which has been done
        q.quantize_static(
            str(source), str(target), calibration.reader(settings.input_name), quant_format=q.QuantFormat.QDQ,
            per_channel=settings.per_channel, weight_type=q.QuantType.QInt8,
            activation_type=q.QuantType.QUInt8 if settings.activations == "uint8" else q.QuantType.QInt8,
            calibrate_method=method, nodes_to_exclude=list(exclude), extra_options=extra,
        )  # fmt: skip


def _pre_process(source: Path, target: Path) -> None:
    """onnxruntime's pre-processing (symbolic shape inference, graph optimisation, ONNX shape inference); where the
    symbolic shape inference cannot follow the graph (LeYOLO's), the rest is done without it. Unnamed nodes are
    named."""
    q = _quantiser()
    source, target = source.resolve(), target.resolve()  # before the working directory changes
    here = os.getcwd()
    os.chdir(target.parent)  # the symbolic shape inference leaves scratch files in the working directory
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                q.quant_pre_process(str(source), str(target))
            except Exception:  # noqa: BLE001 - onnxruntime raises a bare Exception for incomplete shape inference
                q.quant_pre_process(str(source), str(target), skip_symbolic_shape=True)
    finally:
        os.chdir(here)
    import onnx

    graph = onnx.load(str(target))
    name_nodes(graph)
    onnx.save(graph, str(target))


def _calibration(calibration_data: Any, trained: TrainedModel | None, count: int, seed: int) -> CalibrationSet:
    if calibration_data is not None:
        if isinstance(calibration_data, torch.Tensor):
            calibration_data = list(calibration_data.split(64))
        if not isinstance(calibration_data, Iterable):
            raise InvalidValueError("calibration_data must be a tensor or an iterable of input batches, got "
                                    f"{type(calibration_data).__name__}")  # fmt: skip
        return CalibrationSet(calibration_data)
    if trained is None:
        raise ConvforgeError("a module needs calibration_data: real input batches to calibrate on")
    from convforge.engine.recipe import Recipe
    from convforge.tasks import get_task

    values = Recipe.stored_values(trained.config["recipe"])
    recipe = Recipe.from_values({**values, "val_subset": 0})
    return CalibrationSet.from_task(get_task(recipe.task), recipe, count, seed)


def _evaluate(path: Path, data: str | None, data_root: str | None, batch_size: int,
              val_subset: int) -> dict[str, float]:  # fmt: skip
    from convforge.engine.trainer import evaluate

    return evaluate(path, data, data_root=data_root, batch_size=batch_size, val_subset=val_subset)


def fewest_fp32_layers(tolerance: float, errors: list[LayerError], score: Callable[[list[str]], float],
                       reference: float, fixed: Sequence[str] = (),
                       progress: bool = False) -> tuple[list[LayerError], list[dict[str, Any]]]:  # fmt: skip
    """The fewest quantised operations, taken in order of the SQNR each loses on its own, whose FP32 brings
    ``score`` (of the node names kept in FP32, ``fixed`` first) within ``tolerance`` of ``reference``: doubling
    the count until it holds, then bisecting. Returns them and every try (its labels and score)."""
    ranked = [e for e in sorted(errors, key=lambda e: -e.lost_db) if e.int8 and e.node not in fixed]
    tries: list[dict[str, Any]] = []
    bar = tqdm(desc="auto-exclude", unit="try", disable=hidden(progress), leave=False)

    def holds(k: int) -> bool:
        value = score([*fixed, *(e.node for e in ranked[:k])])
        tries.append({"kept_fp32": [e.label for e in ranked[:k]], "score": value})
        bar.update()
        return reference - value <= tolerance + TOLERANCE_SLACK

    try:
        if holds(0):
            return [], tries
        if not ranked:
            warnings.warn("no quantised operation is left to keep in FP32; the tolerance is not met", stacklevel=3)
            return [], tries
        low, high = 0, 1  # the score fails with the first ``low`` operations in FP32
        while not holds(high):
            if high == len(ranked):
                best = max(tries, key=lambda t: t["score"])
                warnings.warn(f"even with all {len(ranked)} quantised operations in FP32 the score stays more than "
                              f"{tolerance:g} below FP32; keeping the best try, {len(best['kept_fp32'])} of them in "
                              "FP32", stacklevel=3)  # fmt: skip
                return ranked[: len(best["kept_fp32"])], tries
            low, high = high, min(2 * high, len(ranked))
        while high - low > 1:
            middle = (low + high) // 2
            if holds(middle):
                high = middle
            else:
                low = middle
    finally:
        bar.close()
    return ranked[:high], tries


def quantize(
    source: str | Path | TrainedModel | nn.Module,
    calibration_data: torch.Tensor | Iterable[torch.Tensor] | None = None,
    *,
    out: str | Path | None = None,
    calib: int = 512,
    method: str = "minmax",
    per_channel: bool = True,
    activations: str = "uint8",
    exclude: Sequence[str] = (),
    auto_exclude: float | None = None,
    seed: int = 0,
    data: str | None = None,
    data_root: str | None = None,
    val_subset: int = 0,
    evaluate: bool = True,
    latency: bool = True,
    latency_batch: int = 64,
    latency_input: Sequence[int] | None = None,
    batch_size: int = 256,
    progress: bool = True,
) -> QuantizeResult:
    """Quantise a trained run (or a module) to INT8 for onnxruntime, and measure what it costs and gains.

    ``source``: a run directory, a checkpoint, a loaded :class:`TrainedModel`, or a module (then
    ``calibration_data``, real input batches, and ``out``, a folder, are needed, and nothing is scored).
    ``calib`` training examples are drawn with ``seed`` unless ``calibration_data`` is given.
    ``method``: ``minmax``, ``entropy`` or ``percentile`` calibration. ``exclude``: layers kept in FP32, by
    module path (a prefix takes a whole block) or ONNX node name. ``auto_exclude``: a tolerance on the
    task's primary metric (top-1 points, PSNR dB, mAP on the 0–1 scale); the fewest most-damaged layers are kept in FP32
    until INT8 is within it of FP32 on the evaluation data (``data``, by default the run's; ``val_subset``
    examples of it where the task draws subsets, else all).

    Writes ``model.onnx`` and ``model.int8.onnx`` (and, for a run, ``quantization.json`` and
    ``plots/quantization.png``) into the run directory or ``out``. Latency is timed at batch 1 and
    ``latency_batch`` on inputs of ``latency_input`` (C, H, W; default: the run's input size).
    """
    _check_choice("method", method, METHODS)
    _check_choice("activations", activations, ACTIVATIONS)
    for name, value in (("calib", calib), ("latency_batch", latency_batch), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(val_subset, bool) or not isinstance(val_subset, int) or val_subset < 0:
        raise InvalidValueError(f"val_subset must be zero (all) or a positive integer, got {val_subset!r}")
    if auto_exclude is not None and (isinstance(auto_exclude, bool) or not isinstance(auto_exclude, (int, float))
                                     or not 0 <= auto_exclude < math.inf):  # fmt: skip
        raise InvalidValueError(f"auto_exclude must be a tolerance of zero or more on the task's metric, got "
                                f"{auto_exclude!r}")  # fmt: skip
    if isinstance(exclude, str):
        exclude = [exclude]
    from convforge.engine.export import export_onnx, exports_any_size, onnx_metadata
    from convforge.surgery.inference_form import inference_form

    if is_onnx_path(source):
        raise ConvforgeError(f"{source} is already an ONNX file; quantize takes the run directory or checkpoint "
                             "it came from")  # fmt: skip
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise ConvforgeError(f"out={str(out)!r} is a file; name a folder to write the ONNX files into")
    trained = None if isinstance(source, nn.Module) else trained_model(source)
    if trained is None:
        if out is None:
            raise ConvforgeError("name a folder to write a module's ONNX files into (out=...)")
        if auto_exclude is not None:
            raise ConvforgeError("auto_exclude scores the task's metric, so it needs a trained run, not a module")
        evaluate = False
    if auto_exclude is not None and not evaluate:
        raise ConvforgeError("auto_exclude scores the task's metric, so it cannot be combined with evaluate=False "
                             "(--no-eval)")  # fmt: skip
    folder = Path(out) if out is not None else trained.run_dir  # type: ignore[union-attr]
    model = inference_form(source if trained is None else trained.model)
    if trained is not None:
        size = tuple(trained.config.get("input_size") or ())
        any_size = exports_any_size(trained)
    else:
        size, any_size = (), False
    calibration = _calibration(calibration_data, trained, calib, seed)
    size = size or tuple(calibration.batches[0].shape[1:])
    metadata = onnx_metadata(trained.config, size) if trained is not None else None
    timed = tuple(latency_input or size)
    if latency_input is not None and not any_size and timed != size:
        raise InvalidValueError(f"latency_input {list(timed)} differs from the input size {list(size)} the model "
                                "is exported at; only models of any input size (super-resolution) take "
                                "another")  # fmt: skip
    if latency:
        check_timed_input(timed, max(1, latency_batch))
    check_histogram_memory(method, model, size, len(calibration))
    fp32_path, int8_path = folder / FP32_FILE, folder / INT8_FILE
    exported = export_onnx(model, fp32_path, (1, *size), any_size=any_size, metadata=metadata)
    settings = _Settings(method, activations, per_channel, "images")
    with tempfile.TemporaryDirectory(prefix="convforge-quantize-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        _pre_process(fp32_path, prepared)
        import onnx

        graph = onnx.load(str(prepared))
        asked = [layer.node for layer in select_layers(list(exclude), weighted_layers(graph))]
        tail = output_tail(graph)
        int8_types = quantisable_operation_types()
        candidate = Path(tmp) / "int8.onnx"
        _quantize_file(prepared, candidate, calibration, settings, asked + tail)
        sample = calibration.limited(SQNR_EXAMPLES)
        errors = layer_errors(prepared, candidate, sample, asked, int8_types, progress)
        chosen: list[LayerError] = []
        tries: list[dict[str, Any]] = []
        metrics: dict[str, dict[str, float]] = {}
        metric = None
        if evaluate and trained is not None:
            from convforge.tasks import get_task

            metric = get_task(trained.task).primary_metric
            metrics["FP32 onnxruntime"] = _evaluate(fp32_path, data, data_root, batch_size, val_subset)
            if auto_exclude is not None:
                trial = Path(tmp) / "trial.onnx"

                def score(kept: list[str]) -> float:
                    _quantize_file(prepared, trial, calibration, settings, kept + tail)
                    _stamp(trial, metadata)
                    return _evaluate(trial, data, data_root, batch_size, val_subset)[metric]

                reference = metrics["FP32 onnxruntime"][metric]
                chosen, tries = fewest_fp32_layers(float(auto_exclude), errors, score, reference, asked, progress)
                if chosen:
                    kept_nodes = asked + [e.node for e in chosen]
                    _quantize_file(prepared, candidate, calibration, settings, kept_nodes + tail)
                    errors = layer_errors(prepared, candidate, sample, kept_nodes, int8_types, progress)
        _stamp(candidate, metadata)
        write_atomic(int8_path, lambda path: path.write_bytes(candidate.read_bytes()))
        int8_graph = onnx.load(str(int8_path))
    if evaluate and trained is not None:
        metrics["INT8 onnxruntime"] = _evaluate(int8_path, data, data_root, batch_size, val_subset)
    kept = [layer.module for layer in float_layers(int8_graph)] + [e.label for e in chosen if not e.weighted]
    result = QuantizeResult(
        fp32_path, int8_path, method, activations, per_channel, len(calibration), seed, kept,
        unquantised_operations(int8_graph, quantisable_operation_types(), set(tail)), errors, exported.parity,
        metric, metrics, tries, fp32_tail=len(tail),
    )  # fmt: skip
    if trained is not None:
        from convforge.compress.plots import plot_quantization

        title = f"{trained.config.get('model', '')}: INT8 ({method}) against FP32"
        result.plot = plot_quantization(errors, folder / "plots" / "quantization.png", title=title)
        write_json_atomic(folder / "quantization.json", result.to_dict())
    if latency:
        variants: dict[str, nn.Module | Path] = {"FP32 PyTorch eager": model, "FP32 onnxruntime": fp32_path,
                                                 "INT8 onnxruntime": int8_path}  # fmt: skip
        result.speed = compare_speed(variants, timed, batches=sorted({1, latency_batch}), progress=progress)
        if trained is not None:
            write_json_atomic(folder / "quantization.json", result.to_dict())
    return result
