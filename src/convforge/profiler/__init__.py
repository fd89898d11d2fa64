"""Measure a model: parameters, MACs/FLOPs under named conventions, activation memory, latency."""

from convforge.profiler.latency import LatencyResult, measure_latency
from convforge.profiler.op_costs import CATEGORIES, CONVENTIONS, OpCost
from convforge.profiler.plot import plot_profile
from convforge.profiler.profile_model import count_macs, profile
from convforge.profiler.result import ModuleRow, ProfileResult

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
