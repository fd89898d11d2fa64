"""Many trials, one system: Optuna storages, queues of configurations, and local worker processes.

Architecture search (:mod:`convforge.nas`) samples its trials; grids such as the
deep-versus-shallow study (:mod:`convforge.experiments.deep_vs_shallow`) queue theirs.
Both keep them in an Optuna storage (SQLite by default, any database URL across
machines), where a dead worker's trial is found by its stopped heartbeat and queued
again, and both start local workers with :func:`run_workers`.
"""

from convforge.trials.queue import enqueue_configurations, pop_waiting, work_through_queue
from convforge.trials.storage import open_storage, storage_url, study_names
from convforge.trials.workers import Progress, WorkerSlot, run_workers

__all__ = [
    "Progress",
    "WorkerSlot",
    "enqueue_configurations",
    "open_storage",
    "pop_waiting",
    "run_workers",
    "storage_url",
    "study_names",
    "work_through_queue",
]
