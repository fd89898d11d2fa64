"""One trial of the av-pyramid study: train on the semi-synthetic folder, select on validation, score test.

The run goes to ``<out>/trials/<task>/<key>``; a trial whose worker died resumes from its last checkpoint. The
best checkpoint (by the validation metric) is scored on the test split: the study never looks at test to choose.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from convforge.engine.trainer import evaluate, train
from convforge.errors import ConvforgeError
from convforge.runs.run_dir import RunDir

TASKS = {"ave": "av-event", "llp": "av-parse"}


def data_folder(out: str | Path, dataset: str, snr: float) -> Path:
    """Where the study keeps the semi-synthetic features of ``dataset`` at ``snr``."""
    return Path(out) / "data" / f"{dataset}-snr{snr:+g}"


def run_trial(config: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """Train one configuration; returns the best validation figures, the test figures of that checkpoint, the
    parameter count and seconds per epoch."""
    task = TASKS[config["dataset"]]
    project, name = str(Path(context["out"]) / "trials"), config["key"]
    folder = RunDir.path_for(project, task, name)
    common = dict(progress=False, data_root=None)
    if (folder / "checkpoints" / "last.safetensors").exists():
        result = train(config["model"], resume=folder, **common)
    else:
        shutil.rmtree(folder, ignore_errors=True)
        result = train(config["model"], str(data_folder(context["out"], config["dataset"], config["snr"])),
                       model_kwargs=dict(config["settings"]), task=task, epochs=config["epochs"], lr=config["lr"],
                       batch_size=config["batch_size"], seed=config["seed"], project=project, name=name,
                       **common)  # fmt: skip
    best = result.best()
    test = evaluate(result.run_dir, data="test", batch_size=64)
    if not test.get("count"):
        raise ConvforgeError(f"trial {name}: the test split is empty")
    return {
        "best_epoch": best["epoch"],
        **{k: v for k, v in best.items() if k.startswith("val_")},
        **{f"test_{k}": v for k, v in test.items() if k != "count"},
        "params": sum(p.numel() for p in result.model.parameters()),
        "epoch_time_s": sum(r["epoch_time_s"] for r in result.metrics) / len(result.metrics),
        "epochs_run": len(result.metrics),
        "run_dir": str(result.run_dir),
    }
