"""``convforge.export``: a trained model as an ONNX file, checked against PyTorch in onnxruntime."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from convforge.errors import ConvforgeError
from convforge.runs.loading import load_trained

FORMATS = ("onnx",)
PARITY_TOLERANCE = 1e-4  # |onnx − torch| ≤ tol · (1 + |torch|), element-wise


@dataclass
class ExportResult:
    """Where the file went, and how closely onnxruntime reproduced PyTorch on the check input."""

    path: Path
    input_shape: tuple[int, ...]
    max_abs_diff: float | None  # None when the check was skipped
    max_rel_diff: float | None
    parity: bool | None  # whether every element agrees within PARITY_TOLERANCE


def export_onnx(model: nn.Module, path: str | Path, input_shape: tuple[int, ...], opset: int = 17,
                check: bool = True) -> ExportResult:  # fmt: skip
    """Write ``model`` (evaluation mode, batch size free) to ``path`` as ONNX, and compare onnxruntime's output with
    PyTorch's on a random input of ``input_shape`` (N, C, H, W)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    example = torch.rand(*input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
        torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=opset, input_names=["images"],
                          output_names=["output"],
                          dynamic_axes={"images": {0: "batch"}, "output": {0: "batch"}})  # fmt: skip
    if not check:
        return ExportResult(path, tuple(input_shape), None, None, None)
    try:
        import onnxruntime
    except ImportError as err:
        raise ConvforgeError("the parity check needs onnxruntime (pip install onnxruntime), or pass check=False "
                             "(--no-check)") from err  # fmt: skip
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    theirs = torch.from_numpy(session.run(None, {"images": example.numpy()})[0])
    with torch.no_grad():
        ours = model(example)
    if not isinstance(ours, torch.Tensor):
        raise ConvforgeError("the parity check compares one output tensor; this model returns several")
    diff = (theirs - ours).abs()
    rel = diff / (1 + ours.abs())
    return ExportResult(path, tuple(input_shape), float(diff.max()), float(rel.max()),
                        bool((rel <= PARITY_TOLERANCE).all()))  # fmt: skip


def export(checkpoint: str | Path, format: str = "onnx", out: str | Path | None = None, image_size: int | None = None,
           batch_size: int = 1, check: bool = True) -> ExportResult:  # fmt: skip
    """Export a trained run (or checkpoint) to ``format``; ``out`` defaults to ``<run>/export/<model>.onnx``.

    The input is the run's input size, or ``image_size`` square for a detector.
    """
    if format not in FORMATS:
        raise ConvforgeError(f"format {format!r} is not supported; use one of {', '.join(FORMATS)}")
    trained = load_trained(checkpoint)
    size = list(trained.config.get("input_size") or [])
    if not size:
        raise ConvforgeError(f"{trained.checkpoint} does not record its input size")
    if image_size is not None:
        if image_size < 32 or image_size % 32:
            raise ConvforgeError(f"image_size must be a positive multiple of 32, got {image_size}")
        size = [size[0], image_size, image_size]
    name = str(trained.config.get("model") or "model").replace(":", "_").replace("/", "_")
    target = Path(out) if out else trained.run_dir / "export" / f"{Path(name).stem}.onnx"
    return export_onnx(trained.model, target, (batch_size, *size), check=check)
