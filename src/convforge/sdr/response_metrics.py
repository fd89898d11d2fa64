"""Distances between responses: the only thing FCCov needs to know about Y.

Each metric takes a batch of responses and returns their ``[n, n]`` distance matrix:

- :func:`euclidean`: ``[n, q]`` vectors;
- :func:`wasserstein_quantiles`: 1-D distributions given as quantile functions on a common grid ``[n, m]``
  (W2² is the mean squared difference of the quantiles, the integral over levels in (0, 1));
- :func:`wasserstein_gaussian`: 1-D Gaussians given as ``[n, 2]`` (mean, standard deviation):
  W2² = (μ₁ − μ₂)² + (σ₁ − σ₂)²;
- :func:`log_euclidean`: SPD matrices ``[n, q, q]``: ‖log A − log B‖_F;
- :func:`affine_invariant`: SPD matrices: ‖log(A^{-1/2} B A^{-1/2})‖_F = √Σ log² λ_i(A⁻¹B);
- :func:`geodesic`: unit vectors ``[n, q]`` on the sphere: arccos⟨u, v⟩;
- :func:`from_function`: any function of two batches that returns their distance matrix.

:data:`METRICS` names them for recipes and the command line.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from convforge.errors import InvalidValueError

Metric = Callable[[torch.Tensor], torch.Tensor]


def _shape(y: torch.Tensor, dims: int, what: str) -> torch.Tensor:
    if y.dim() != dims:
        raise InvalidValueError(f"{what}, got shape {tuple(y.shape)}")
    if not torch.isfinite(y).all():
        raise InvalidValueError("responses must be finite")
    return y


def _pairwise_sq(a: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances between the rows of ``a``, exact on the diagonal and never negative."""
    diff = a[:, None, :] - a[None, :, :] if a.shape[0] * a.shape[0] * a.shape[1] <= 2**26 else None
    if diff is not None:
        return (diff**2).sum(-1)
    return torch.cdist(a, a).pow(2)


def euclidean(y: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between ``[n, q]`` (or ``[n]``) vectors."""
    y = y[:, None] if y.dim() == 1 else y
    return _pairwise_sq(_shape(y, 2, "Euclidean responses must be [n, q]")).sqrt()


def wasserstein_quantiles(quantiles: torch.Tensor) -> torch.Tensor:
    """W2 between 1-D distributions given by their quantile functions on a common grid of levels ``[n, m]``."""
    q = _shape(quantiles, 2, "quantile functions must be [n, levels]")
    return (_pairwise_sq(q) / q.shape[1]).sqrt()


def wasserstein_gaussian(params: torch.Tensor) -> torch.Tensor:
    """W2 between 1-D Gaussians ``[n, 2]`` of (mean, standard deviation): √((μ₁ − μ₂)² + (σ₁ − σ₂)²)."""
    p = _shape(params, 2, "Gaussian responses must be [n, 2]: mean and standard deviation")
    if p.shape[1] != 2 or (p[:, 1] < 0).any():
        raise InvalidValueError("Gaussian responses must be [n, 2] with a non-negative standard deviation")
    return _pairwise_sq(p).sqrt()


def _spd(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    _shape(y, 3, "SPD responses must be [n, q, q]")
    if y.shape[1] != y.shape[2] or not torch.allclose(y, y.transpose(1, 2), atol=1e-8, rtol=1e-6):
        raise InvalidValueError("SPD responses must be symmetric [n, q, q] matrices")
    values, vectors = torch.linalg.eigh(y)
    if (values <= 0).any():
        raise InvalidValueError("SPD responses must be positive definite (an eigenvalue is <= 0)")
    return values, vectors


def log_euclidean(y: torch.Tensor) -> torch.Tensor:
    """‖log A − log B‖_F between SPD matrices ``[n, q, q]`` (matrix logarithms by eigendecomposition)."""
    values, vectors = _spd(y)
    logs = vectors @ torch.diag_embed(values.log()) @ vectors.transpose(1, 2)
    return _pairwise_sq(logs.flatten(1)).sqrt()


def affine_invariant(y: torch.Tensor) -> torch.Tensor:
    """‖log(A^{-1/2} B A^{-1/2})‖_F between SPD matrices ``[n, q, q]``: √Σ log² of the eigenvalues of A⁻¹B."""
    values, vectors = _spd(y)
    inv_sqrt = vectors @ torch.diag_embed(values.rsqrt()) @ vectors.transpose(1, 2)  # A^{-1/2}
    between = inv_sqrt[:, None] @ y[None, :] @ inv_sqrt[:, None]  # [n, n, q, q]
    eig = torch.linalg.eigvalsh((between + between.transpose(-1, -2)) / 2).clamp_min(torch.finfo(y.dtype).tiny)
    return (eig.log() ** 2).sum(-1).sqrt()


def geodesic(y: torch.Tensor) -> torch.Tensor:
    """Great-circle distances between unit vectors ``[n, q]`` (normalised first): arccos of their inner product."""
    _shape(y, 2, "sphere responses must be [n, q] unit vectors")
    unit = y / y.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return torch.arccos((unit @ unit.T).clamp(-1.0, 1.0))


def from_function(function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Metric:
    """A metric from any ``function(a, b)`` returning the ``[len(a), len(b)]`` distances of two batches."""

    def metric(y: torch.Tensor) -> torch.Tensor:
        distances = function(y, y)
        if distances.shape != (len(y), len(y)):
            raise InvalidValueError(f"the distance function returned shape {tuple(distances.shape)}; it must return "
                                    f"[{len(y)}, {len(y)}]")  # fmt: skip
        return distances

    return metric


METRICS: dict[str, Metric] = {
    "euclidean": euclidean,
    "wasserstein": wasserstein_quantiles,
    "wasserstein_gaussian": wasserstein_gaussian,
    "log_euclidean": log_euclidean,
    "affine_invariant": affine_invariant,
    "geodesic": geodesic,
}


def get_metric(name: str) -> Metric:
    """The metric registered under ``name``."""
    if name not in METRICS:
        raise InvalidValueError(f"unknown response metric {name!r}; use one of {', '.join(METRICS)}")
    return METRICS[name]
