"""Local worker processes for many trials: one spawn, one split of the CPU threads, one progress bar.

Every worker runs the same function in a fresh interpreter (``spawn``: safe with torch's
threads), with an equal share of the machine's threads and, when a log folder is
given, its output in ``worker-<i>.log``. The parent draws one progress bar from the
storage they share. One worker runs in this process. More machines join a study by
running the same command against the same database URL; nothing else coordinates them.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from convforge.errors import ConvforgeError, InvalidValueError
from convforge.progress_bars import hidden

POLL_S = 1.0  # how often the progress bar reads the storage
PARENT_CHECK_S = 2.0  # how often a worker checks that the process that started it is alive
PARENT_GONE_EXIT = 3  # a worker's exit code when it stopped because that process was gone


@dataclass(frozen=True)
class WorkerSlot:
    """Which worker this is, how many CPU threads it may use (None: torch's default), and where it logs."""

    index: int = 0
    threads: int | None = None
    log_file: str | None = None


@dataclass
class Progress:
    """What the progress bar shows: ``read()`` gives, from the storage, the units finished out of ``total`` and
    counts to show beside them (running and failed trials, say)."""

    desc: str
    total: int
    read: Callable[[], tuple[int, dict[str, Any]]]

    def done(self) -> int:
        return self.read()[0]


def _worker_main(work: Callable[..., Any], args: tuple, slot: WorkerSlot) -> None:
    """A worker process: its threads and log, then the work."""
    if slot.log_file is not None:  # a worker's chatter goes to its own log, not the shared terminal
        Path(slot.log_file).parent.mkdir(parents=True, exist_ok=True)
        stream = open(slot.log_file, "a", buffering=1)  # noqa: SIM115 - lives as long as the process
        sys.stdout = sys.stderr = stream
    if slot.threads:
        import torch

        torch.set_num_threads(slot.threads)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    work(*args, slot)


def _exit_with_parent(parent: int) -> None:
    """Stop this worker once the process that started it is gone (killed outright, so it could not stop its
    workers): its trial is left running, and is queued again once its heartbeat falls silent."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(PARENT_GONE_EXIT)


def _draw(bar: tqdm, progress: Progress, shown: list[Any]) -> None:
    """Redraw the bar when the counts changed: quiet in logs, live on a terminal."""
    done, detail = progress.read()
    state = (min(done, progress.total), detail)
    if state != shown[0]:
        bar.n = state[0]
        bar.set_postfix(state[1], refresh=False)
        bar.refresh()
        shown[0] = state


@contextlib.contextmanager
def _bar_in_background(progress: Progress, enabled: bool) -> Iterator[None]:
    """A progress bar redrawn by a thread while this process works."""
    stop = threading.Event()
    with tqdm(total=progress.total, desc=progress.desc, unit="trial", disable=hidden(enabled)) as bar:
        shown: list[Any] = [None]

        def watch() -> None:
            while not stop.wait(POLL_S):
                with contextlib.suppress(Exception):  # a busy database only delays a redraw
                    _draw(bar, progress, shown)

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            _draw(bar, progress, shown)


def run_workers(work: Callable[..., Any], args: tuple, workers: int, progress: Progress, show: bool = True,
                log_dir: str | Path | None = None) -> None:  # fmt: skip
    """Call ``work(*args, slot)`` in ``workers`` workers (1: in this process) and show one progress bar.

    ``work`` must be a module-level function and ``args`` picklable, so that fresh
    processes can run them. A worker that dies is reported; with units left unfinished
    the call fails, naming the workers' logs.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidValueError(f"workers = {workers!r} is not allowed; use a positive integer")
    if workers == 1:
        with _bar_in_background(progress, show):
            work(*args, WorkerSlot())
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    spawn = multiprocessing.get_context("spawn")
    slots = [WorkerSlot(i, threads, str(Path(log_dir) / f"worker-{i}.log") if log_dir is not None else None)
             for i in range(workers)]  # fmt: skip
    processes = [spawn.Process(target=_worker_main, args=(work, args, slot)) for slot in slots]
    for process in processes:
        process.start()
    try:
        with tqdm(total=progress.total, desc=progress.desc, unit="trial", disable=hidden(show)) as bar:
            shown: list[Any] = [None]
            while any(p.is_alive() for p in processes):
                _draw(bar, progress, shown)
                for process in processes:
                    process.join(POLL_S / len(processes))
            _draw(bar, progress, shown)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
    crashed = [(slot, p.exitcode) for slot, p in zip(slots, processes) if p.exitcode != 0]
    if crashed:
        where = ", ".join(f"worker {slot.index} (exit code {code}{': ' + slot.log_file if slot.log_file else ''})"
                          for slot, code in crashed)  # fmt: skip
        if progress.done() < progress.total:
            raise ConvforgeError(f"workers stopped with trials left to run: {where}")
        print(f"warning: a worker stopped abnormally ({where}); the others finished its trials", file=sys.stderr)
