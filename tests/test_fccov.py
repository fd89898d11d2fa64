"""The FCCov measure against its definition, its invariants, its gradient, and the response metrics against
closed forms."""

import math

import pytest
import torch

from convforge.errors import InvalidValueError
from convforge.sdr import (
    affine_invariant,
    distance_correlation,
    euclidean,
    fccov,
    fccov_bruteforce,
    fccov_loss,
    from_function,
    geodesic,
    log_euclidean,
    wasserstein_gaussian,
    wasserstein_quantiles,
)


def _sample(n: int, d: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and a distance matrix with many ties (responses on a small integer grid)."""
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(n, d, generator=g, dtype=torch.float64)
    responses = torch.randint(0, 3, (n, 2), generator=g).double()
    return features, euclidean(responses)


@pytest.mark.parametrize(("n", "d"), [(2, 1), (7, 1), (25, 2), (40, 5), (64, 3)])
def test_the_fast_estimator_equals_the_definition_with_ties(n, d):
    features, distances = _sample(n, d, seed=n + d)
    assert n < 7 or torch.unique(distances).numel() < n * (n - 1) // 2  # ties are present
    assert abs(float(fccov(features, distances)) - float(fccov_bruteforce(features, distances))) < 1e-10


def test_it_is_invariant_to_permuting_the_sample_and_to_increasing_transforms_of_the_distances():
    features, distances = _sample(50, 3)
    value = fccov(features, distances)
    perm = torch.randperm(50)
    assert torch.isclose(fccov(features[perm], distances[perm][:, perm]), value, rtol=1e-12)
    for transform in (torch.exp, lambda x: x**3 + 2 * x, torch.sqrt):
        assert torch.isclose(fccov(features, transform(distances)), value, rtol=1e-12)


def test_its_gradient_matches_finite_differences():
    features, distances = _sample(12, 2)
    features.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f: fccov(f, distances), (features,))
    assert torch.autograd.gradcheck(lambda f: fccov_loss(f, distances, mu=0.7), (features,))


def test_a_sample_of_2000_is_computed_where_the_cubic_definition_would_need_8e9_terms():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2000, 2, generator=g, dtype=torch.float64)
    y = x[:, :1] + 0.1 * torch.randn(2000, 1, generator=g, dtype=torch.float64)
    distances = euclidean(y)
    related, unrelated = fccov(x[:, :1], distances), fccov(x[:, 1:], distances)
    assert float(related) > 20 * float(unrelated) > 0  # the feature Y depends on carries the covariance


def test_a_few_outlying_responses_move_it_little():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(300, 1, generator=g, dtype=torch.float64)
    y = x + 0.2 * torch.randn(300, 1, generator=g, dtype=torch.float64)
    clean = fccov(x, euclidean(y))
    corrupted = y.clone()
    corrupted[:15] = 1e6  # 5 % of the responses far away
    assert abs(float(fccov(x, euclidean(corrupted))) / float(clean) - 1) < 0.2


def test_bad_shapes_are_refused_by_name():
    with pytest.raises(InvalidValueError, match=r"\[n, n\]"):
        fccov(torch.randn(5, 2), torch.rand(4, 4))
    with pytest.raises(InvalidValueError, match="finite"):
        fccov(torch.randn(3, 2), torch.full((3, 3), float("nan")))


def test_the_metrics_equal_their_closed_forms():
    # Wasserstein-2 between Gaussians, from their quantile functions on a fine grid and from the parameters
    levels = torch.linspace(0.0005, 0.9995, 2000, dtype=torch.float64)
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0)
    params = torch.tensor([[0.0, 1.0], [1.5, 0.5], [-1.0, 2.0]], dtype=torch.float64)
    quantiles = params[:, :1] + params[:, 1:] * normal.icdf(levels)[None]
    closed = torch.sqrt((params[:, None, 0] - params[None, :, 0]) ** 2 + (params[:, None, 1] - params[None, :, 1]) ** 2)
    assert torch.allclose(wasserstein_gaussian(params), closed, atol=1e-12)
    assert torch.allclose(wasserstein_quantiles(quantiles), closed, atol=0.02)
    # SPD: for diagonal matrices both metrics are the distance between the logs of the diagonals
    diag = torch.tensor([[1.0, 2.0], [3.0, 0.5], [0.25, 4.0]], dtype=torch.float64)
    expected = euclidean(diag.log())
    spd = torch.diag_embed(diag)
    assert torch.allclose(log_euclidean(spd), expected, atol=1e-12)
    assert torch.allclose(affine_invariant(spd), expected, atol=1e-10)
    # the affine-invariant metric is unchanged by A -> P A Pᵀ; the log-Euclidean one by a rotation only
    g = torch.Generator().manual_seed(3)
    m = torch.randn(4, 3, 3, generator=g, dtype=torch.float64)
    spd = m @ m.transpose(1, 2) + 0.5 * torch.eye(3, dtype=torch.float64)
    p = torch.randn(3, 3, generator=g, dtype=torch.float64) + 2 * torch.eye(3, dtype=torch.float64)
    assert torch.allclose(affine_invariant(p @ spd @ p.T), affine_invariant(spd), atol=1e-8)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    assert torch.allclose(log_euclidean(q @ spd @ q.T), log_euclidean(spd), atol=1e-10)
    # the circle: the geodesic distance is the angle between the points
    angles = torch.tensor([0.0, 1.0, 3.0, -2.5], dtype=torch.float64)
    points = torch.stack([angles.cos(), angles.sin()], 1)
    gap = (angles[:, None] - angles[None, :]).abs()
    assert torch.allclose(geodesic(points), torch.minimum(gap, 2 * math.pi - gap), atol=1e-7)
    # any function of two batches
    manhattan = from_function(lambda a, b: torch.cdist(a, b, p=1))
    assert torch.allclose(manhattan(points), torch.cdist(points, points, p=1))


def test_metrics_refuse_what_is_not_in_their_space():
    with pytest.raises(InvalidValueError, match="positive definite"):
        log_euclidean(torch.diag_embed(torch.tensor([[1.0, -1.0]])))
    with pytest.raises(InvalidValueError, match="symmetric"):
        affine_invariant(torch.tensor([[[1.0, 2.0], [0.0, 1.0]]]))
    with pytest.raises(InvalidValueError, match="standard deviation"):
        wasserstein_gaussian(torch.tensor([[0.0, -1.0], [0.0, 1.0]]))


def test_distance_correlation_is_one_for_a_similarity_and_near_zero_for_independence():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(500, 2, generator=g, dtype=torch.float64)
    assert float(distance_correlation(x, 3 * x + 1)) == pytest.approx(1.0, abs=1e-12)
    assert float(distance_correlation(x, torch.randn(500, 2, generator=g, dtype=torch.float64))) < 0.12
    assert 0.3 < float(distance_correlation(x[:, :1], x[:, :1] ** 2)) < 1  # dependent but not linearly
