"""Measure a model: parameters, MACs/FLOPs under named conventions, activation memory, latency."""

from convforge.profile.latency import LatencyResult, measure_latency
from convforge.profile.op_costs import CATEGORIES, CONVENTIONS, OpCost
from convforge.profile.plot import plot_profile
from convforge.profile.profiler import count_macs, profile
from convforge.profile.result import ModuleRow, ProfileResult

__all__ = [
    "CATEGORIES",
    "CONVENTIONS",
    "LatencyResult",
    "ModuleRow",
    "OpCost",
    "ProfileResult",
    "count_macs",
    "measure_latency",
    "plot_profile",
    "profile",
]
