"""Running the deep-versus-shallow grid as Optuna studies: one study per dataset, its configurations queued.

Every configuration of the grid is queued once in the study of its dataset (see
:mod:`convforge.trials.queue`); workers take them one at a time and train them with
:func:`~convforge.experiments.deep_vs_shallow.trial.run_trial`. The grid's training
settings are stored with each study, so that a resumed study never mixes two settings.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from tqdm import tqdm

from convforge.errors import ConvforgeError
from convforge.experiments.deep_vs_shallow.grid import StudyGrid
from convforge.experiments.deep_vs_shallow.trial import run_trial, trial_recipe
from convforge.runs.run_dir import RunDir
from convforge.trials import WorkerSlot, enqueue_configurations, open_storage, work_through_queue
from convforge.trials.queue import CONFIG, KEY, requeue

STATUSES = ("done", "failed", "pending", "running")
SETTINGS = "training"  # the study attribute holding the grid's training settings


def study_name(grid: StudyGrid, dataset: str) -> str:
    """The Optuna study holding ``grid``'s trials on ``dataset``."""
    return f"deep-vs-shallow-{grid.name}-{dataset}"


@dataclass(frozen=True)
class GridWork:
    """What a worker needs to run trials of the studies (picklable, for worker processes)."""

    storage: str
    studies: tuple[str, ...]
    out: str
    data_root: str | None = None
    heartbeat_s: int = 10
    grace_s: int = 30
    poll_s: float = 2.0


def _objective(context: dict[str, Any], config: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    result = run_trial(config, context)
    return result["val_loss"], result


def grid_worker(work: GridWork, slot: WorkerSlot) -> None:
    """One worker: take and train queued configurations until none waits or runs."""
    import optuna

    storage = open_storage(work.storage, work.heartbeat_s, work.grace_s)
    studies = [optuna.load_study(study_name=name, storage=storage) for name in work.studies]
    context = {"out": work.out, "data_root": work.data_root}
    log = print if slot.log_file is not None else tqdm.write
    work_through_queue(studies, storage, partial(_objective, context), work.poll_s,
                       log=lambda text: log(f"[worker {slot.index}] {text}"))  # fmt: skip


EARLIER_TABLE = "convforge_trials"  # where convforge kept a study's trials before its studies moved to Optuna


def adopt_earlier_trials(grid: StudyGrid, datasets: tuple[str, ...], url: str, storage: Any) -> int:
    """Copy the finished trials of the grid from the trial table of an earlier convforge in the same database into
    the Optuna studies of their datasets, when those do not exist yet; returns how many were copied."""
    import json

    import optuna
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        if not sa.inspect(engine).has_table(EARLIER_TABLE):
            return 0
        with engine.connect() as connection:
            rows = connection.execute(sa.text(f"SELECT key, config, result FROM {EARLIER_TABLE} WHERE study = :s AND "
                                              "status = 'done' ORDER BY position"),
                                      {"s": f"deep-vs-shallow-{grid.name}"}).all()  # fmt: skip
    finally:
        engine.dispose()
    present, copied = set(optuna.get_all_study_names(storage)), 0
    for dataset in datasets:
        name = study_name(grid, dataset)
        mine = [r for r in rows if r.key.startswith(f"{dataset}-")]
        if name in present or not mine:
            continue
        study = optuna.create_study(study_name=name, storage=storage, direction="minimize")
        for row in mine:
            config, result = json.loads(row.config), json.loads(row.result)
            study.add_trial(optuna.trial.create_trial(
                state=optuna.trial.TrialState.COMPLETE, value=result["val_loss"], system_attrs={"fixed_params": config},
                user_attrs={KEY: row.key, CONFIG: config, "result": result}))  # fmt: skip
        first = json.loads(mine[0].config)
        study.set_user_attr(SETTINGS, {k: first.get(k) for k in grid.training()})  # the settings they trained with
        copied += len(mine)
    return copied


def open_grid_studies(grid: StudyGrid, datasets: tuple[str, ...], storage: Any, create: bool) -> list[Any]:
    """The studies of ``grid`` on ``datasets``; creating them checks that the stored training settings are the
    grid's own, naming any that changed."""
    import optuna

    studies = []
    for dataset in datasets:
        name = study_name(grid, dataset)
        if not create:
            studies.append(optuna.load_study(study_name=name, storage=storage))
            continue
        study = optuna.create_study(study_name=name, storage=storage, direction="minimize", load_if_exists=True)
        mine, stored = grid.training(), study.user_attrs.get(SETTINGS)
        if stored is None:
            study.set_user_attr(SETTINGS, mine)
        elif stored != mine:
            changed = sorted(k for k in set(stored) | set(mine) if stored.get(k) != mine.get(k))
            detail = ", ".join(f"{k}: {stored.get(k)!r} → {mine.get(k)!r}" for k in changed)
            raise ConvforgeError(f"study {name!r} already has trials trained with other settings ({detail}); use "
                                 "another output folder or database, or name the grid differently")  # fmt: skip
        studies.append(study)
    return studies


def key_statuses(studies: list[Any]) -> dict[str, str]:
    """Each configuration's status: done (a trial completed), running, pending (queued), or failed."""
    from optuna.trial import TrialState

    states: dict[str, set[TrialState]] = {}
    for study in studies:
        for trial in study.get_trials(deepcopy=False):
            if KEY in trial.user_attrs:
                states.setdefault(trial.user_attrs[KEY], set()).add(trial.state)
    order = ((TrialState.COMPLETE, "done"), (TrialState.RUNNING, "running"), (TrialState.WAITING, "pending"))
    return {key: next((status for state, status in order if state in seen), "failed") for key, seen in states.items()}


def status_counts(studies: list[Any]) -> dict[str, int]:
    """How many configurations are in each status."""
    counts = Counter(key_statuses(studies).values())
    return {status: counts.get(status, 0) for status in STATUSES}


def retry_failed(studies: list[Any], out: Path) -> list[str]:
    """Queue the failed configurations again, each starting over (its old run folder removed); their keys."""
    statuses = key_statuses(studies)
    retried = []
    for study in studies:
        configs = {t.user_attrs[KEY]: t.user_attrs[CONFIG] for t in study.get_trials(deepcopy=False)
                   if KEY in t.user_attrs}  # fmt: skip
        for key, config in configs.items():
            if statuses.get(key) == "failed":
                recipe = trial_recipe(config, out)
                shutil.rmtree(RunDir.path_for(recipe.project, recipe.task, recipe.name), ignore_errors=True)
                requeue(study, key, config)
                retried.append(key)
    return retried


def queue_grid(grid: StudyGrid, datasets: tuple[str, ...], storage: Any, out: Path, retry: bool) -> list[Any]:
    """Create the studies, queue every configuration they lack, and (with ``retry``) the failed ones again."""
    studies = open_grid_studies(grid, datasets, storage, create=True)
    for dataset, study in zip(datasets, studies):
        enqueue_configurations(study, grid.configurations((dataset,)))
    if retry:
        retry_failed(studies, out)
    return studies
