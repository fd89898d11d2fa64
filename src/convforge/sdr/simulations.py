"""Simulation designs for sufficient dimension reduction, after the predecessors of FCCov-Net (Fréchet SDR, Zhang,
Xue & Li 2023; deep SDR): X ~ N(0, I_p), p = 10, and a response in four kinds of space.

=================  ====================================================================  =================
design             response                                                              truth (index)
=================  ====================================================================  =================
``euclidean``      Y = sin(π(x₁ + x₂)/10) + x₂² + 0.25 ε                                  (x₁, x₂), linear
``wasserstein``    Y = N(μ, σ²), μ = 3 sin(x₁ + x₂) + 0.2 ε, σ = e^{(x₉ + x₁₀)/2} ∈ [0.1, 10]  (x₁ + x₂, x₉ + x₁₀)
``spd``            log Y = [[x₁/2, sin(x₂)/2], [sin(x₂)/2, x₁x₂/4]] + 0.1 E (2×2 SPD)      (x₁, x₂)
``sphere``         Y on S¹ at angle πx₁ + 0.2 ε (tangent noise)                          (cos πx₁, sin πx₁)
=================  ====================================================================  =================

Each has an ``-outliers`` variant in which 10 % of the training responses are corrupted (far away, or at a
random place on the circle). The metric of each: Euclidean, Wasserstein-2 between Gaussians (given as mean and
standard deviation), log-Euclidean, geodesic. The designs are convforge's picks from the predecessors' families;
FCCov-Net's own simulation models are not available.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from convforge.errors import InvalidValueError

DESIGNS = ("euclidean", "wasserstein", "spd", "sphere")
OUTLIER_FRACTION = 0.10
METRIC_OF = {"euclidean": "euclidean", "wasserstein": "wasserstein_gaussian", "spd": "log_euclidean",
             "sphere": "geodesic"}  # fmt: skip
DIMENSION_OF = {"euclidean": 2, "wasserstein": 2, "spd": 2, "sphere": 2}


@dataclass
class SdrSample:
    """One simulated sample: predictors ``x`` [n, p], responses ``y``, the true index ``truth`` [n, k], and the
    true basis [p, k] where the truth is linear in x."""

    x: torch.Tensor
    y: torch.Tensor
    truth: torch.Tensor
    basis: torch.Tensor | None
    metric: str
    dim: int


def design_names() -> list[str]:
    """Every design and its outlier variant."""
    return [name for design in DESIGNS for name in (design, f"{design}-outliers")]


def _basis(p: int, *columns: dict[int, float]) -> torch.Tensor:
    basis = torch.zeros(p, len(columns), dtype=torch.float64)
    for k, column in enumerate(columns):
        for i, value in column.items():
            basis[i, k] = value
    return basis


def simulate(name: str, n: int, seed: int = 0, p: int = 10, corrupt: bool = True) -> SdrSample:
    """``n`` draws of design ``name`` (``corrupt``: apply the ``-outliers`` variant's corruption, which studies
    apply to training samples only)."""
    design, _, variant = name.partition("-")
    if design not in DESIGNS or variant not in ("", "outliers"):
        raise InvalidValueError(f"unknown simulation design {name!r}; use one of {', '.join(design_names())}")
    if n < 2 or p < 10:
        raise InvalidValueError(f"a simulation needs n >= 2 and p >= 10, got n = {n}, p = {p}")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, p, generator=g, dtype=torch.float64)
    noise = torch.randn(n, generator=g, dtype=torch.float64)
    x1, x2, x9, x10 = x[:, 0], x[:, 1], x[:, 8], x[:, 9]
    outliers = torch.rand(n, generator=g) < OUTLIER_FRACTION if (variant and corrupt) else torch.zeros(n, dtype=bool)
    if design == "euclidean":
        y = torch.sin(math.pi * (x1 + x2) / 10) + x2**2 + 0.25 * noise
        y = torch.where(outliers, y + 30 + 10 * torch.rand(n, generator=g, dtype=torch.float64), y)[:, None]
        truth, basis = torch.stack([x1, x2], 1), _basis(p, {0: 1.0}, {1: 1.0})
    elif design == "wasserstein":
        mean = 3 * torch.sin(x1 + x2) + 0.2 * noise
        sd = torch.exp((x9 + x10) / 2).clamp(0.1, 10)
        mean = torch.where(outliers, mean + 50, mean)
        y = torch.stack([mean, sd], 1)
        truth, basis = torch.stack([x1 + x2, x9 + x10], 1), _basis(p, {0: 1.0, 1: 1.0}, {8: 1.0, 9: 1.0})
    elif design == "spd":
        off = torch.sin(x2) / 2
        log_y = torch.stack([torch.stack([x1 / 2, off], -1), torch.stack([off, x1 * x2 / 4], -1)], -2)
        e = torch.randn(n, 2, 2, generator=g, dtype=torch.float64)
        log_y = log_y + 0.1 * (e + e.transpose(1, 2)) / 2
        log_y = torch.where(outliers[:, None, None], log_y + 5 * torch.eye(2, dtype=torch.float64), log_y)
        y = torch.linalg.matrix_exp(log_y)
        y = (y + y.transpose(1, 2)) / 2
        truth, basis = torch.stack([x1, x2], 1), _basis(p, {0: 1.0}, {1: 1.0})
    else:
        angle = math.pi * x1 + 0.2 * noise
        angle = torch.where(outliers, 2 * math.pi * torch.rand(n, generator=g, dtype=torch.float64), angle)
        y = torch.stack([torch.cos(angle), torch.sin(angle)], 1)
        truth, basis = torch.stack([torch.cos(math.pi * x1), torch.sin(math.pi * x1)], 1), None
    return SdrSample(x, y, truth, basis, METRIC_OF[design], DIMENSION_OF[design])
