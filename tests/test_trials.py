"""One trial system for grids and searches: queued configurations in Optuna, taken exactly once, retried when a
worker dies, and local workers that share a storage."""

from __future__ import annotations

import os

import optuna
import pytest
from optuna.trial import TrialState

from convforge.errors import ConvforgeError, InvalidValueError
from convforge.trials import (
    Progress,
    WorkerSlot,
    enqueue_configurations,
    open_storage,
    pop_waiting,
    run_workers,
    work_through_queue,
)
from convforge.trials.queue import run_trial


def new_study(url: str, name: str = "s"):
    storage = open_storage(url, heartbeat_s=1, grace_s=2)
    return optuna.create_study(study_name=name, storage=storage, load_if_exists=True), storage


def counting_worker(url: str, slot: WorkerSlot) -> None:
    """A worker whose objective records which process ran which configuration (module level: spawnable)."""
    import os

    import torch

    storage = open_storage(url, heartbeat_s=1, grace_s=2)
    study = optuna.load_study(study_name="s", storage=storage)
    result = {"pid": os.getpid(), "threads": torch.get_num_threads()}
    work_through_queue([study], storage, lambda config: (float(config["i"]), result), poll_s=0.1,
                       log=lambda text: None)  # fmt: skip


def opening_worker(url: str, slot: WorkerSlot) -> None:
    """A worker that only opens the storage (module level: spawnable)."""
    open_storage(url)


def completed_keys(study) -> list[str]:
    return [t.user_attrs["key"] for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]


def test_configurations_are_queued_once_however_often_they_are_added(tmp_path):
    study, _ = new_study(f"sqlite:///{tmp_path / 't.db'}")
    assert enqueue_configurations(study, {"a": {"x": 1}, "b": {"x": 2}}) == 2
    assert enqueue_configurations(study, {"a": {"x": 1}, "b": {"x": 2}, "c": {"x": 3}}) == 1
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert [t.user_attrs["key"] for t in waiting] == ["a", "b", "c"]
    assert waiting[2].user_attrs["config"] == {"x": 3}


def test_a_grid_run_by_three_processes_finishes_each_configuration_exactly_once(tmp_path):
    url = f"sqlite:///{tmp_path / 't.db'}"
    study, _ = new_study(url)
    enqueue_configurations(study, {f"k{i}": {"i": i} for i in range(60)})
    done = lambda: len(completed_keys(study))  # noqa: E731
    run_workers(counting_worker, (url,), 3, Progress("grid", 60, lambda: (done(), {})), show=False)
    trials = study.get_trials(deepcopy=False)
    assert sorted(completed_keys(study)) == sorted(f"k{i}" for i in range(60))
    assert len(trials) == 60 and all(t.state == TrialState.COMPLETE for t in trials)  # no trial was taken twice
    assert len({t.user_attrs["result"]["pid"] for t in trials}) > 1  # the processes shared the work
    threads = max(1, (os.cpu_count() or 1) // 3)
    assert {t.user_attrs["result"]["threads"] for t in trials} == {threads}  # each its share of the CPU


def test_a_silent_workers_trial_is_queued_again_and_a_finished_one_is_not(tmp_path, wait_for):
    study, storage = new_study(f"sqlite:///{tmp_path / 't.db'}")
    enqueue_configurations(study, {"a": {"i": 0}, "b": {"i": 1}})
    first = pop_waiting(study, storage)
    study.tell(first[0], 1.0)
    abandoned = pop_waiting(study, storage)  # taken, then its worker goes silent
    storage.record_heartbeat(abandoned[1])
    assert pop_waiting(study, storage) is None

    def requeued():
        optuna.storages.fail_stale_trials(study)
        return study.get_trials(states=(TrialState.WAITING,))

    again = wait_for(requeued, 60, "the stale trial to be queued again")
    assert [t.user_attrs["key"] for t in again] == ["b"]
    work_through_queue([study], storage, lambda config: (2.0, {}), poll_s=0.1, log=lambda text: None)
    states = [(t.user_attrs["key"], t.state) for t in study.get_trials()]
    assert states == [("a", TrialState.COMPLETE), ("b", TrialState.FAIL), ("b", TrialState.COMPLETE)]
    assert study.get_trials()[0].value == 1.0  # the finished trial kept its result


def test_a_failing_trial_records_its_error_and_the_worker_goes_on(tmp_path):
    study, storage = new_study(f"sqlite:///{tmp_path / 't.db'}")
    enqueue_configurations(study, {"bad": {"i": 0}, "good": {"i": 1}})

    def objective(config):
        if config["i"] == 0:
            raise ConvforgeError("this configuration cannot train")
        return 0.5, {"loss": 0.5}

    assert work_through_queue([study], storage, objective, poll_s=0.1, log=lambda text: None) == 1
    bad, good = study.get_trials()
    assert bad.state == TrialState.FAIL and "cannot train" in bad.user_attrs["error"]
    assert good.state == TrialState.COMPLETE and good.user_attrs["result"] == {"loss": 0.5}


def test_an_interrupted_trial_is_queued_again(tmp_path):
    study, storage = new_study(f"sqlite:///{tmp_path / 't.db'}")
    enqueue_configurations(study, {"a": {"i": 0}})

    def interrupted(config):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_trial(study, storage, pop_waiting(study, storage), interrupted, log=lambda text: None)
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL, TrialState.WAITING]


def test_sqlite_transactions_take_the_write_lock_first(tmp_path):
    storage = open_storage(tmp_path / "t.db")
    with storage.engine.connect() as connection:
        with connection.begin():
            mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
            assert connection.connection.dbapi_connection.in_transaction
    assert mode == "wal"


def test_a_bad_storage_url_is_one_clear_error():
    with pytest.raises(ConvforgeError, match="could not open the trial storage"):
        open_storage("nosuchdialect://x")


def test_workers_must_be_a_positive_count():
    with pytest.raises(InvalidValueError, match="workers = 0 is not allowed"):
        run_workers(counting_worker, ("x",), 0, Progress("grid", 1, lambda: (0, {})), show=False)


def test_a_crashed_worker_with_work_left_is_reported_with_its_log(tmp_path):
    open_storage(tmp_path / "empty.db")  # a storage without the study the workers look for
    with pytest.raises(ConvforgeError, match=r"workers stopped with trials left to run: worker 0 \(exit code 1: .*"
                                             r"worker-0\.log\)"):  # fmt: skip
        run_workers(counting_worker, (f"sqlite:///{tmp_path / 'empty.db'}",), 2, Progress("grid", 1, lambda: (0, {})),
                    show=False, log_dir=tmp_path / "logs")  # fmt: skip
    assert "Record does not exist" in (tmp_path / "logs" / "worker-0.log").read_text()  # no such study


def test_a_configuration_queued_twice_runs_once(tmp_path):
    from convforge.trials.queue import requeue

    study, storage = new_study(f"sqlite:///{tmp_path / 't.db'}")
    enqueue_configurations(study, {"a": {"i": 0}, "b": {"i": 1}})
    requeue(study, "a", {"i": 0})  # as two machines queueing the same grid at once could
    first, second = pop_waiting(study, storage), pop_waiting(study, storage)  # taken together: "a" and "b"
    third = pop_waiting(study, storage)  # the second "a"
    ran = []
    objective = lambda config: ran.append(config["i"]) or (0.0, {})  # noqa: E731
    assert run_trial(study, storage, third, objective, log=lambda text: None) is False  # "a" runs elsewhere
    assert run_trial(study, storage, first, objective, log=lambda text: None)
    assert run_trial(study, storage, second, objective, log=lambda text: None)
    assert ran == [0, 1]
    states = [(t.user_attrs["key"], t.state) for t in study.get_trials()]
    assert states == [("a", TrialState.COMPLETE), ("b", TrialState.COMPLETE), ("a", TrialState.PRUNED)]


def test_a_grace_period_no_longer_than_the_heartbeat_is_refused(tmp_path):
    with pytest.raises(InvalidValueError, match=r"grace period \(5 s\) must be .* longer than the heartbeat"):
        open_storage(tmp_path / "t.db", heartbeat_s=10, grace_s=5)
    with pytest.raises(InvalidValueError, match="heartbeat interval must be a positive whole number"):
        open_storage(tmp_path / "t.db", heartbeat_s=0)


def test_a_file_that_is_not_a_database_is_one_clear_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a database, but long enough to have a header page " * 20)
    with pytest.raises(ConvforgeError, match="could not open the trial storage"):
        open_storage(path)


def test_processes_opening_a_new_storage_at_once_all_open_it(tmp_path):
    for attempt in range(2):  # each round races three fresh processes to create the tables
        url = f"sqlite:///{tmp_path / f'new-{attempt}.db'}"
        run_workers(opening_worker, (url,), 3, Progress("open", 0, lambda: (0, {})), show=False)  # fails if one died


WORKERS_THAT_WAIT = """
import os, sys, time
from pathlib import Path
from convforge.trials import Progress, run_workers

def wait(folder, slot):
    Path(folder, f"worker-{os.getpid()}").touch()
    while True:
        time.sleep(0.2)

if __name__ == "__main__":
    run_workers(wait, (sys.argv[1],), 2, Progress("wait", 2, lambda: (0, {})), show=False)
"""


def test_workers_stop_when_the_process_that_started_them_is_killed_outright(tmp_path, wait_for):
    import signal
    import subprocess
    import sys

    script = tmp_path / "start_workers.py"
    script.write_text(WORKERS_THAT_WAIT)
    parent = subprocess.Popen([sys.executable, str(script), str(tmp_path)])
    try:
        wait_for(lambda: len(list(tmp_path.glob("worker-*"))) == 2, timeout=60)
        pids = [int(p.name.split("-")[1]) for p in tmp_path.glob("worker-*")]
        parent.send_signal(signal.SIGKILL)  # no chance to stop its workers itself
        parent.wait()

        def gone(pid: int) -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            try:  # a zombie awaiting its reaper counts as gone
                return open(f"/proc/{pid}/stat").read().split(") ")[1].startswith("Z")
            except OSError:
                return True

        wait_for(lambda: all(gone(pid) for pid in pids), timeout=20)
    finally:
        parent.kill()
