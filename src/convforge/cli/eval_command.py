"""``convforge eval CHECKPOINT_OR_RUN --data NAME``: score a trained model on a test split."""

from __future__ import annotations

import argparse

from convforge.tables import format_metric

NAME = "eval"
HELP = "evaluate a trained model"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(NAME, help=HELP, description=__doc__)
    parser.add_argument("checkpoint", help="a run directory or a .safetensors checkpoint")
    parser.add_argument(
        "--data", help="dataset, or several separated by commas, e.g. set5,set14 (default: the one it was trained on)"
    )
    parser.add_argument("--data-root")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--no-ema", action="store_true", help="use the raw weights even when EMA weights exist")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from convforge.engine.trainer import evaluate

    names = [n.strip() for n in args.data.split(",") if n.strip()] if args.data else [None]
    for name in names:
        metrics = evaluate(args.checkpoint, name, data_root=args.data_root, batch_size=args.batch,
                           use_ema=not args.no_ema)  # fmt: skip
        shown = "  ".join(f"{k} {format_metric(k, v)}" for k, v in metrics.items() if k != "count")
        prefix = f"{name}: " if len(names) > 1 else ""
        print(f"{prefix}{shown}  ({metrics['count']} examples)")
    return 0
