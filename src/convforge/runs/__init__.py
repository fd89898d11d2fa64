"""Run directories, checkpoints, and rebuilding a trained model from them.

Training (:mod:`convforge.engine`) writes runs; inference (each task's ``predict``),
evaluation, export and explanation read them back. Nothing here knows a particular task.
"""

from convforge.runs.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from convforge.runs.loading import TrainedModel, load_trained, resolve_checkpoint, trained_model
from convforge.runs.run_dir import RunDir

__all__ = ["Checkpoint", "RunDir", "TrainedModel", "load_checkpoint", "load_trained", "resolve_checkpoint",
           "save_checkpoint", "trained_model"]  # fmt: skip
