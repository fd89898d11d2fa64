"""``convforge models [PATTERN] [--task T]``: list registered models with their size and cost."""

from __future__ import annotations

import argparse

from convforge.published import PublishedFigure
from convforge.tables import human_count, text_table

NAME = "models"
HELP = "list registered models with parameters and MACs"


def add_parser(subparsers) -> None:
    from convforge.tasks import TASKS

    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="List registered models: name, family, task, default input, parameters, and MACs at that input.",
    )
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern, e.g. 'simplenet*'")
    parser.add_argument("--task", choices=list(TASKS), default=None, help="only models of this task")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from convforge.models import create_model, get_model_info, list_models
    from convforge.profiler import profile

    names = list_models(args.pattern, task=args.task)
    if not names:
        task = f" of task {args.task!r}" if args.task else ""
        print(f"no registered model matches {args.pattern!r}{task}; run `convforge models` to see them all")
        return 1
    rows = []
    for name in tqdm(names, desc="measuring", unit="model", leave=False):
        info = get_model_info(name)
        result = profile(create_model(name), info.input_size, name=name)
        rows.append(
            (
                name,
                info.family,
                info.task,
                "x".join(map(str, info.input_size)),
                f"{result.params:,}",
                _published(info.published.get("params"), result.params),
                human_count(result.macs),
                _published(info.published.get("macs"), result.macs),
            )
        )
    headers = ["name", "family", "task", "input", "params", "paper", "MACs", "paper"]
    print(text_table(headers, rows, align="llllrlrl"))
    print("paper: the figure the paper publishes; ✓ where the measurement agrees with it within its printed precision")
    return 0


def _published(text: str | None, measured: float) -> str:
    if not text:
        return ""
    return f"{text} {'✓' if PublishedFigure.parse(text).matches(measured) else '✗'}"
