"""``convforge study deep-vs-shallow``: run a paper's study as a resumable sweep and print its report."""

from __future__ import annotations

import argparse
import shlex
import sys

from convforge.cli.arguments import existing_folder

NAME = "study"
HELP = "run a paper's study (a resumable sweep of trainings) and print its report"


def add_parser(subparsers) -> None:
    from convforge.experiments.deep_vs_shallow import GRIDS

    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Run a study's grid of trainings in worker processes, keeping every trial in a database so that "
        "an interrupted study resumes where it stopped, then print its tables and write its plots.",
    )
    studies = parser.add_subparsers(dest="study", metavar="STUDY", required=True)
    deep = studies.add_parser(
        "deep-vs-shallow",
        help="residual stacks against their parallel expansion (Make Deep Networks Shallow Again)",
        description="Train residual_stack_net in the sequential and the parallel layout over a grid and compare "
        "their training and validation loss per interval of Q = training samples × outputs / parameters.",
    )
    deep.add_argument("--grid", default="small", help=f"{', '.join(GRIDS)} or a YAML grid file (default: small)")
    deep.add_argument("--data", default=None, help="comma-separated dataset names (default: the grid's)")
    deep.add_argument("--data-root", type=existing_folder, default=None, help="where to look for the datasets first")
    deep.add_argument("--workers", type=int, default=2,
                      help="worker processes on this machine (default: 2; 1 trains in this process)")  # fmt: skip
    deep.add_argument("--out", default=None, help="study folder (default: runs/studies/deep-vs-shallow-GRID)")
    deep.add_argument("--storage", default=None,
                      help="Optuna storage URL shared by many machines, e.g. postgresql+psycopg://user@host/db "
                      "(default: OUT/trials.db, SQLite); start the study on one machine, then run the same command "
                      "on the others")  # fmt: skip
    deep.add_argument("--heartbeat", type=int, default=10, help="seconds between a worker's heartbeats (default 10)")
    deep.add_argument("--grace", type=int, default=30,
                      help="seconds of silence after which a worker counts as dead and its trial is queued again "
                      "(default 30)")  # fmt: skip
    deep.add_argument("--retry-failed", action="store_true", help="run failed trials again")
    deep.add_argument("--report-only", action="store_true", help="only rewrite the report from the stored trials")
    deep.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from convforge.experiments.deep_vs_shallow import run_study
    from convforge.experiments.deep_vs_shallow.report import paired_tables

    command = "convforge " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else ""
    result = run_study(
        grid=args.grid,
        data=args.data,
        workers=args.workers,
        out=args.out,
        storage=args.storage,
        data_root=args.data_root,
        progress=not args.quiet,
        retry_failed=args.retry_failed,
        heartbeat_s=args.heartbeat,
        grace_s=args.grace,
        report_only=args.report_only,
        command=command,
    )
    counts = result.counts
    print(f"\ntrials: {counts['done']} done, {counts['failed']} failed, {counts['pending']} pending, "
          f"{counts['running']} running elsewhere")  # fmt: skip
    if not result.rows:
        print("no finished trials yet")
        return 1 if counts["failed"] else 0
    summary, detail = paired_tables(result.rows)
    print("\nMean cross-entropy per Q interval (train / validation):\n")
    print(result.table)
    print("\nParallel − sequential, paired by configuration and seed:\n")
    print(summary)
    print("\nPer configuration, over its seeds (95 % CI with two seeds or more):\n")
    print(detail)
    print(f"\nreport: {result.out / 'report' / 'report.md'}   plots: {result.out / 'report'}")
    return 0
