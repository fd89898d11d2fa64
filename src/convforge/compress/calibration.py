"""Calibration data for post-training quantisation: real inputs, drawn once with a fixed seed, replayable."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch

from convforge.errors import ConvforgeError, InvalidValueError

MAX_CALIBRATION_MIB = 4096  # the inputs are held in memory; more than this is refused rather than swapped
# the histogram methods (entropy, percentile) keep every layer's output for every calibration example
MAX_HISTOGRAM_MIB = 6144


class CalibrationSet:
    """Batches of float32 model inputs (N, C, H, W), held as numpy arrays for onnxruntime."""

    def __init__(self, batches: Iterable[torch.Tensor | np.ndarray]) -> None:
        self.batches: list[np.ndarray] = []
        total = 0
        for batch in batches:
            array = np.ascontiguousarray(batch.detach().cpu().float().numpy() if isinstance(batch, torch.Tensor)
                                         else np.asarray(batch, dtype=np.float32))  # fmt: skip
            if array.ndim < 2:
                raise InvalidValueError(f"calibration batches must have a batch dimension, got shape {array.shape}")
            total += array.nbytes
            if total > MAX_CALIBRATION_MIB * 2**20:
                raise InvalidValueError(f"the calibration inputs exceed {MAX_CALIBRATION_MIB} MiB; use fewer images "
                                        "(--calib)")  # fmt: skip
            self.batches.append(array)
        if not self.batches:
            raise ConvforgeError("there are no calibration inputs: the data gave no examples")

    @classmethod
    def from_task(cls, task: Any, recipe: Any, count: int, seed: int = 0) -> CalibrationSet:
        """``count`` training examples of ``recipe``'s data, drawn by ``task`` with ``seed``, without augmentation."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidValueError(f"the number of calibration images must be a positive integer, got {count!r}")
        return cls(task.calibration_inputs(recipe, count, seed))

    def __len__(self) -> int:
        """The number of examples."""
        return sum(len(b) for b in self.batches)

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.batches)

    def limited(self, count: int) -> list[np.ndarray]:
        """The first ``count`` examples, in the same batches."""
        out, left = [], count
        for batch in self.batches:
            if left <= 0:
                break
            out.append(batch[:left])
            left -= len(out[-1])
        return out

    def reader(self, input_name: str):
        """An onnxruntime ``CalibrationDataReader`` that feeds these batches to ``input_name`` once."""
        from onnxruntime.quantization import CalibrationDataReader

        batches = self.batches

        class _Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self._items = iter(batches)

            def get_next(self) -> dict[str, np.ndarray] | None:
                batch = next(self._items, None)
                return None if batch is None else {input_name: batch}

            def rewind(self) -> None:
                self._items = iter(batches)

        return _Reader()


def activation_mib(model: torch.nn.Module, input_size: tuple[int, ...]) -> float:
    """MiB of float32 outputs all leaf modules of ``model`` produce for one example of ``input_size`` (C, H, W)."""
    total = 0

    def count(module: torch.nn.Module, args: Any, output: Any) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *input_size))
    finally:
        for handle in handles:
            handle.remove()
    return total * 4 / 2**20


def check_histogram_memory(method: str, model: torch.nn.Module, input_size: tuple[int, ...], count: int) -> None:
    """Refuse a histogram calibration (``entropy``, ``percentile``) whose kept layer outputs would not fit."""
    if method not in ("entropy", "percentile"):
        return
    per_example = activation_mib(model, input_size)
    if per_example * count > MAX_HISTOGRAM_MIB:
        fits = max(1, int(MAX_HISTOGRAM_MIB / max(per_example, 1e-9)))
        raise InvalidValueError(f"{method} calibration keeps every layer's output: {count} examples need about "
                                f"{per_example * count:,.0f} MiB (at most {MAX_HISTOGRAM_MIB} MiB); calibrate on at "
                                f"most {fits} examples, or use minmax")  # fmt: skip
