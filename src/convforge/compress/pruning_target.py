"""What a pruning aims at: a fraction of the dense model's MACs, parameters or latency, or a latency in ms."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from convforge.errors import InvalidValueError

METRICS = ("macs", "params", "latency")
_UNITS = {"macs": "MACs", "params": "parameters", "latency": "ms latency"}


@dataclass(frozen=True)
class PruneTarget:
    """``metric`` (macs, params or latency) brought to ``ratio`` × the dense model's, or to ``ms`` milliseconds."""

    metric: str
    ratio: float | None = None
    ms: float | None = None

    @classmethod
    def parse(cls, text: str | PruneTarget) -> PruneTarget:
        """``macs=0.5``, ``params=0.3``, ``latency=0.6`` (ratios of the dense model) or ``latency=4ms``."""
        if isinstance(text, PruneTarget):
            return text
        allowed = "use macs=R, params=R or latency=R with a ratio 0 < R < 1 of the dense model, or latency=Nms"
        metric, sep, value = str(text).strip().lower().partition("=")
        if not sep or metric not in METRICS:
            raise InvalidValueError(f"pruning target {text!r} is not understood; {allowed}")
        try:
            if metric == "latency" and value.endswith("ms"):
                ms = float(value[:-2])
                if not (math.isfinite(ms) and ms > 0):
                    raise ValueError
                return cls(metric, ms=ms)
            ratio = float(value)
        except ValueError:
            raise InvalidValueError(f"pruning target {text!r} has no valid number; {allowed}") from None
        if not 0 < ratio < 1:
            raise InvalidValueError(f"pruning target {text!r}: the ratio must lie strictly between 0 and 1; {allowed}")
        return cls(metric, ratio=ratio)

    def goal(self, dense: float) -> float:
        """The value to reach, given the dense model's."""
        return self.ms if self.ms is not None else dense * float(self.ratio)

    @property
    def unit(self) -> str:
        return _UNITS[self.metric]

    def __str__(self) -> str:
        return f"{self.metric}={self.ms:g}ms" if self.ms is not None else f"{self.metric}={self.ratio:g}"


def measurer(metric: str, example_input: torch.Tensor, latency_runs: int = 15) -> Callable[[nn.Module], float]:
    """A function giving a model's MACs (``macs`` convention), parameter count, or median latency in ms at
    ``example_input``'s batch size, on this machine."""
    from convforge.profiler import count_macs, measure_latency

    if metric == "macs":
        return lambda model: float(count_macs(model, example_input))
    if metric == "params":
        return lambda model: float(sum(p.numel() for p in model.parameters()))
    return lambda model: measure_latency(model, (example_input,), runs=latency_runs, warmup=5).median_ms
