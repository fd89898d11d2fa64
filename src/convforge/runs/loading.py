"""Rebuild a trained model from a run directory or a checkpoint file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from convforge.errors import ConvforgeError
from convforge.model_origin import Origin, origin_of, set_origin
from convforge.models import rebuild
from convforge.runs.checkpoint import load_checkpoint
from convforge.runs.recorded_model import check_run_record, recorded_origin
from convforge.runs.structure import apply_structure
from convforge.runs.weights import load_weights


@dataclass
class TrainedModel:
    """A model with its trained weights, and what its run recorded."""

    model: nn.Module
    config: dict[str, Any]  # recipe, classes, normalisation, ...
    checkpoint: Path

    @property
    def task(self) -> str:
        """The task the model was trained for (``classify``, ``detect``, ``sr``, ...)."""
        recipe = self.config.get("recipe")
        if not isinstance(recipe, dict) or not isinstance(recipe.get("task"), str):
            raise ConvforgeError(f"{self.checkpoint} does not record the task its model was trained for")
        return recipe["task"]

    @property
    def run_dir(self) -> Path:
        """The run directory holding the checkpoint."""
        return self.checkpoint.parent.parent


def resolve_checkpoint(path: str | Path, which: str = "best") -> Path:
    """A checkpoint file from a file path or a run directory (its ``which`` checkpoint, else ``last``)."""
    path = Path(path)
    if path.is_dir():
        for name in (which, "last"):
            candidate = path / "checkpoints" / f"{name}.safetensors"
            if candidate.is_file():
                return candidate
        raise ConvforgeError(f"{path} has no checkpoints/{which}.safetensors or last.safetensors")
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    if not path.is_file():
        raise ConvforgeError(f"no checkpoint or run directory at {path}")
    return path


def has_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a checkpoint file or a run directory holding one, of a registered model."""
    try:
        return bool(load_checkpoint(resolve_checkpoint(path), tensors=False).meta.get("model"))
    except ConvforgeError:
        return False


def trained_model(source: str | Path | TrainedModel, task: str | None = None) -> TrainedModel:
    """``source`` itself when it is already loaded, else the trained model of that run or checkpoint; with ``task``,
    a model of another task is refused."""
    trained = source if isinstance(source, TrainedModel) else load_trained(source)
    if task is not None and trained.task != task:
        raise ConvforgeError(f"{trained.checkpoint} is a {trained.task} model, not a {task} model (convforge train "
                             f"... --task {task} makes one)")  # fmt: skip
    return trained


def build_model(origin: Origin, source: str = "the run") -> nn.Module:
    """The model ``origin`` records (a registered name and its settings, or a spec it holds), given the pruned
    structure it records."""
    model = rebuild(origin)  # its origin holds the spec it was built from, where it was one
    if origin.structure:
        apply_structure(model, origin.structure, source)
    return set_origin(model, origin_of(model).with_structure(origin.structure))


def load_trained(path: str | Path, use_ema: bool = True, which: str = "best") -> TrainedModel:
    """Build the registered model a checkpoint was trained from and load its weights (EMA ones if present)."""
    file = resolve_checkpoint(path, which)
    ckpt = load_checkpoint(file)
    name = ckpt.meta.get("model")
    if not name:
        raise ConvforgeError(f"{file} was trained from a module, not a registered name; build the module and load "
                             "its weights with convforge.runs.checkpoint.load_checkpoint")  # fmt: skip
    origin = recorded_origin(ckpt.meta, str(file))
    check_run_record(ckpt.meta, str(file))
    model = build_model(origin.with_structure(ckpt.meta.get("structure") or {}), str(file))
    weights = ckpt.tensors["ema"] if use_ema and ckpt.tensors["ema"] else ckpt.tensors["model"]
    load_weights(model, weights, str(file), f"{name} {origin.model_kwargs}")
    return TrainedModel(model.eval(), ckpt.meta, file)
