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
        # beat first: a running trial without a heartbeat is never judged stale, so a worker that died between
        # taking it and its first beat would leave it running for ever
        storage.record_heartbeat(trial_id)
        try:
            if storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                return optuna.Trial(study, trial_id), trial_id
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # finished by another process since it was listed
    return None


def _started_earlier(other: Any, trial: Any) -> bool:
    return (other.datetime_start, other.number) < (trial.datetime_start, trial.number)


def duplicate_of(study: Any, number: int) -> int | None:
    """The number of another trial of the same configuration that finished, or that runs and started first;
    None when trial ``number`` is the one to run (two machines that queue a grid at the same moment can queue a
    configuration twice)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    mine = trials[number]
    for other in trials:
        if other.number == number or other.user_attrs.get(KEY) != mine.user_attrs.get(KEY):
            continue
        if other.state == TrialState.COMPLETE or (other.state == TrialState.RUNNING and _started_earlier(other, mine)):
            return other.number
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
    other = duplicate_of(study, trial.number)
    if other is not None:
        log(f"trial {key} (Optuna trial {trial.number}) is already run by Optuna trial {other}; skipped")
        _record(study, trial, {"duplicate_of": other}, state=TrialState.PRUNED)
        return False
    log(f"trial {key} (Optuna trial {trial.number}, process {os.getpid()})")
    try:
        with _heartbeat(storage, trial_id):
            value, result = objective(config)
    except Exception as err:  # noqa: BLE001 - whatever stops a trial fails it, as in Optuna's optimize; the worker goes on
        detail = str(err) if isinstance(err, ConvforgeError) else traceback.format_exc()
        log(f"trial {key} failed: {detail}")
        _record(study, trial, {ERROR: f"{type(err).__name__}: {detail}"[-4000:]}, state=TrialState.FAIL)
        return False
    except BaseException:
        if _record(study, trial, {}, state=TrialState.FAIL):
            callback = retry_callback(storage)
            if callback is not None:
                callback(study, storage.get_trial(trial_id))
        raise
    if not _record(study, trial, {RESULT: result}, value=value):
        log(f"trial {key} finished after it was judged dead and queued again (is --grace long enough?); its "
            "copy's result counts")  # fmt: skip
        return False
    return True


def _record(study: Any, trial: Any, attrs: dict[str, Any], state: Any = None, value: float | None = None) -> bool:
    """Store ``attrs`` and finish the trial; False when it was already finished (failed as stale by another
    worker, whose copy of it is queued or running)."""
    import optuna

    try:
        for name, attr in attrs.items():
            trial.set_user_attr(name, attr)
        if state is None:
            study.tell(trial, value)
        else:
            study.tell(trial, state=state)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
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
