"""Linear sufficient dimension reduction: SIR (Li 1991), SAVE (Cook & Weisberg 1991) and WIRE (Ying & Yu 2022).

Each finds a ``[p, d]`` basis B of directions, so that ``Xβ`` for β in span(B) carries what X says about Y:

- **SIR**: standardise X (Z = Σ^{-1/2}(X − μ)), cut the sample into ``slices`` by the order of a scalar response,
  and take the leading eigenvectors of Σ_h p_h m_h m_hᵀ (m_h: the mean of Z in slice h).
- **SAVE**: the same slices, the leading eigenvectors of Σ_h p_h (I − V_h)² (V_h: the covariance of Z in slice h).
- **WIRE** (weighted inverse regression ensemble, for responses in a metric space): the leading eigenvectors of
  −n⁻² Σ_{i,j} Z_i Z_jᵀ ρ(Y_i, Y_j), which needs only the responses' distances.

Directions in Z are mapped back by Σ^{-1/2} and orthonormalised. Written from the papers; no maintained Python
package provides them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from convforge.errors import InvalidValueError


@dataclass
class LinearReduction:
    """A fitted linear reduction: ``transform(x) = (x − mean) @ basis``."""

    mean: torch.Tensor
    basis: torch.Tensor  # [p, d], orthonormal columns

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) @ self.basis


def _standardise(x: torch.Tensor, d: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if x.dim() != 2 or not 1 <= d <= x.shape[1]:
        raise InvalidValueError(f"X must be [n, p] and d from 1 to p, got X {tuple(x.shape)} and d = {d}")
    mean = x.mean(0)
    covariance = torch.cov((x - mean).T).reshape(x.shape[1], x.shape[1])
    values, vectors = torch.linalg.eigh(covariance)
    if values.min() <= 1e-10 * values.max():
        raise InvalidValueError("X's covariance is singular; drop constant or collinear columns first")
    inv_sqrt = vectors @ torch.diag(values.rsqrt()) @ vectors.T
    return (x - mean) @ inv_sqrt, mean, inv_sqrt


def _directions(kernel: torch.Tensor, mean: torch.Tensor, inv_sqrt: torch.Tensor, d: int) -> LinearReduction:
    values, vectors = torch.linalg.eigh((kernel + kernel.T) / 2)
    leading = vectors[:, torch.argsort(values, descending=True)[:d]]
    basis, _ = torch.linalg.qr(inv_sqrt @ leading)
    return LinearReduction(mean, basis)


def _slices(y: torch.Tensor, slices: int) -> list[torch.Tensor]:
    if y.dim() == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dim() != 1:
        raise InvalidValueError("SIR and SAVE slice a scalar response; for other responses use WIRE")
    if not 2 <= slices <= len(y):
        raise InvalidValueError(f"slices must be from 2 to n = {len(y)}, got {slices}")
    return list(torch.tensor_split(torch.argsort(y), slices))


def sir(x: torch.Tensor, y: torch.Tensor, d: int, slices: int = 10) -> LinearReduction:
    """Sliced inverse regression of a scalar ``y`` on ``x`` ``[n, p]``: a ``d``-dimensional basis."""
    z, mean, inv_sqrt = _standardise(x, d)
    kernel = torch.zeros(z.shape[1], z.shape[1], dtype=z.dtype)
    for part in _slices(y, slices):
        m = z[part].mean(0)
        kernel += len(part) / len(z) * torch.outer(m, m)
    return _directions(kernel, mean, inv_sqrt, d)


def save(x: torch.Tensor, y: torch.Tensor, d: int, slices: int = 10) -> LinearReduction:
    """Sliced average variance estimation of a scalar ``y`` on ``x``: a ``d``-dimensional basis."""
    z, mean, inv_sqrt = _standardise(x, d)
    eye = torch.eye(z.shape[1], dtype=z.dtype)
    kernel = torch.zeros_like(eye)
    for part in _slices(y, slices):
        if len(part) < 2:
            continue
        gap = eye - torch.cov(z[part].T).reshape(eye.shape)
        kernel += len(part) / len(z) * gap @ gap
    return _directions(kernel, mean, inv_sqrt, d)


def wire(x: torch.Tensor, distances: torch.Tensor, d: int) -> LinearReduction:
    """The weighted inverse regression ensemble for responses known by their ``[n, n]`` distances."""
    z, mean, inv_sqrt = _standardise(x, d)
    if distances.shape != (len(z), len(z)):
        raise InvalidValueError(f"distances must be [{len(z)}, {len(z)}], got {tuple(distances.shape)}")
    kernel = -(z.T @ distances.to(z.dtype) @ z) / len(z) ** 2
    return _directions(kernel, mean, inv_sqrt, d)


def subspace_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖P_A − P_B‖_F between the column spaces of two ``[p, d]`` bases (0: the same subspace)."""
    qa, _ = torch.linalg.qr(a)
    qb, _ = torch.linalg.qr(b)
    return float(torch.linalg.norm(qa @ qa.T - qb @ qb.T))
