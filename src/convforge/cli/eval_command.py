"""``convforge eval CHECKPOINT_OR_RUN --data NAME``: score a trained model on a test split."""

from __future__ import annotations

import argparse

from convforge.engine.trainer import evaluate
from convforge.tables import format_metric


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="evaluate a trained model", description=__doc__)
    parser.add_argument("checkpoint", help="a run directory or a .safetensors checkpoint")
    parser.add_argument("--data", help="dataset (default: the one it was trained on)")
    parser.add_argument("--data-root")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--no-ema", action="store_true", help="use the raw weights even when EMA weights exist")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    metrics = evaluate(args.checkpoint, args.data, data_root=args.data_root, batch_size=args.batch,
                       use_ema=not args.no_ema)  # fmt: skip
    shown = "  ".join(f"{k} {format_metric(k, v)}" for k, v in metrics.items() if k != "count")
    print(f"{shown}  ({metrics['count']} examples)")
    return 0
