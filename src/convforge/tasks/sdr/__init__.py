"""Sufficient dimension reduction (FCCov-Net and the distance-covariance baseline) on the engine."""

from convforge.tasks.sdr.task import SdrSettings, SdrTask

__all__ = ["SdrSettings", "SdrTask"]
