"""An ONNX file run by onnxruntime, usable wherever convforge scores or times a PyTorch model.

convforge writes its run's record (task, recipe, classes, normalisation, input size) into
the file's metadata under the key ``convforge``, so an exported or quantised model can be
evaluated on its own, wherever it was copied.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from convforge.errors import ConvforgeError
from convforge.runs.loading import TrainedModel

METADATA_KEY = "convforge"


def onnxruntime_module():
    """The ``onnxruntime`` module, or one sentence saying how to install it."""
    try:
        import onnxruntime
    except ImportError as err:
        raise ConvforgeError("running ONNX models needs onnxruntime (pip install onnxruntime)") from err
    return onnxruntime


def inference_session(path: str | Path, threads: int | None = None):
    """An onnxruntime CPU session for ``path`` with ``threads`` intra-op threads (default: PyTorch's count)."""
    ort = onnxruntime_module()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: the CPU provider's notes about unused optimisations are noise
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types for a bad file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConvforgeError(f"onnxruntime cannot load {path}: {first}") from err


class OnnxModel(nn.Module):
    """An onnxruntime session behind ``nn.Module``'s call: float tensors in, tensors out (a tuple if several)."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.session = inference_session(self.path, threads)
        (first,) = self.session.get_inputs()[:1]
        self.input_name = first.name
        self.input_shape = tuple(d if isinstance(d, int) else None for d in first.shape)  # None: any size

    def check_input(self, x: torch.Tensor) -> None:
        """Refuse an input the file cannot take, naming both shapes."""
        fits = x.dim() == len(self.input_shape) and all(d is None or d == n for d, n in zip(self.input_shape, x.shape))
        if not fits:
            wanted = "x".join("N" if d is None and i == 0 else "?" if d is None else str(d)
                              for i, d in enumerate(self.input_shape))  # fmt: skip
            raise ConvforgeError(f"{self.path.name} takes inputs of shape {wanted}, not "
                                 f"{'x'.join(map(str, x.shape))}: is this data for the task and input size it was "
                                 "exported for?")  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        self.check_input(x)
        array = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        outputs = [torch.from_numpy(o) for o in self.session.run(None, {self.input_name: array})]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


def read_metadata(path: str | Path) -> dict[str, Any] | None:
    """The run record convforge wrote into an ONNX file, or None for a file from elsewhere."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # noqa: BLE001 - protobuf raises several types for a damaged file
        raise ConvforgeError(f"{path} is not a readable ONNX file ({type(err).__name__})") from err
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            try:
                record = json.loads(prop.value)
            except json.JSONDecodeError:
                return None
            return record if isinstance(record, dict) else None
    return None


def write_metadata(path: str | Path, record: dict[str, Any]) -> None:
    """Store ``record`` (a run's record, JSON) in the ONNX file at ``path``, replacing any earlier one."""
    import onnx

    model = onnx.load(str(path))
    for prop in [p for p in model.metadata_props if p.key == METADATA_KEY]:
        model.metadata_props.remove(prop)
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(record)
    onnx.save(model, str(path))


def load_onnx(path: str | Path, threads: int | None = None) -> TrainedModel:
    """An ONNX file convforge wrote, as a model with its run's record (``checkpoint`` is the file)."""
    path = Path(path)
    if not path.is_file():
        raise ConvforgeError(f"no ONNX file at {path}")
    config = read_metadata(path)
    if config is None:
        raise ConvforgeError(f"{path} carries no convforge run record (it was not written by convforge export or "
                             "quantize); score it from Python with convforge.evaluate(OnnxModel(path), data, "
                             "task=...)")  # fmt: skip
    return TrainedModel(OnnxModel(path, threads).eval(), config, path)


def is_onnx_path(source: object) -> bool:
    """Whether ``source`` names an ONNX file (by its suffix)."""
    return isinstance(source, (str, Path)) and Path(source).suffix.lower() == ".onnx"


def run_directory_of(path: str | Path) -> Path | None:
    """The run directory an ONNX file lies in (``RUN/x.onnx`` or ``RUN/export/x.onnx``), if any."""
    for folder in list(Path(path).resolve().parents)[:2]:
        if (folder / "checkpoints").is_dir():
            return folder
    return None
