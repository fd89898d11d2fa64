"""``convforge predict CHECKPOINT image.png``: the top-k classes of an image."""

from __future__ import annotations

import argparse

from convforge.engine.predict import predict
from convforge.tables import text_table


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("predict", help="classify an image with a trained model", description=__doc__)
    parser.add_argument("checkpoint", help="a run directory or a .safetensors checkpoint")
    parser.add_argument("image", help="an image file (PNG, JPEG)")
    parser.add_argument("--top-k", type=int, default=5)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    ranked = predict(args.checkpoint, args.image, top_k=args.top_k)
    print(text_table(["class", "probability"], [(c, f"{100 * p:.2f} %") for c, p in ranked], align="lr"))
    return 0
