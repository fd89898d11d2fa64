"""``convforge runs [PATTERN]``: the runs under the project folder, with their best scores."""

from __future__ import annotations

import argparse

NAME = "runs"
HELP = "list past runs with their model, data, epochs and best score"


def add_parser(subparsers) -> None:
    description = ("List the runs under --project (oldest first, the latest last) with their model, data, epochs "
                   "and best validation score.")  # fmt: skip
    parser = subparsers.add_parser(NAME, help=HELP, description=description)
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style pattern on the run's name or "
                        "task/name, e.g. 'resnet*' or 'detect/*'")  # fmt: skip
    parser.add_argument("--project", default="runs", help="the project folder (default: runs)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import time

    from convforge.runs.run_listing import list_runs
    from convforge.tables import format_metric, text_table

    runs = list_runs(args.project, args.pattern)
    if not runs:
        print(f"no run under {args.project} matches {args.pattern!r}")
        return 1
    rows = []
    for summary in runs:
        best = (f"{summary.best_metric[4:]} {format_metric(summary.best_metric[4:], summary.best_value)} "
                f"(epoch {summary.best_epoch})" if summary.best_metric else "no finished epoch")  # fmt: skip
        rows.append((str(summary.path), summary.task, summary.model, summary.data,
                     f"{summary.epochs_done}/{summary.epochs}", best,
                     time.strftime("%Y-%m-%d %H:%M", time.localtime(summary.modified))))  # fmt: skip
    print(text_table(["run", "task", "model", "data", "epochs", "best", "last written"], rows))
    return 0
