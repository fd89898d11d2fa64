"""``convforge eval --report``: what a trained model gets wrong, class by class, with its pictures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from convforge.engine.device_choice import resolve_device
from convforge.engine.recipe import Recipe
from convforge.engine.trainer import eval_recipe
from convforge.errors import ConvforgeError
from convforge.output_files import check_output_files, fresh_folder
from convforge.runs.loading import load_trained
from convforge.tasks import get_task

REPORT_FILES = ("confusion_matrix.png", "per_class.csv", "pr_curve.png", "predictions.jpg")  # any task's


@dataclass
class ValidationReport:
    """The per-class table and the files written (the confusion matrix, per-class CSV)."""

    table: str
    folder: Path
    files: list[Path] = field(default_factory=list)


def validation_report(run: str | Path, data: str | None = None, *, data_root: str | None = None,
                      batch_size: int = 256, device: str | None = None, out: str | Path | None = None,
                      val_subset: int = 0, overwrite: bool = False) -> ValidationReport:  # fmt: skip
    """Score a run's best model on the test split of ``data`` (default: the data it validated on) class by class;
    the pictures go to ``out`` (default: a fresh ``<run>/val`` folder, ``val-2``, ...), where files already there
    are replaced only with ``overwrite``."""
    trained = load_trained(run)
    task = get_task(trained.task)
    if not hasattr(task, "validation_report"):
        raise ConvforgeError(f"the {trained.task} task has no per-class report yet; classification and detection "
                             "runs have one")  # fmt: skip
    values = Recipe.stored_values(trained.config["recipe"])
    recipe = eval_recipe(values, batch_size, data_root or values.get("data_root"), val_subset)
    batches = task.build_eval_data(recipe, data)
    target = resolve_device(device) if device is not None else resolve_device("cpu")
    model = trained.model.to(target).eval()
    folder = Path(out) if out is not None else fresh_folder(trained.run_dir / "val")
    check_output_files(folder, REPORT_FILES, overwrite=overwrite or out is None)
    title = f"{trained.config.get('model') or 'model'} on {data or recipe.data}"
    table, files = task.validation_report(model, batches, target, trained.config, folder, Path(title).name)
    return ValidationReport(table, folder, files)
