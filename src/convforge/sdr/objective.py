"""FCCov-Net's training objective: −FCCov_n(f(X), Y) + μ ‖Ĉov(f(X)) − I_d‖²_F.

The penalty keeps the features whitened (the paper's squared-Frobenius regularisation; the constrained and the
penalised problems agree for μ large enough). Without it FCCov grows with the features' scale.
"""

from __future__ import annotations

import torch

from convforge.sdr.fccov import fccov


def whitening_penalty(features: torch.Tensor) -> torch.Tensor:
    """‖Ĉov(features) − I_d‖²_F, with the sample covariance (divisor n − 1)."""
    centred = features - features.mean(0, keepdim=True)
    covariance = centred.T @ centred / max(len(features) - 1, 1)
    eye = torch.eye(features.shape[1], dtype=features.dtype, device=features.device)
    return ((covariance - eye) ** 2).sum()


def fccov_loss(features: torch.Tensor, distances: torch.Tensor, mu: float = 1.0) -> torch.Tensor:
    """−FCCov_n(features, Y) + μ ‖Ĉov(features) − I‖²_F, for ``features`` ``[n, d]`` and the responses' ``[n, n]``
    distance matrix (computed once per batch by the caller)."""
    return -fccov(features, distances) + mu * whitening_penalty(features)
