"""``convforge models [PATTERN] [--task T] [--all]``: list models with their size and cost."""

from __future__ import annotations

import argparse

from convforge.published import PublishedFigure
from convforge.tables import human_count, text_table

NAME = "models"
HELP = "list registered models with parameters and MACs"
LIBRARY_PREFIXES = ("timm:", "torchvision:")


def add_parser(subparsers) -> None:
    from convforge.task_names import TASK_NAMES

    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="List registered models: name, family, task, default input, parameters, and MACs at that input "
        "(measured once, then read from a cache). A pattern starting with timm: or torchvision: lists the models "
        "those libraries build, which every command takes by that name.",
    )
    parser.add_argument("pattern", nargs="?", default="*",
                        help="shell-style name pattern, e.g. 'simplenet*' or 'timm:*mobilenet*'")  # fmt: skip
    parser.add_argument("--task", choices=list(TASK_NAMES), default=None, help="only models of this task")
    parser.add_argument("--all", action="store_true", help="also list the timm and torchvision models matching")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from convforge.model_table import library_models, model_rows

    from_library = args.pattern.startswith(LIBRARY_PREFIXES)
    rows = {} if from_library else model_rows(args.pattern, task=args.task)
    library = library_models(args.pattern) if from_library or args.all else []
    if args.task not in (None, "classify"):
        library = []  # timm and torchvision models are classifiers
    if not rows and not library:
        task = f" of task {args.task!r}" if args.task else ""
        print(f"no model matches {args.pattern!r}{task}; run `convforge models` to see convforge's, or "
              "`convforge models 'timm:*'` for timm's")  # fmt: skip
        return 1
    if rows:
        table = [
            (name, row["family"], row["task"], row["input"], f"{row['params']:,}",
             _published(row["paper_params"], row["params"]), human_count(row["macs"]),
             _published(row["paper_macs"], row["macs"]))
            for name, row in rows.items()
        ]  # fmt: skip
        headers = ["name", "family", "task", "input", "params", "paper", "MACs", "paper"]
        print(text_table(headers, table, align="llllrlrl"))
        print("paper: the figure the paper publishes; ✓ where the measurement agrees with it within its printed "
              "precision")  # fmt: skip
    if library:
        if rows:
            print()
        print("\n".join(library))
        print(f"{len(library)} model(s) of timm and torchvision; `convforge profile NAME` measures one")
    return 0


def _published(text: str | None, measured: float) -> str:
    if not text:
        return ""
    return f"{text} {'✓' if PublishedFigure.parse(text).matches(measured) else '✗'}"
