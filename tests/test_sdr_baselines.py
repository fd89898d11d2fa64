"""The SDR baselines written from their papers, each on a case with a known answer."""

import pytest
import torch

from convforge.errors import InvalidValueError
from convforge.sdr import distance_correlation, euclidean, geodesic
from convforge.sdr.kernel_baseline import gsir
from convforge.sdr.linear_baselines import save, sir, subspace_distance, wire


def _single_index(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g, dtype=torch.float64)
    beta = torch.zeros(10, 1, dtype=torch.float64)
    beta[0], beta[3] = 1.0, 1.0
    beta /= beta.norm()
    return x, beta, (x @ beta)[:, 0], g


def test_sir_recovers_a_single_index():
    x, beta, index, g = _single_index(2000)
    y = index + 0.5 * index**3 + 0.2 * torch.randn(2000, generator=g, dtype=torch.float64)
    assert subspace_distance(sir(x, y, 1).basis, beta) < 0.1


def test_save_recovers_a_symmetric_index_that_sir_cannot():
    x, beta, index, g = _single_index(4000, seed=1)
    y = index**2 + 0.2 * torch.randn(4000, generator=g, dtype=torch.float64)
    assert subspace_distance(save(x, y, 1).basis, beta) < 0.1
    assert subspace_distance(sir(x, y, 1).basis, beta) > 0.5  # the slice means carry nothing here


def test_wire_recovers_the_index_of_a_response_on_the_circle_from_its_distances_alone():
    x, beta, index, g = _single_index(2000, seed=2)
    angle = 0.8 * index + 0.1 * torch.randn(2000, generator=g, dtype=torch.float64)
    points = torch.stack([angle.cos(), angle.sin()], 1)
    assert subspace_distance(wire(x, geodesic(points), 1).basis, beta) < 0.1


def test_gsir_finds_a_nonlinear_predictor_of_the_index():
    x, beta, index, g = _single_index(600, seed=3)
    y = torch.sin(index) + 0.1 * torch.randn(600, generator=g, dtype=torch.float64)
    fitted = gsir(x[:400], euclidean(y[:400]), 1)
    assert float(distance_correlation(fitted.transform(x[400:]), y[400:, None])) > 0.9
    assert float(distance_correlation(x[400:], y[400:, None])) < 0.6  # the raw predictors do much worse


def test_the_subspace_distance_is_zero_for_the_same_span_and_sqrt_2d_for_orthogonal_ones():
    a = torch.eye(4, dtype=torch.float64)[:, :2]
    assert subspace_distance(a, a @ torch.tensor([[2.0, 1.0], [0.0, 3.0]], dtype=torch.float64)) < 1e-12
    assert subspace_distance(a, torch.eye(4, dtype=torch.float64)[:, 2:]) == pytest.approx(2.0)


def test_bad_inputs_are_refused_by_name():
    x = torch.randn(50, 3, dtype=torch.float64)
    with pytest.raises(InvalidValueError, match="scalar response"):
        sir(x, torch.randn(50, 2, dtype=torch.float64), 1)
    with pytest.raises(InvalidValueError, match="singular"):
        sir(torch.cat([x, x[:, :1]], 1), torch.randn(50, dtype=torch.float64), 1)
    with pytest.raises(InvalidValueError, match="d from 1 to p"):
        wire(x, euclidean(x), 4)
