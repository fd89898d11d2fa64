"""Queued trials taken by several processes from one SQLite study: convforge's storage against Optuna's default.

Each of ``--workers`` processes takes waiting trials (the way Optuna takes an enqueued
trial: read it, then mark it running) and finishes them, until none waits. With
Optuna's default SQLite storage two processes can take the same trial, since SQLite
ignores the row lock that guards this on PostgreSQL; convforge's storage starts every
SQLite transaction with ``BEGIN IMMEDIATE``. Prints, for each, how many trials were
taken for how many queued, how many configurations ran more than once, how many
workers crashed, and the wall time, with the time ratio.

    python benchmarks/trial_queue.py [--trials 60] [--workers 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

from convforge.tables import text_table


def _storage(url: str, serialised: bool):
    from optuna.storages import RDBStorage

    from convforge.trials import open_storage

    return open_storage(url) if serialised else RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})


def _worker(url: str, serialised: bool, out: str) -> None:
    import optuna

    from convforge.trials import pop_waiting

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = _storage(url, serialised)
    study = optuna.load_study(study_name="queue", storage=storage)
    taken = []
    while (popped := pop_waiting(study, storage)) is not None:
        trial, _ = popped
        taken.append(trial.user_attrs["key"])
        study.tell(trial, 0.0)
    Path(out).write_text("\n".join(taken))


def run(serialised: bool, trials: int, workers: int) -> tuple[int, int, int, float]:
    """(trials taken, configurations taken more than once, crashed workers, seconds)."""
    import optuna

    from convforge.trials import enqueue_configurations

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/queue.db"
        study = optuna.create_study(study_name="queue", storage=_storage(url, serialised))
        enqueue_configurations(study, {f"k{i}": {"i": i} for i in range(trials)})
        spawn = multiprocessing.get_context("spawn")
        outs = [f"{folder}/taken-{i}.txt" for i in range(workers)]
        processes = [spawn.Process(target=_worker, args=(url, serialised, out)) for out in outs]
        start = time.perf_counter()
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        seconds = time.perf_counter() - start
        taken = [key for out in outs if Path(out).exists() for key in Path(out).read_text().split()]
    repeated = len(taken) - len(set(taken))
    return len(taken), repeated, sum(p.exitcode != 0 for p in processes), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows, times = [], {True: [], False: []}
    for repeat in range(args.repeats):
        for serialised in (False, True):  # alternate, so drift on a shared machine hits both
            taken, repeated, crashed, seconds = run(serialised, args.trials, args.workers)
            times[serialised].append(seconds)
            name = "convforge (BEGIN IMMEDIATE)" if serialised else "Optuna's default SQLite"
            rows.append((name, repeat + 1, f"{taken}/{args.trials}", repeated, crashed, f"{seconds:.1f}"))
    print(f"\n{args.trials} queued trials, {args.workers} worker processes, {args.repeats} runs each\n")
    print(text_table(["storage", "run", "taken/queued", "taken twice", "crashed workers", "seconds"], rows))
    ratio = sum(times[True]) / sum(times[False])
    print(f"\nwall time, convforge / Optuna's default: {ratio:.2f}")


if __name__ == "__main__":
    main()
