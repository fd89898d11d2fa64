"""The Fréchet cumulative covariance (FCCov) between features and responses known only through their distances.

**The definition is a reconstruction** (from the FCCov-Net paper's abstract and its predecessors; no code or full
text of the paper is available): for a sample of features ``f(X_i)`` (centred: ``f̄``) and responses ``Y_i`` in a
metric space with distances ``ρ``,

    FCCov_n = n⁻² Σ_{j,k} ‖ n⁻¹ Σ_i f̄(X_i) · 1{ρ(Y_i, Y_j) ≤ ρ(Y_k, Y_j)} ‖²

The indicator asks whether ``Y_i`` lies in the ball around ``Y_j`` that reaches ``Y_k``; ties count as inside
(``≤``). It uses only comparisons of distances, so it is unchanged by a strictly increasing transform of ``ρ`` and
moves little when a few responses are made outlying.

:func:`fccov` computes it in O(n²(log n + d)): for each ``j``, sort row ``j`` of the distance matrix; the ``i``
inside each ball then form a prefix of that order, so prefix sums of ``f̄`` give every ``k`` at once (summing
over ``k`` is summing over row ``j``'s sorted positions, and a position's ball ends at the last distance tied
with it). It is differentiable in the features.
:func:`fccov_bruteforce` is the O(n³) definition, for tests.
"""

from __future__ import annotations

import torch

from convforge.errors import InvalidValueError

CHUNK_VALUES = 2**24  # rows of the sorted prefix sums computed at once: rows × n × d values at most


def _check(features: torch.Tensor, distances: torch.Tensor) -> torch.Tensor:
    if features.dim() == 1:
        features = features[:, None]
    if features.dim() != 2:
        raise InvalidValueError(f"features must be [n, d], got shape {tuple(features.shape)}")
    n = features.shape[0]
    if distances.shape != (n, n):
        raise InvalidValueError(f"distances must be the [n, n] = [{n}, {n}] matrix of the responses' pairwise "
                                f"distances, got shape {tuple(distances.shape)}")  # fmt: skip
    if n < 2:
        raise InvalidValueError(f"FCCov needs at least 2 samples, got {n}")
    if not torch.isfinite(distances).all():
        raise InvalidValueError("distances must be finite")
    return features


def fccov(features: torch.Tensor, distances: torch.Tensor) -> torch.Tensor:
    """The sample FCCov of ``features`` ``[n, d]`` and the responses' distance matrix ``distances`` ``[n, n]`` (a
    0-d tensor, differentiable in ``features``), in O(n²(log n + d))."""
    features = _check(features, distances)
    n, d = features.shape
    centred = features - features.mean(0, keepdim=True)
    sorted_distances, order = torch.sort(distances.detach(), dim=1)
    # Summing over k is summing over row j's sorted positions t. The ball through the t-th nearest holds every i
    # up to the end of t's run of tied distances (ties count as inside): count = that end's position + 1.
    last = torch.ones(n, 1, dtype=torch.bool, device=distances.device)
    ends = torch.cat([sorted_distances[:, 1:] != sorted_distances[:, :-1], last], dim=1)
    positions = torch.arange(n, device=distances.device).expand(n, n)
    marked = torch.where(ends, positions, torch.full_like(positions, n))
    counts = torch.flip(torch.cummin(torch.flip(marked, [1]), dim=1).values, [1]) + 1  # [n, n]
    total = centred.new_zeros(())
    rows = max(1, CHUNK_VALUES // max(n * d, 1))
    for start in range(0, n, rows):
        part = slice(start, min(start + rows, n))
        prefix = torch.cumsum(centred[order[part]], dim=1)  # [rows, n, d]: sums of the first m + 1 sorted i
        prefix = torch.cat([prefix.new_zeros(prefix.shape[0], 1, d), prefix], dim=1)  # m = 0: the empty ball
        norms = (prefix**2).sum(-1)  # [rows, n + 1]
        total = total + norms.gather(1, counts[part]).sum()
    return total / n**4


def fccov_bruteforce(features: torch.Tensor, distances: torch.Tensor) -> torch.Tensor:
    """The definition summed directly, O(n³) time and memory: for tests on small samples."""
    features = _check(features, distances)
    n = features.shape[0]
    centred = features - features.mean(0, keepdim=True)
    # inside[j, k, i] = 1{ρ(Y_i, Y_j) ≤ ρ(Y_k, Y_j)}
    inside = (distances[:, None, :] <= distances[:, :, None]).to(centred.dtype)
    sums = torch.einsum("jki,id->jkd", inside, centred) / n
    return (sums**2).sum() / n**2
