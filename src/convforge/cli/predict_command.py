"""``convforge predict CHECKPOINT image.png``: the top-k classes of an image, or the objects a detector finds."""

from __future__ import annotations

import argparse

from convforge.engine.detect_image import detect_to_folder
from convforge.engine.loading import load_trained
from convforge.engine.predict import predict
from convforge.tables import text_table


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("predict", help="classify an image, or detect objects in images",
                                   description=__doc__)  # fmt: skip
    parser.add_argument("checkpoint", help="a run directory or a .safetensors checkpoint")
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG); a classifier takes one")
    parser.add_argument("--top-k", type=int, default=5, help="classifier: how many classes to list")
    parser.add_argument("--out", help="detector: folder for the drawn images and detections.json "
                        "(default: <run>/predict)")  # fmt: skip
    parser.add_argument("--conf", type=float, default=0.25, help="detector: lowest score kept (default 0.25)")
    parser.add_argument("--iou", type=float, default=0.7, help="detector: NMS IoU threshold (default 0.7)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    trained = load_trained(args.checkpoint)
    if trained.config["recipe"]["task"] == "detect":
        out = args.out or str(trained.checkpoint.parent.parent / "predict")
        results = detect_to_folder(trained.checkpoint, args.images, out, args.conf, args.iou)
        rows = [(path, d.class_name, f"{d.score:.3f}", ", ".join(f"{v:.1f}" for v in d.box))
                for path, found in results.items() for d in found]  # fmt: skip
        print(text_table(["image", "class", "score", "box x1, y1, x2, y2"], rows, align="llrl") if rows
              else "no objects above the score threshold")  # fmt: skip
        print(f"drawn images and detections.json in {out}")
        return 0
    if len(args.images) != 1:
        raise SystemExit("a classifier predicts one image at a time")
    ranked = predict(args.checkpoint, args.images[0], top_k=args.top_k)
    print(text_table(["class", "probability"], [(c, f"{100 * p:.2f} %") for c, p in ranked], align="lr"))
    return 0
