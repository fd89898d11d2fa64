"""Sufficient dimension reduction: the FCCov measure, response metrics, dCor and the FCCov-Net objective."""

from convforge.sdr.distance_correlation import distance_correlation, distance_covariance_sq
from convforge.sdr.fccov import fccov, fccov_bruteforce
from convforge.sdr.objective import fccov_loss, whitening_penalty
from convforge.sdr.response_metrics import (
    METRICS,
    affine_invariant,
    euclidean,
    from_function,
    geodesic,
    get_metric,
    log_euclidean,
    wasserstein_gaussian,
    wasserstein_quantiles,
)

__all__ = [
    "METRICS",
    "affine_invariant",
    "distance_correlation",
    "distance_covariance_sq",
    "euclidean",
    "fccov",
    "fccov_bruteforce",
    "fccov_loss",
    "from_function",
    "geodesic",
    "get_metric",
    "log_euclidean",
    "wasserstein_gaussian",
    "wasserstein_quantiles",
    "whitening_penalty",
]
