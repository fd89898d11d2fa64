"""A queue of known configurations in an Optuna study: a grid of trainings that workers take one at a time.

Each configuration is queued once with ``study.enqueue_trial(..., skip_if_exists=True)``;
its key and configuration ride along as user attributes. A worker takes a waiting trial
(marking it running is atomic in the storage), beats while it runs, and records the
objective's result, or the error that stopped it. When nothing waits but other
workers still run trials, it waits: one of them may die, and Optuna then queues that
trial again (see :mod:`convforge.trials.storage`). A queue never samples a new trial.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from convforge.errors import ConvforgeError

KEY, CONFIG, RESULT, ERROR = "key", "config", "result", "error"


def enqueue_configurations(study: Any, configs: dict[str, dict[str, Any]]) -> int:
    """Queue every configuration ``{key: config}`` the study has never seen; returns how many were new."""
    known = {t.user_attrs.get(KEY) for t in study.get_trials(deepcopy=False)}
    new = [(key, config) for key, config in configs.items() if key not in known]
    for key, config in new:  # Optuna's own duplicate check too, once the study holds trials (it reads them all)
        study.enqueue_trial(config, user_attrs={KEY: key, CONFIG: config}, skip_if_exists=bool(known))
    return len(new)


def requeue(study: Any, key: str, config: dict[str, Any]) -> None:
    """Queue a configuration again (after it failed), whatever the study already holds."""
    study.enqueue_trial(config, user_attrs={KEY: key, CONFIG: config})


def pop_waiting(study: Any, storage: Any) -> tuple[Any, int] | None:
    """Take the first waiting trial of ``study`` (kept in ``storage``) for this process: ``(optuna.Trial, its
    storage id)``, or None when nothing waits."""
    import optuna
    from optuna.trial import TrialState

    study_id = storage.get_study_id_from_name(study.study_name)
    for waiting in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, waiting.number)
        try:
            if storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                return optuna.Trial(study, trial_id), trial_id
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # finished by another process since it was listed
    return None


@contextlib.contextmanager
def _heartbeat(storage: Any, trial_id: int) -> Iterator[None]:
    """Record the trial's heartbeat every ``storage.heartbeat_interval`` seconds while the block runs."""
    stop = threading.Event()
    interval = storage.get_heartbeat_interval()

    def beat() -> None:
        while True:
            with contextlib.suppress(Exception):  # a missed beat only makes the trial look older
                storage.record_heartbeat(trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, daemon=True)
    if interval:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        if interval:
            thread.join()


Objective = Callable[[dict[str, Any]], tuple[float, dict[str, Any]]]


def run_trial(study: Any, storage: Any, taken: tuple[Any, int], objective: Objective,
              log: Callable[[str], None] = print) -> bool:  # fmt: skip
    """Run ``objective(config)`` for a trial taken by :func:`pop_waiting` and record its ``(value, result)``, or
    the error; True when it finished.

    An interrupt (Ctrl-C) fails the trial and queues it again, so the next run takes it up.
    """
    from optuna.trial import TrialState

    from convforge.trials.storage import retry_callback

    trial, trial_id = taken
    key, config = trial.user_attrs[KEY], trial.user_attrs[CONFIG]
    log(f"trial {key} (Optuna trial {trial.number}, process {os.getpid()})")
    try:
        with _heartbeat(storage, trial_id):
            value, result = objective(config)
    except Exception as err:  # noqa: BLE001 - whatever stops a trial fails it, as in Optuna's optimize; the worker goes on
        detail = str(err) if isinstance(err, ConvforgeError) else traceback.format_exc()
        log(f"trial {key} failed: {detail}")
        trial.set_user_attr(ERROR, f"{type(err).__name__}: {detail}"[-4000:])
        study.tell(trial, state=TrialState.FAIL)
        return False
    except BaseException:
        study.tell(trial, state=TrialState.FAIL)
        callback = retry_callback(storage)
        if callback is not None:
            callback(study, storage.get_trial(trial_id))
        raise
    trial.set_user_attr(RESULT, result)
    study.tell(trial, value)
    return True


def work_through_queue(studies: list[Any], storage: Any, objective: Objective, poll_s: float = 2.0,
                       log: Callable[[str], None] = print) -> int:  # fmt: skip
    """Take and run waiting trials of ``studies`` (in that order, all kept in ``storage``) until none waits or
    runs; returns how many this worker finished."""
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    finished = 0
    while True:
        taken = None
        for study in studies:
            fail_stale_trials(study)  # a dead worker's trial fails and its copy is queued
            popped = pop_waiting(study, storage)
            if popped is not None:
                taken = (study, popped)
                break
        if taken is None:
            if any(s.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) for s in studies):
                time.sleep(poll_s)  # others are running the rest; one of them may yet die
                continue
            return finished
        finished += run_trial(taken[0], storage, taken[1], objective, log)
