"""``convforge explain CHECKPOINT_OR_MODEL --image img.png``: pictures of the network's linear interpreter."""

from __future__ import annotations

import argparse

NAME = "explain"
HELP = "show how a network decides on one image (LinearScope: vote maps, rows, bias share)"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Replay the network as the exact affine map A·x + c it applies around the image, and write "
        "pictures of it: per-pixel class votes, the row of A for the predicted class, and how much of each logit "
        "comes from the bias part c.",
    )
    parser.add_argument("model", help="a run directory, a .safetensors checkpoint, or a registered model name")
    parser.add_argument("--image", required=True, help="an image file (PNG, JPEG)")
    parser.add_argument("--class", dest="target", default=None, help="a class (index or name) to explain too")
    parser.add_argument("--out", default="explain", help="folder for the PNGs (default: ./explain)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from convforge.explain.image_file import explain_file

    result = explain_file(args.model, args.image, args.out, args.target)
    if result.predicted is not None:
        share = result.bias_share[result.predicted]
        print(f"predicted: {result.predicted} ({100 * share:.0f} % of its logit comes from the bias part c)")
    for path in result.files:
        print(path)
    return 0
