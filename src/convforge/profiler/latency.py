"""Inference latency: the median and spread of many timed forward passes after warm-up."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from convforge.errors import InvalidValueError
from convforge.progress_bars import hidden


@dataclass(frozen=True)
class LatencyResult:
    """Forward-pass latency in milliseconds, with the conditions it was measured under."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    iqr_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    runs: int
    warmup: int
    batch_size: int
    threads: int
    device: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]) of already sorted values."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = (len(sorted_values) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def measure_latency(
    model: nn.Module,
    inputs: tuple,
    runs: int = 50,
    warmup: int = 10,
    threads: int | None = None,
    progress: bool = False,
) -> LatencyResult:
    """Time ``runs`` forward passes of ``model(*inputs)`` after ``warmup`` untimed ones.

    Runs in eval mode under ``torch.inference_mode``; CUDA work is synchronised before
    each clock read. ``threads`` sets ``torch.set_num_threads`` for the measurement
    and is restored afterwards. Returns times in ms.
    """
    if runs < 1 or warmup < 0:
        raise InvalidValueError(f"runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    if threads is not None and threads < 1:
        raise InvalidValueError(f"threads must be a positive integer, got {threads}")
    first = next((t for t in inputs if isinstance(t, torch.Tensor)), None)
    device = first.device if first is not None else torch.device("cpu")

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    previous_threads = torch.get_num_threads()
    was_training = model.training
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        model.eval()
        times = []
        with torch.inference_mode():
            for _ in range(warmup):
                model(*inputs)
            sync()
            for _ in tqdm(range(runs), desc="latency", unit="run", disable=hidden(progress), leave=False):
                start = time.perf_counter()
                model(*inputs)
                sync()
                times.append((time.perf_counter() - start) * 1e3)
        used_threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(previous_threads)
        model.train(was_training)
    ordered = sorted(times)
    return LatencyResult(
        median_ms=statistics.median(ordered),
        p10_ms=_percentile(ordered, 10),
        p90_ms=_percentile(ordered, 90),
        iqr_ms=_percentile(ordered, 75) - _percentile(ordered, 25),
        mean_ms=statistics.fmean(ordered),
        std_ms=statistics.pstdev(ordered),
        min_ms=ordered[0],
        max_ms=ordered[-1],
        runs=runs,
        warmup=warmup,
        batch_size=int(first.shape[0]) if first is not None and first.dim() else 1,
        threads=used_threads,
        device=str(device),
    )
