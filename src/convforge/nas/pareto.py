"""Pareto fronts and hypervolume for two objectives: accuracy (higher is better) against a cost (lower is better)."""

from __future__ import annotations

from collections.abc import Sequence


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats: (accuracy, cost) with no other point at least as accurate and at
    most as costly, and strictly better in one. Sorted by cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][1], -points[i][0]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][0] > best:
            front.append(i)
            best = points[i][0]
    return front


def hypervolume(points: Sequence[tuple[float, float]], reference: tuple[float, float]) -> float:
    """The area dominated by ``points`` (accuracy, cost) and bounded by ``reference`` (lowest accuracy, highest cost).

    Points beyond the reference add nothing. With accuracy in [0, 1] and cost divided by
    a budget, the result lies in [0, 1].
    """
    floor, ceiling = reference
    inside = [(a, c) for a, c in points if a > floor and c < ceiling]
    area, below = 0.0, floor
    for index in pareto_front(inside):  # by cost, accuracy rising
        accuracy, cost = inside[index]
        area += (accuracy - below) * (ceiling - cost)
        below = accuracy
    return area
