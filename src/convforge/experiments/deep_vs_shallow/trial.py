"""One trial of the study: train residual_stack_net in one layout and measure it.

Training runs through :func:`convforge.train` with plain settings (no augmentation, no
weight decay, so that over-fitting shows), into the run folder ``<key>`` under ``<out>/trials``. A
trial whose worker died part-way resumes from that folder's last checkpoint. The
training loss reported is measured after training, in evaluation mode, on the same
training examples; the validation loss on the test split.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from convforge.data.catalog import load_dataset
from convforge.data.tensor_loader import TensorLoader
from convforge.engine.recipe import Recipe
from convforge.engine.trainer import train
from convforge.errors import ConvforgeError
from convforge.experiments.deep_vs_shallow.grid import trial_key
from convforge.runs.run_dir import RunDir
from convforge.tasks import get_task

MODEL = "residual_stack_net"


def trial_recipe(config: dict[str, Any], out: str | Path, data_root: str | None = None) -> Recipe:
    """The training recipe of one trial."""
    return Recipe.from_sources(
        None,
        data=config["data"],
        data_root=data_root,
        train_subset=config["train_subset"],
        val_subset=config["val_subset"],
        crop_padding=0,
        flip=False,
        epochs=config["epochs"],
        batch_size=config["batch_size"],
        opt=config["opt"],
        lr=config["lr"],
        weight_decay=config["weight_decay"],
        sched=config.get("sched", "cosine"),
        patience=config.get("patience", 0),
        patience_on=config.get("patience_on", "train_loss"),
        seed=config["seed"],
        project=str(Path(out) / "trials"),
        name=trial_key(config),
    )


def model_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The residual_stack_net keyword arguments of one trial."""
    keys = ("width", "depth", "kernel", "act", "layout", "branch_scale")
    return {k: config[k] for k in keys}


def _trained_as(folder: Path, recipe: Recipe, settings: dict[str, Any]) -> bool:
    """Whether the run in ``folder`` was started with this recipe and these model settings (a study of another
    grid with the same output folder may have left it), so that resuming it finishes this trial."""
    try:
        config = RunDir.open(folder).read_config()
    except ConvforgeError:
        return False
    stored, mine = Recipe.stored_values(config["recipe"]), recipe.to_dict()
    same_recipe = all(stored.get(k) == v for k, v in mine.items() if k not in ("project", "name", "data_root"))
    kwargs = config.get("model_kwargs") or {}
    return same_recipe and all(kwargs.get(k) == v for k, v in settings.items())


def run_trial(config: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """Train one configuration; returns losses, accuracies (%), parameters, Q and seconds per epoch."""
    recipe = trial_recipe(config, context["out"], context.get("data_root"))
    folder = RunDir.path_for(recipe.project, recipe.task, recipe.name)
    if (folder / "checkpoints" / "last.safetensors").exists() and _trained_as(folder, recipe, model_settings(config)):
        result = train(MODEL, resume=folder, progress=False, data_root=recipe.data_root)
    else:  # a trial that died before its first epoch, or a folder left by other settings, starts over
        shutil.rmtree(folder, ignore_errors=True)
        result = train(MODEL, recipe=recipe, model_kwargs=model_settings(config), progress=False)
    model = result.model.eval()
    task = get_task(recipe.task)
    examples = load_dataset(recipe.data, "train", root=recipe.data_root)
    if recipe.train_subset:
        examples = examples.subset(recipe.train_subset, seed=recipe.seed)
    device = next(model.parameters()).device
    train_scores = task.summarise(task.evaluate(model, TensorLoader(examples, 512, train=False), device))
    params = sum(p.numel() for p in model.parameters())
    last = result.last
    return {
        "params": params,
        "q": len(examples) * examples.num_classes / params,
        "train_examples": len(examples),
        "train_loss": train_scores["loss"],
        "train_top1": train_scores["top1"],
        "val_loss": last["val_loss"],
        "val_top1": last["val_top1"],
        "train_loss_running": last["train_loss"],
        "epoch_time_s": sum(r["epoch_time_s"] for r in result.metrics) / len(result.metrics),
        "epochs": len(result.metrics),
        "run_dir": str(result.run_dir),
    }
