"""A study whose trials are known in advance: one Optuna study, every configuration queued once, worked through
by local worker processes, resumable, and refused when it was started with other settings.

Used by the av-pyramid and fccov studies: each gives its configurations ``{key: config}``, a module-level
``run_one(config, out) -> result`` and the settings a resumed study must share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from convforge.errors import ConvforgeError, InvalidValueError
from convforge.trials import Progress, enqueue_configurations, open_storage, run_workers, storage_url
from convforge.trials.queue import work_through_queue

SETTINGS = "training"  # the study attribute holding the settings it was started with
RunOne = Callable[[dict[str, Any], str], dict[str, Any]]


@dataclass(frozen=True)
class QueuedWork:
    """What a worker process needs (picklable): the storage, the study, the output folder and the trial function."""

    storage: str
    study: str
    out: str
    run_one: RunOne
    score: tuple[str, ...]  # the result's keys, first present first, reported to Optuna as the trial's value


def _objective(work: QueuedWork, config: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    result = work.run_one(config, work.out)
    return float(next((result[k] for k in work.score if k in result), 0.0)), result


def queued_worker(work: QueuedWork, slot: Any) -> None:
    """One worker: run queued trials until none waits or runs."""
    import optuna

    storage = open_storage(work.storage)
    study = optuna.load_study(study_name=work.study, storage=storage)
    work_through_queue([study], storage, partial(_objective, work),
                       log=lambda text: print(f"[worker {slot.index}] {text}", flush=True))  # fmt: skip


def open_queued_study(name: str, url: str, settings: dict[str, Any]) -> Any:
    """The study ``name`` in ``url``; a study started with other ``settings`` is refused, naming them."""
    import optuna

    study = optuna.create_study(study_name=name, storage=open_storage(url), direction="maximize",
                                load_if_exists=True)  # fmt: skip
    stored = study.user_attrs.get(SETTINGS)
    if stored is None:
        study.set_user_attr(SETTINGS, settings)
    elif stored != settings:
        changed = sorted(k for k in set(stored) | set(settings) if stored.get(k) != settings.get(k))
        raise ConvforgeError(f"the study in {url} was started with other settings ({', '.join(changed)}); use "
                             "another --out or --storage")  # fmt: skip
    return study


def run_queued(name: str, configs: dict[str, dict[str, Any]], run_one: RunOne, score: tuple[str, ...], out: Path,
               settings: dict[str, Any], storage: str | None = None, workers: int = 2, progress: bool = True,
               report_only: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """Queue ``configs`` (unless ``report_only``), run them in ``workers`` processes, and return the finished
    trials as rows (configuration and result), one per key."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidValueError(f"workers = {workers!r} is not allowed; use a positive integer (1 runs here)")
    url = storage_url(storage or out / "trials.db")
    study = open_queued_study(name, url, settings)
    if not report_only:
        enqueue_configurations(study, configs)

        def finished() -> tuple[int, dict[str, Any]]:
            states = [t.state.name for t in study.get_trials(deepcopy=False)]
            return states.count("COMPLETE") + states.count("FAIL"), {"running": states.count("RUNNING")}

        work = QueuedWork(url, name, str(out.resolve()), run_one, score)
        run_workers(queued_worker, (work,), workers, Progress(name, len(configs), finished), progress,
                    log_dir=out / "logs")  # fmt: skip
    rows: dict[str, dict[str, Any]] = {}
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        if trial.state.name == "COMPLETE" and "result" in attrs and attrs["key"] not in rows:
            rows[attrs["key"]] = {**attrs["config"], **attrs["result"]}
    return list(rows.values())
