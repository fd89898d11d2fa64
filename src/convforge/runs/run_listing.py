"""The runs under a project folder, each with what a person looks for first: model, data, epochs, best score."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convforge.errors import ConvforgeError
from convforge.runs.run_dir import RunDir


@dataclass
class RunSummary:
    """One run directory as ``convforge runs`` lists it."""

    path: Path
    task: str
    model: str
    data: str
    epochs_done: int
    epochs: int
    best_metric: str | None  # e.g. ``val_top1``
    best_value: float | None
    best_epoch: int | None
    modified: float  # seconds since the epoch, of the last checkpoint (or the config)


def _last_record(run: RunDir) -> dict[str, Any]:
    """The last checkpoint's JSON sidecar, or an empty record if there is none or it is damaged."""
    try:
        record = json.loads((run.checkpoints / "last.json").read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def summarise_run(path: Path) -> RunSummary:
    """The summary of the run directory ``path`` (one that holds a config.yaml)."""
    run = RunDir.open(path)
    config = run.read_config()
    recipe = config["recipe"]
    record = _last_record(run)
    best = record.get("best") if isinstance(record.get("best"), dict) else {}
    metric = next((k for k in best if k.startswith("val_")), None)
    last = run.checkpoints / "last.json"
    model = str(config.get("model") or "(a module)")
    return RunSummary(
        path=run.path,
        task=str(recipe.get("task", "?")),
        model=Path(model).name if model.endswith((".yaml", ".yml")) else model,
        data=str(recipe.get("data", "?")),
        epochs_done=int(record.get("epoch", 0) or 0),
        epochs=int(recipe.get("epochs", 0) or 0),
        best_metric=metric,
        best_value=float(best[metric]) if metric else None,
        best_epoch=int(best["epoch"]) if metric and "epoch" in best else None,
        modified=(last if last.is_file() else run.path / "config.yaml").stat().st_mtime,
    )


def list_runs(project: str | Path = "runs", pattern: str = "*") -> list[RunSummary]:
    """Every run under ``project`` (``<project>/<task>/<name>``) whose name or ``task/name`` matches ``pattern``,
    oldest first, so that the latest is last."""
    root = Path(project)
    if not root.is_dir():
        raise ConvforgeError(f"the project folder {root} does not exist; runs are written to --project (default "
                             "./runs)")  # fmt: skip
    found = []
    for config in sorted(root.glob("*/*/config.yaml")):
        path = config.parent
        label = f"{path.parent.name}/{path.name}"
        if fnmatch.fnmatch(path.name, pattern) or fnmatch.fnmatch(label, pattern):
            try:
                found.append(summarise_run(path))
            except (ConvforgeError, OSError, ValueError, TypeError):  # a damaged run is left out, not fatal
                continue
    return sorted(found, key=lambda summary: summary.modified)
