"""``convforge upscale CHECKPOINT in.png out.png``: enlarge an image with a trained super-resolution model."""

from __future__ import annotations

import argparse

NAME = "upscale"
HELP = "enlarge an image with a trained super-resolution model"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Run the image's luma (BT.601 Y) through a super-resolution run's best checkpoint, enlarge its "
        "chroma bicubically, and write the RGB result.",
    )
    parser.add_argument("checkpoint", help="a super-resolution run directory or .safetensors checkpoint")
    parser.add_argument("source", help="the image to enlarge (PNG, JPEG, BMP)")
    parser.add_argument("target", help="where to write the result (.png or .jpg)")
    parser.add_argument("--overwrite", action="store_true", help="replace the target if it exists")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from convforge.tasks.sr.upscale import upscale

    path = upscale(args.checkpoint, args.source, args.target, overwrite=args.overwrite)
    print(path)
    return 0
