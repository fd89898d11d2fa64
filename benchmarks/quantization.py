"""INT8 post-training quantisation on this CPU: what it costs in accuracy and what it gains in speed.

For each model, in one run: train it (or reuse the run a previous call left in --project),
quantise it with ``convforge.quantize`` (inference form → ONNX → onnxruntime pre-processing →
static QDQ, per-channel INT8 weights, calibrated on --calib training images with seed 0), score
FP32 and INT8 through onnxruntime on the task's evaluation data, and time FP32 PyTorch eager,
FP32 onnxruntime and INT8 onnxruntime at batch 1 and 64 in the same process, with the same
threads. The published PTQ drops of compression.md are printed beside ours.

Models: SimpleNet cifar_310k and ResNet-20 on CIFAR-10; timm's mobilenetv3_small_100 trained
from scratch on CIFAR-10 (minmax, entropy, then entropy with --auto-exclude 1.5); SESR-M5 (collapsed) on Set5 and
Set14; LeYOLO nano on COCO128. ResNet-20 is also quantised with S8S8 (signed activations), the
alternative to convforge's U8S8 default.

    python benchmarks/quantization.py --project DIR [--data-root DIR] [--calib 512]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import convforge
from convforge.compress.quantization import QuantizeResult, quantize
from convforge.runs.loading import load_trained
from convforge.tables import format_metric, text_table

PUBLISHED = {  # top-1 points lost by default PTQ (compression.md)
    "classify": "ResNet-18 −0.3 (69.78 → 69.48), EfficientNet-B0 ≈ −0.5, ResNet-50 ≈ −0.6",
    "depthwise": "MobileNetV3-small-050: −16 without bias correction, −1.35 with it",
}
GOALS = {"resnet20": 0.5, "simplenet_cifar_310k": 0.5, "mobilenetv3_small_100": 1.5, "sesr_m5": 0.1}


@dataclass(frozen=True)
class Case:
    """One model of the benchmark: how it is trained and scored."""

    name: str  # the run's name
    model: str
    train: dict  # convforge.train arguments besides model, project and name
    auto_exclude: float | None = None
    method: str = "minmax"
    latency_input: tuple[int, ...] | None = None
    extra_data: str | None = None  # scored as well, FP32 and INT8


def cases(data_root: str | None) -> list[Case]:
    cifar = dict(data="cifar10", data_root=data_root and f"{data_root}/cifar10", train_subset=20000, epochs=8,
                 batch_size=128)  # fmt: skip
    sr_root = data_root and f"{data_root}/sr"
    return [
        Case("resnet20", "resnet20", cifar),
        Case("simplenet_cifar_310k", "simplenet_cifar_310k", cifar),
        Case("mobilenetv3_small_100", "timm:mobilenetv3_small_100", {**cifar, "opt": "adamw"}),
        Case("mobilenetv3_small_100", "timm:mobilenetv3_small_100", {**cifar, "opt": "adamw"}, method="entropy"),
        Case(
            "mobilenetv3_small_100",
            "timm:mobilenetv3_small_100",
            {**cifar, "opt": "adamw"},
            auto_exclude=1.5,
            method="entropy",
        ),
        Case(
            "sesr_m5",
            "sesr_m5",
            dict(task="sr", data="t91", scale=2, epochs=30, data_root=sr_root),
            latency_input=(1, 128, 128),
            extra_data="set14",
        ),  # fmt: skip
        Case(
            "leyolo_nano",
            "leyolo_nano",
            dict(
                data="coco128.yaml",
                image_size=320,
                epochs=75,
                batch_size=16,
                opt="adamw",
                lr=0.002,
                warmup_epochs=3,
                data_root=data_root and f"{data_root}/coco128",
            ),
        ),  # fmt: skip
    ]


def trained_run(case: Case, project: Path) -> tuple[Path, float]:
    """The case's run directory, trained now unless a previous call left its best checkpoint; seconds spent."""
    train = {k: v for k, v in case.train.items() if v is not None}
    task = train.get("task") or ("detect" if case.model.startswith("leyolo") else "classify")
    run = project / task / case.name
    if (run / "checkpoints" / "best.safetensors").is_file():
        recorded = load_trained(run).config["recipe"]
        differs = {k: (recorded.get(k), v) for k, v in train.items() if k != "data_root" and recorded.get(k) != v}
        if differs:
            raise SystemExit(f"{run} was trained otherwise than this benchmark trains {case.name} (recorded, wanted): "
                             f"{differs}; use another --project")  # fmt: skip
        return run, 0.0
    start = time.perf_counter()
    convforge.train(case.model, project=str(project), name=case.name, progress=False, **train)
    return run, time.perf_counter() - start


def report(case: Case, result: QuantizeResult, extra: dict[str, dict[str, float]] | None) -> list[str]:
    metric = result.metric
    fp32, int8 = result.metrics["FP32 onnxruntime"][metric], result.metrics["INT8 onnxruntime"][metric]
    options = f" --method {case.method}" if case.method != "minmax" else ""
    options += f" --auto-exclude {case.auto_exclude}" if case.auto_exclude is not None else ""
    lines = [f"{case.name}{options}: "
             f"{metric} FP32 {format_metric(metric, fp32)}, INT8 {format_metric(metric, int8)}, "
             f"lost {format_metric(metric, fp32 - int8)}"]  # fmt: skip
    if extra:
        lines.append(f"  {case.extra_data}: FP32 {format_metric(metric, extra['fp32'][metric])}, INT8 "
                     f"{format_metric(metric, extra['int8'][metric])}, lost "
                     f"{format_metric(metric, extra['fp32'][metric] - extra['int8'][metric])}")  # fmt: skip
    if result.excluded:
        lines.append(f"  kept in FP32: {', '.join(result.excluded)} ({len(result.auto_exclude)} tries)")
    goal = GOALS.get(case.name)
    if goal is not None and (case.name != "mobilenetv3_small_100" or case.auto_exclude is not None):
        lost = fp32 - int8
        lines.append(f"  goal: at most {goal:g} lost — {'met' if lost <= goal else f'missed by {lost - goal:.2f}'}")
    assert result.speed is not None
    lines += ["  " + row for row in result.speed.table().splitlines()]
    lines.append("  " + result.speed.verdict())
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", required=True, help="folder of the trained runs (kept for --reuse)")
    parser.add_argument("--data-root", help="folder holding cifar10/, sr/ and coco128/ (else $CONVFORGE_DATA)")
    parser.add_argument("--calib", type=int, default=512)
    parser.add_argument("--only", nargs="*", help="run only these case names")
    args = parser.parse_args()
    project = Path(args.project)
    summary_rows, lines = [], []
    for case in cases(args.data_root):
        if args.only and case.name not in args.only:
            continue
        run, trained_s = trained_run(case, project)
        start = time.perf_counter()
        variant = "auto-exclude" if case.auto_exclude is not None else case.method
        out = run / (variant if variant != "minmax" else ".")
        result = quantize(run, out=out, calib=args.calib, method=case.method, auto_exclude=case.auto_exclude,
                          progress=False, latency_input=case.latency_input)  # fmt: skip
        extra = None
        if case.extra_data:
            extra = {k: convforge.evaluate(path, case.extra_data) for k, path in
                     (("fp32", result.fp32_path), ("int8", result.int8_path))}  # fmt: skip
        quantize_s = time.perf_counter() - start
        found = report(case, result, extra) + [f"  trained {trained_s:.0f} s now; quantised and measured in "
                                               f"{quantize_s:.0f} s", ""]  # fmt: skip
        metric = result.metric
        speed = result.speed
        summary_rows.append((
            case.name + ("" if case.method == "minmax" else f" ({case.method})")
            + (" (auto-exclude)" if case.auto_exclude is not None else ""),
            format_metric(metric, result.metrics["FP32 onnxruntime"][metric]),
            format_metric(metric, result.metrics["INT8 onnxruntime"][metric]),
            f"{speed.ratio('FP32 PyTorch eager', 'INT8 onnxruntime', 64):.2f}×",
            f"{speed.ratio('FP32 onnxruntime', 'INT8 onnxruntime', 1):.2f}×",
            f"{speed.ratio('FP32 onnxruntime', 'INT8 onnxruntime', 64):.2f}×",
        ))  # fmt: skip
        if case.name == "resnet20":
            s8 = quantize(run, out=run / "s8s8", calib=args.calib, activations="int8", progress=False)
            found += [f"resnet20 with S8S8 (signed activations): top1 INT8 "
                      f"{format_metric('top1', s8.metrics['INT8 onnxruntime']['top1'])}"]  # fmt: skip
            found += ["  " + row for row in s8.speed.table().splitlines()] + ["  " + s8.speed.verdict(), ""]
        print("\n".join(found), flush=True)
        lines += found
    (project / "quantization-report.txt").write_text("\n".join(lines))
    print(text_table(["model", "FP32", "INT8", "INT8 vs eager b64", "INT8 vs ORT FP32 b1", "INT8 vs ORT FP32 b64"],
                     summary_rows, align="lrrrrr"))  # fmt: skip
    print(f"published PTQ drops: {PUBLISHED['classify']}; depthwise: {PUBLISHED['depthwise']}")


if __name__ == "__main__":
    main()
