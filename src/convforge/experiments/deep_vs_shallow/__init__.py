"""The deep-versus-shallow study: residual stacks against their first-order parallel expansion.

``run_study`` trains ``residual_stack_net`` in both layouts over a grid, records every
trial in a :class:`~convforge.experiments.trial_store.TrialStore` (SQLite in the output
folder by default), and writes the report. Interrupt it at any moment and run it again:
finished trials are kept, unfinished ones run. To spread one study over many machines,
give every machine the same ``storage`` URL (PostgreSQL) and start the study on each;
or use ``executor="ray"``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convforge.data.catalog import NAMES
from convforge.errors import InvalidValueError
from convforge.experiments.deep_vs_shallow.grid import GRIDS, StudyGrid, load_grid, trial_key
from convforge.experiments.deep_vs_shallow.report import q_table, trial_rows, write_report
from convforge.experiments.deep_vs_shallow.trial import model_settings, run_trial, trial_recipe
from convforge.experiments.sweep import run_sweep
from convforge.experiments.trial_store import TrialStore
from convforge.registry import create_model

TRIAL_FUNCTION = "convforge.experiments.deep_vs_shallow.trial:run_trial"


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


def study_name(grid: StudyGrid) -> str:
    return f"deep-vs-shallow-{grid.name}"


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
        except Exception as err:
            raise InvalidValueError(f"grid {grid.name!r}, trial {key}: {err}") from None
        checked.update((model, recipe))


def run_study(
    grid: str | Path | StudyGrid = "small",
    data: str | list[str] | tuple[str, ...] | None = None,
    workers: int = 2,
    out: str | Path | None = None,
    storage: str | None = None,
    executor: str = "local",
    data_root: str | None = None,
    progress: bool = True,
    retry_failed: bool = False,
    report_only: bool = False,
    stale_after_s: float = 120.0,
    command: str = "",
) -> StudyResult:
    """Run (or resume) the study and write its report; see the module documentation.

    ``data`` is a list or comma-separated names (default: the grid's datasets). ``out``
    holds the store (unless ``storage`` names a database), the trials' run folders,
    worker logs and ``report/``. ``report_only`` only rewrites the report from the store.
    """
    spec = grid if isinstance(grid, StudyGrid) else load_grid(grid)
    if isinstance(data, str):
        data = tuple(d.strip() for d in data.split(",") if d.strip())
    datasets = tuple(data) if data else spec.data
    out = Path(out) if out is not None else Path("runs") / "studies" / study_name(spec)
    storage = storage or str(out / "trials.db")
    store = TrialStore(storage, stale_after_s=stale_after_s)
    name = study_name(spec)
    scope = tuple(f"{d}-" for d in datasets)  # trial keys start with their dataset
    if not report_only:
        validate_grid(spec, datasets)
        store.add(name, spec.configurations(datasets))
        if retry_failed:
            for key in store.retry_failed(name, scope):  # a retried trial starts over, not from its failed run
                shutil.rmtree(out / "trials" / "classify" / key, ignore_errors=True)
        context = {"out": str(out.resolve()), "data_root": data_root, "stale_after_s": stale_after_s, "scope": scope}
        run_sweep(storage, name, TRIAL_FUNCTION, context, workers, executor, progress, log_dir=out / "logs")
    rows = [r for r in trial_rows(store.trials(name)) if r["key"].startswith(scope)]
    report = write_report(rows, out / "report", f"Deep versus shallow: grid {spec.name}", command) if rows else ""
    return StudyResult(out, rows, store.counts(name, scope), report)


__all__ = [
    "GRIDS",
    "StudyGrid",
    "StudyResult",
    "TrialStore",
    "load_grid",
    "run_study",
    "run_trial",
    "trial_key",
]
