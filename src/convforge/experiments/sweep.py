"""Run the trials of a study in worker processes, locally or on a Ray cluster.

Every worker runs the same loop: claim a trial from the :class:`TrialStore`, run the
trial function on its configuration, store the result, repeat. A heartbeat thread
keeps the claim alive while the trial runs. Workers on other machines join by running
the same study against the same database URL; nothing else coordinates them. A worker
that finds no trial to claim waits while others are still running some (one of them
may die, and its trial then falls to whoever is left), and stops when all are finished.

The trial function is named by import path (``"package.module:function"``) so that a
fresh process, or a Ray worker, can find it. It takes ``(config, context)`` and returns
a JSON-serialisable dict.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import multiprocessing
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from convforge.errors import ConvforgeError, InvalidValueError
from convforge.experiments.trial_store import TrialStore, worker_id

EXECUTORS = ("local", "ray")


def resolve(path: str) -> Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]:
    """The function named ``"package.module:function"``."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@contextlib.contextmanager
def _heartbeat(store: TrialStore, study: str, key: str, owner: str, every_s: float) -> Iterator[None]:
    stop = threading.Event()

    def beat_and_check() -> None:
        while not stop.wait(every_s):
            try:
                if not store.beat(study, key, owner):
                    print(f"[{owner}] trial {key} was taken over by another worker (a missed heartbeat?)", flush=True)
            except Exception:  # a missed beat only makes the claim look older
                pass

    thread = threading.Thread(target=beat_and_check, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def worker_loop(
    storage: str,
    study: str,
    trial_fn: str,
    context: dict[str, Any],
    threads: int | None = None,
    log_file: str | None = None,
    poll_s: float = 2.0,
) -> int:
    """Claim and run trials of ``study`` until none is left; returns how many this worker finished."""
    if log_file is not None:  # a worker's chatter goes to its own log, not the shared terminal
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        stream = open(log_file, "a", buffering=1)  # noqa: SIM115 - lives as long as the process
        sys.stdout = sys.stderr = stream
    if threads:
        import torch

        torch.set_num_threads(threads)
    store = TrialStore(storage, stale_after_s=context.get("stale_after_s", 120.0))
    beat_s = max(1.0, store.stale_after_s / 8)
    owner = worker_id()
    function = resolve(trial_fn)
    scope = tuple(context["scope"]) if context.get("scope") else None
    finished = 0
    while True:
        trial = store.claim(study, owner, scope)
        if trial is None:
            counts = store.counts(study, scope)
            if counts["pending"] == 0 and counts["running"] == 0:
                return finished
            if store.busy_elsewhere(study, scope):
                time.sleep(poll_s)  # others are running the rest; one of them may yet die
            continue
        print(f"[{owner}] trial {trial.key} (attempt {trial.attempts})", flush=True)
        try:
            with _heartbeat(store, study, trial.key, owner, beat_s):
                result = function(trial.config, context)
            store.finish(study, trial.key, owner, json.loads(json.dumps(result)))
        except Exception as err:  # the trial failed, the worker goes on
            detail = str(err) if isinstance(err, ConvforgeError) else traceback.format_exc()
            print(f"[{owner}] trial {trial.key} failed: {detail}", flush=True)
            store.fail(study, trial.key, owner, f"{type(err).__name__}: {detail}")
            continue
        finished += 1


def run_sweep(
    storage: str,
    study: str,
    trial_fn: str,
    context: dict[str, Any],
    workers: int = 1,
    executor: str = "local",
    progress: bool = True,
    log_dir: str | Path | None = None,
) -> dict[str, int]:
    """Run every unfinished trial of ``study`` with ``workers`` workers; returns the status counts.

    ``executor="local"`` starts the workers as processes on this machine (each with an
    equal share of the CPU threads); ``"ray"`` starts them as Ray tasks on the cluster
    that ``ray.init()`` finds (``RAY_ADDRESS``), which then need a database they can all
    reach (a PostgreSQL URL). ``workers=0`` runs in this process.
    """
    if executor not in EXECUTORS:
        raise InvalidValueError(f"executor = {executor!r} is not allowed; use one of {', '.join(EXECUTORS)}")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise InvalidValueError(f"workers = {workers!r} is not allowed; use an integer >= 0 (0 = in this process)")
    store = TrialStore(storage, stale_after_s=context.get("stale_after_s", 120.0))
    storage = store.url  # absolute, so that every worker opens the same database
    scope = tuple(context["scope"]) if context.get("scope") else None
    if workers == 0:
        worker_loop(storage, study, trial_fn, context)
        return store.counts(study, scope)
    if executor == "ray":
        return _run_on_ray(store, study, trial_fn, context, workers, progress, scope)
    threads = max(1, (os.cpu_count() or 1) // workers)
    spawn = multiprocessing.get_context("spawn")  # fresh interpreters: safe with torch's threads
    processes = []
    for i in range(workers):
        log = str(Path(log_dir) / f"worker-{i}.log") if log_dir is not None else None
        process = spawn.Process(target=worker_loop, args=(storage, study, trial_fn, context, threads, log))
        process.start()
        processes.append(process)
    try:
        _watch(store, study, progress, lambda: any(p.is_alive() for p in processes), scope)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
    crashed = [(i, p.exitcode) for i, p in enumerate(processes) if p.exitcode != 0]
    counts = store.counts(study, scope)
    if crashed:
        logs = ", ".join(f"worker {i} (exit code {code}): {Path(log_dir or '.') / f'worker-{i}.log'}"
                         for i, code in crashed)  # fmt: skip
        if counts["pending"] or counts["running"]:
            raise ConvforgeError(f"workers stopped with trials left to run; see {logs}")
        print(f"warning: a worker stopped abnormally ({logs}); the others finished its trials", file=sys.stderr)
    return counts


def _watch(
    store: TrialStore, study: str, progress: bool, running: Callable[[], bool], scope: tuple[str, ...] | None
) -> None:
    """A progress bar over the study's trials until the workers stop."""
    counts = store.counts(study, scope)
    total = sum(counts.values())
    with tqdm(total=total, initial=counts["done"] + counts["failed"], unit="trial", disable=not progress) as bar:
        shown = None
        while running():
            time.sleep(1.0)
            counts = store.counts(study, scope)
            if counts != shown:  # redraw on change only: quiet in logs, live on a terminal
                bar.n = counts["done"] + counts["failed"]
                bar.set_postfix(running=counts["running"], failed=counts["failed"], refresh=False)
                bar.refresh()
                shown = counts


def _run_on_ray(
    store: TrialStore,
    study: str,
    trial_fn: str,
    context: dict[str, Any],
    workers: int,
    progress: bool,
    scope: tuple[str, ...] | None,
) -> dict[str, int]:
    try:
        import ray
    except ImportError:
        raise ConvforgeError("the ray executor needs Ray: pip install 'ray[default]'") from None
    if store.url.startswith("sqlite"):
        print("note: Ray workers on other machines cannot reach an SQLite file; use a PostgreSQL URL for a cluster")
    ray.init(ignore_reinit_error=True)
    remote = ray.remote(num_cpus=1)(worker_loop)  # one CPU each; Ray hides GPUs from such tasks
    pending = [remote.remote(store.url, study, trial_fn, context, 1) for _ in range(workers)]
    done: list[Any] = []

    def running() -> bool:
        nonlocal pending
        ready, pending = ray.wait(pending, timeout=0)
        done.extend(ready)
        return bool(pending)

    _watch(store, study, progress, running, scope)
    ray.get(done)  # raise a worker's error here
    return store.counts(study, scope)
