"""Distance covariance and distance correlation (Székely, Rizzo & Bakirov 2007), in torch, for evaluation and as
a training loss.

For samples ``a`` ``[n, p]`` and ``b`` ``[n, q]`` (or distance matrices of any metric), with doubly centred
distance matrices A and B: dCov²_n = mean(A ∘ B), and dCor² = dCov²(a, b) / √(dCov²(a, a) dCov²(b, b)). This is
the V-statistic of the original paper; dCor is in [0, 1] and 0 in the population exactly under independence.
"""

from __future__ import annotations

import torch

from convforge.sdr.response_metrics import euclidean


def double_centre(distances: torch.Tensor) -> torch.Tensor:
    """``distances`` with its row and column means removed and its grand mean added back."""
    return distances - distances.mean(0, keepdim=True) - distances.mean(1, keepdim=True) + distances.mean()


def distance_covariance_sq(a_distances: torch.Tensor, b_distances: torch.Tensor) -> torch.Tensor:
    """dCov²_n from two ``[n, n]`` distance matrices."""
    return (double_centre(a_distances) * double_centre(b_distances)).mean()


def distance_correlation(a: torch.Tensor, b: torch.Tensor, *, a_is_distances: bool = False,
                         b_is_distances: bool = False) -> torch.Tensor:  # fmt: skip
    """dCor between two samples (rows are observations), or between distance matrices when flagged; in [0, 1]."""
    da = a if a_is_distances else euclidean(a)
    db = b if b_is_distances else euclidean(b)
    ab = distance_covariance_sq(da, db)
    aa, bb = distance_covariance_sq(da, da), distance_covariance_sq(db, db)
    denominator = (aa * bb).sqrt()
    if float(denominator) <= 0:
        return ab.new_zeros(())
    return (ab.clamp_min(0) / denominator).sqrt()
