"""``convforge predict RUN image.png ...``: what a trained model makes of images: classes, objects, enlargements."""

from __future__ import annotations

import argparse

NAME = "predict"
HELP = "run a trained model on images: top classes, detected objects, or enlarged images"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Run a trained model on image files, as its task does: a classifier lists its top classes, a "
        "detector draws its boxes into --out with detections.json, a super-resolution model writes the enlarged "
        "images into --out.",
    )
    parser.add_argument("checkpoint", help="a run directory or a .safetensors checkpoint")
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...), folders of them, or glob patterns "
                        "('photos/*.jpg')")  # fmt: skip
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--out", help="folder for what the task writes (default: <run>/predict for detectors and "
                        "super-resolution; classifiers write predictions.json only when given)")  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace files an earlier prediction left in --out")
    parser.add_argument("--top-k", type=int, help="classifier: how many classes to list (default 5)")
    parser.add_argument("--conf", type=float, help="detector: lowest score kept (default 0.25)")
    parser.add_argument("--iou", type=float, help="detector: NMS IoU threshold (default 0.7)")
    parser.add_argument("--max-det", type=int, help="detector: most objects per image (default 300)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from convforge.engine.predict import predict_files

    options = {"top_k": args.top_k, "conf": args.conf, "iou": args.iou, "max_det": args.max_det}
    result = predict_files(args.checkpoint, args.images, args.out, overwrite=args.overwrite, device=args.device,
                           **{k: v for k, v in options.items() if v is not None})  # fmt: skip
    print(result.table)
    if result.files:
        folder = result.files[0].parent
        print(f"wrote {len(result.files)} file(s) in {folder}")
    return 0
