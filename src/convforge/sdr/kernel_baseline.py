"""GSIR, generalised sliced inverse regression in reproducing kernel Hilbert spaces (Lee, Li & Chiaromonte 2013).

Nonlinear sufficient predictors f(x) = Σ_i c_i k̃(x_i, x) are the leading eigenfunctions of the regression
operator Σ_XX⁻¹ Σ_XY Σ_YY⁻¹ Σ_YX: the functions of X whose conditional mean given Y varies most, relative to their
variance. In the sample's coordinates, with centred Gram matrices G_X and G_Y (Gaussian kernels, bandwidths set
by the median distance), Tikhonov regularisation ε_X, ε_Y:

    maximise  ‖P_Y G_X c‖² / cᵀ(G_X² + n ε_X G_X) c,   P_Y = G_Y (G_Y + n ε_Y I)⁻¹

solved as a symmetric eigenproblem in the eigenbasis of G_X. The response enters only through G_Y, so any metric
works (the Gaussian kernel of the distances, as in the metric-space extensions of GSIR). This is convforge's
reading of the method, written from the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from convforge.errors import InvalidValueError
from convforge.sdr.distance_correlation import double_centre


def _median_bandwidth(distances: torch.Tensor) -> torch.Tensor:
    off = distances[~torch.eye(len(distances), dtype=torch.bool)]
    positive = off[off > 0]
    return positive.median() if positive.numel() else distances.new_tensor(1.0)


@dataclass
class KernelReduction:
    """A fitted GSIR: ``transform(x)`` evaluates the ``d`` sufficient predictors at new points."""

    train_x: torch.Tensor
    bandwidth: torch.Tensor
    coefficients: torch.Tensor  # [n, d]
    column_means: torch.Tensor  # the training Gram matrix's column means, for centring new rows
    grand_mean: torch.Tensor

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        gram = torch.exp(-(torch.cdist(x, self.train_x) ** 2) / (2 * self.bandwidth**2))
        centred = gram - gram.mean(1, keepdim=True) - self.column_means[None] + self.grand_mean
        return centred @ self.coefficients


def gsir(x: torch.Tensor, y_distances: torch.Tensor, d: int, eps_x: float = 1e-3, eps_y: float = 1e-3,
         max_components: int = 200) -> KernelReduction:  # fmt: skip
    """GSIR of responses known by their ``[n, n]`` distances on ``x`` ``[n, p]``: ``d`` nonlinear predictors.
    ``max_components`` eigenvectors of G_X are kept (the rest carry little variance)."""
    n = len(x)
    if x.dim() != 2 or y_distances.shape != (n, n) or not 1 <= d <= min(n, max_components):
        raise InvalidValueError(f"GSIR needs X [n, p], distances [n, n] and 1 <= d <= {min(n, max_components)}; got "
                                f"X {tuple(x.shape)}, distances {tuple(y_distances.shape)}, d = {d}")  # fmt: skip
    x_distances = torch.cdist(x, x)
    bandwidth = _median_bandwidth(x_distances)
    raw = torch.exp(-(x_distances**2) / (2 * bandwidth**2))
    g_x = double_centre(raw)
    y_bandwidth = _median_bandwidth(y_distances)
    g_y = double_centre(torch.exp(-(y_distances**2) / (2 * y_bandwidth**2)))
    eye = torch.eye(n, dtype=x.dtype)
    smoother = torch.linalg.solve(g_y + n * eps_y * eye, g_y).T  # G_Y (G_Y + nε I)⁻¹ (both symmetric)
    values, vectors = torch.linalg.eigh(g_x)
    keep = torch.argsort(values, descending=True)[:max_components]
    values, vectors = values[keep].clamp_min(0), vectors[:, keep]
    keep = values > 1e-10 * values.max()
    values, vectors = values[keep], vectors[:, keep]
    scale = values / torch.sqrt(values**2 + n * eps_x * values)  # D = Λ (Λ² + nεΛ)^{-1/2}
    projected = smoother @ vectors  # P_Y U
    operator = scale[:, None] * (projected.T @ projected) * scale[None, :]
    eig_values, eig_vectors = torch.linalg.eigh((operator + operator.T) / 2)
    b = eig_vectors[:, torch.argsort(eig_values, descending=True)[:d]]
    a = b / torch.sqrt(values**2 + n * eps_x * values)[:, None]
    return KernelReduction(x, bandwidth, vectors @ a, raw.mean(0), raw.mean())
