"""The deep-versus-shallow study: residual stacks against their first-order parallel expansion.

``run_study`` trains ``residual_stack_net`` in both layouts over a grid. Each dataset's
configurations are queued in an Optuna study (SQLite in the output folder by default,
or any database URL), worked through by local worker processes, and the report is
written from the finished trials. Interrupt it at any moment and run it again: finished
trials are kept, a dead worker's trial is queued again once its heartbeat has been
silent for ``grace_s`` seconds, and unfinished ones run. To spread one study over many
machines, start it on one machine, then run the same command with the same
``storage`` URL (PostgreSQL, MySQL) on the others: their workers join the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from convforge.data.catalog import NAMES
from convforge.errors import ConvforgeError, InvalidValueError
from convforge.experiments.deep_vs_shallow.grid import GRIDS, StudyGrid, load_grid, trial_key
from convforge.experiments.deep_vs_shallow.report import q_table, trial_rows, write_report
from convforge.experiments.deep_vs_shallow.study import (
    GridWork,
    adopt_earlier_trials,
    grid_worker,
    open_grid_studies,
    queue_grid,
    status_counts,
    study_name,
)
from convforge.experiments.deep_vs_shallow.trial import model_settings, run_trial, trial_recipe
from convforge.models import create_model
from convforge.trials import Progress, open_storage, run_workers, storage_url, study_names


@dataclass
class StudyResult:
    """A study's folder, its finished trials as rows, the status counts and the report's text."""

    out: Path
    rows: list[dict[str, Any]]
    counts: dict[str, int]
    report: str

    @property
    def table(self) -> str:
        return q_table(self.rows)


def _finished_and_busy(studies: list[Any]) -> tuple[int, dict[str, int]]:
    """Configurations finished (done or failed), and how many run and failed, for the progress bar."""
    counts = status_counts(studies)
    return counts["done"] + counts["failed"], {"running": counts["running"], "failed": counts["failed"]}


def validate_grid(grid: StudyGrid, data: tuple[str, ...]) -> None:
    """Reject a bad grid before any training: build each distinct network once and check each recipe."""
    unknown = [d for d in data if d.lower() not in NAMES]
    if unknown:
        raise InvalidValueError(f"dataset(s) {', '.join(map(repr, unknown))} are not known; use {', '.join(NAMES)}")
    checked: set[str] = set()
    for key, config in grid.configurations(data).items():
        model = repr(sorted(model_settings(config).items()))
        recipe = repr((config["data"], config["lr"], config["seed"]))
        if model in checked and recipe in checked:
            continue
        try:
            if model not in checked:
                create_model("residual_stack_net", **model_settings(config))
            trial_recipe(config, ".")
        except ConvforgeError as err:
            raise InvalidValueError(f"grid {grid.name!r}, trial {key}: {err}") from err
        checked.update((model, recipe))


def run_study(
    grid: str | Path | StudyGrid = "small",
    data: str | list[str] | tuple[str, ...] | None = None,
    workers: int = 2,
    out: str | Path | None = None,
    storage: str | None = None,
    data_root: str | None = None,
    progress: bool = True,
    retry_failed: bool = False,
    report_only: bool = False,
    heartbeat_s: int = 10,
    grace_s: int = 30,
    command: str = "",
) -> StudyResult:
    """Run (or resume) the study and write its report; see the module documentation.

    ``data`` is a list or comma-separated names (default: the grid's datasets). ``out``
    holds the storage (unless ``storage`` names a database), the trials' run folders,
    worker logs and ``report/``. ``workers=1`` trains in this process. ``report_only``
    only rewrites the report from the storage.
    """
    spec = grid if isinstance(grid, StudyGrid) else load_grid(grid)
    if isinstance(data, str):
        data = tuple(d.strip() for d in data.split(",") if d.strip())
    datasets = tuple(data) if data else spec.data
    out = Path(out) if out is not None else Path("runs") / "studies" / f"deep-vs-shallow-{spec.name}"
    url = storage_url(storage or out / "trials.db")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidValueError(f"workers = {workers!r} is not allowed; use a positive integer (1 trains in this "
                                "process)")  # fmt: skip
    opened = open_storage(url, heartbeat_s, grace_s)
    copied = adopt_earlier_trials(spec, datasets, url, opened)
    if copied and progress:
        print(f"{copied} finished trial(s) of an earlier convforge's trial table copied into the Optuna studies")
    if report_only:
        present = set(study_names(opened))
        datasets = tuple(d for d in datasets if study_name(spec, d) in present)
        studies = open_grid_studies(spec, datasets, opened, create=False)
    else:
        validate_grid(spec, datasets)
        studies = queue_grid(spec, datasets, opened, out, retry_failed)
        shown = Progress(f"deep-vs-shallow {spec.name}", sum(status_counts(studies).values()),
                         partial(_finished_and_busy, studies))  # fmt: skip
        work = GridWork(url, tuple(study_name(spec, d) for d in datasets), str(out.resolve()), data_root,
                        heartbeat_s, grace_s)  # fmt: skip
        run_workers(grid_worker, (work,), workers, shown, progress, log_dir=out / "logs")
    rows = trial_rows(t for study in studies for t in study.get_trials(deepcopy=False))
    report = write_report(rows, out / "report", f"Deep versus shallow: grid {spec.name}", command) if rows else ""
    return StudyResult(out, rows, status_counts(studies), report)


__all__ = [
    "GRIDS",
    "StudyGrid",
    "StudyResult",
    "load_grid",
    "run_study",
    "run_trial",
    "study_name",
    "trial_key",
]
