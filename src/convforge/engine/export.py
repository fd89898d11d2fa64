"""``convforge.export``: a trained model as an ONNX file, checked against PyTorch in onnxruntime."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from convforge.atomic import write_atomic
from convforge.errors import ConvforgeError
from convforge.field_checks import MAX_IMAGE_SIZE, is_int
from convforge.input_shapes import is_multi_input, shape_text
from convforge.output_files import check_output_file
from convforge.runs.loading import load_trained
from convforge.runs.onnx_model import OnnxModel, read_metadata, write_metadata
from convforge.tasks import get_task

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


def export_onnx(model: nn.Module, path: str | Path, input_shape: tuple[int, ...], opset: int = 17, check: bool = True,
                any_size: bool = False, metadata: dict[str, Any] | None = None) -> ExportResult:  # fmt: skip
    """Write ``model`` (evaluation mode, batch size free) to ``path`` as ONNX, and compare onnxruntime's output with
    PyTorch's on a random input of ``input_shape`` (N, C, H, W).

    ``any_size`` leaves the height and width free too (a fully convolutional model); ``metadata`` (a run's record)
    is stored in the file under the key ``convforge``. The file is written whole or not at all.
    """
    import onnx  # noqa: F401 - torch's exporter needs it: a missing package is named before anything is written

    if check:
        import onnxruntime  # noqa: F401

    path = Path(path)
    model = model.eval()
    example = torch.rand(*input_shape)
    axes = {0: "batch", 2: "height", 3: "width"} if any_size else {0: "batch"}

    def write(target: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
            torch.onnx.export(model, (example,), str(target), dynamo=False, opset_version=opset,
                              input_names=["images"], output_names=["output"],
                              dynamic_axes={"images": axes, "output": dict(axes)})  # fmt: skip
        if metadata is not None:
            write_metadata(target, metadata)

    write_atomic(path, write)
    if not check:
        return ExportResult(path, tuple(input_shape), None, None, None)
    theirs = OnnxModel(path)(example)
    with torch.no_grad():
        ours = model(example)
    if not isinstance(ours, torch.Tensor):
        raise ConvforgeError("the parity check compares one output tensor; this model returns several")
    diff = (theirs - ours).abs()
    rel = diff / (1 + ours.abs())
    return ExportResult(path, tuple(input_shape), float(diff.max()), float(rel.max()),
                        bool((rel <= PARITY_TOLERANCE).all()))  # fmt: skip


def export(checkpoint: str | Path, format: str = "onnx", out: str | Path | None = None, image_size: int | None = None,
           batch_size: int = 1, check: bool = True, overwrite: bool = False) -> ExportResult:  # fmt: skip
    """Export a trained run (or checkpoint) to ``format``; ``out`` defaults to ``<run>/export/<model>.onnx``.

    The input is the run's input size, or ``image_size`` square for a detector. An existing file at ``out`` is
    replaced only if convforge exported it, or with ``overwrite``; a checkpoint never.
    """
    if format not in FORMATS:
        raise ConvforgeError(f"format {format!r} is not supported; use one of {', '.join(FORMATS)}")
    trained = load_trained(checkpoint)
    size = list(trained.config.get("input_size") or [])
    if not size:
        raise ConvforgeError(f"{trained.checkpoint} does not record its input size")
    if is_multi_input(size):
        raise ConvforgeError(f"{trained.checkpoint} holds a model of {len(size)} input streams ({shape_text(size)}); "
                             "convforge exports models of one image input only")  # fmt: skip
    if image_size is not None:
        if not is_int(image_size) or not 32 <= image_size <= MAX_IMAGE_SIZE or image_size % 32:
            raise ConvforgeError(f"image_size must be a multiple of 32 from 32 to {MAX_IMAGE_SIZE}, got {image_size}")
        size = [size[0], image_size, image_size]
    name = str(trained.config.get("model") or "model").replace(":", "_").replace("/", "_")
    target = Path(out) if out else trained.run_dir / "export" / f"{Path(name).stem}.onnx"
    check_output_file(target, overwrite, replaceable=lambda path: read_metadata_quietly(path) is not None)
    return export_onnx(trained.model, target, (batch_size, *size), check=check, any_size=exports_any_size(trained),
                       metadata=onnx_metadata(trained.config, size))  # fmt: skip


def exports_any_size(trained: Any) -> bool:
    """Whether the trained model's task takes inputs of any height and width (super-resolution does)."""
    return bool(getattr(get_task(trained.task), "any_input_size", False))


def onnx_metadata(config: dict[str, Any], input_size: list[int] | tuple[int, ...]) -> dict[str, Any]:
    """The run record an ONNX file carries: the checkpoint's, with the input size it was exported at."""
    return {**config, "input_size": list(input_size)}


def read_metadata_quietly(path: Path) -> dict[str, Any] | None:
    """The run record of an ONNX file convforge wrote, or None for any other file."""
    try:
        return read_metadata(path)
    except ConvforgeError:
        return None
