"""``convforge quantize RUN``: INT8 post-training quantisation for CPUs, with its accuracy and speed measured."""

from __future__ import annotations

import argparse

from convforge.cli.arguments import existing_folder

NAME = "quantize"
HELP = "quantise a trained run to INT8 (onnxruntime) and measure accuracy and speed"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Fold the trained model into its inference form, export it (model.onnx), quantise it with "
        "onnxruntime's static QDQ quantiser calibrated on real training images (model.int8.onnx), and report "
        "the SQNR of every layer (plots/quantization.png), the task's metric of FP32 and INT8 through "
        "onnxruntime, and the latency of FP32 PyTorch, FP32 onnxruntime and INT8 onnxruntime.",
    )
    parser.add_argument("source", metavar="RUN", help="run directory or checkpoint of the trained model")
    parser.add_argument("--calib", type=int, default=512, help="training examples to calibrate on (default 512)")
    parser.add_argument("--method", default="minmax", choices=("minmax", "entropy", "percentile"),
                        help="calibration method (default minmax)")  # fmt: skip
    channel = parser.add_mutually_exclusive_group()
    channel.add_argument("--per-channel", dest="per_channel", action="store_true", default=True,
                         help="one weight scale per output channel (default)")  # fmt: skip
    channel.add_argument("--per-tensor", dest="per_channel", action="store_false", help="one weight scale per layer")
    parser.add_argument("--activations", default="uint8", choices=("uint8", "int8"),
                        help="activation type: uint8 (U8S8, fastest on x86 with VNNI; default) or int8 "
                        "(S8S8)")  # fmt: skip
    parser.add_argument("--exclude", nargs="+", default=[], metavar="LAYER",
                        help="layers kept in FP32: module paths (a prefix takes a whole block) or ONNX node "
                        "names")  # fmt: skip
    parser.add_argument("--auto-exclude", type=float, metavar="TOL",
                        help="keep in FP32 the fewest layers that bring the task's metric within TOL of FP32 "
                        "(top-1 points, PSNR dB, or mAP on the 0–1 scale)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the calibration draw (default 0)")
    parser.add_argument("--data", help="data to score on (default: the run's evaluation data)")
    parser.add_argument("--data-root", type=existing_folder)
    parser.add_argument("--val-subset", type=int, default=0,
                        help="score on this many examples of the evaluation data (default 0: all)")  # fmt: skip
    parser.add_argument("--batch", type=int, default=256, help="evaluation batch size (default 256)")
    parser.add_argument("--latency-batch", type=int, default=64, help="the larger batch timed (default 64)")
    parser.add_argument("--no-eval", action="store_true", help="skip scoring FP32 and INT8 on the data")
    parser.add_argument("--no-latency", action="store_true", help="skip timing")
    parser.add_argument("--layers", action="store_true", help="also print the SQNR of every layer")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from convforge.compress.quantization import quantize

    result = quantize(args.source, calib=args.calib, method=args.method, per_channel=args.per_channel,
                      activations=args.activations, exclude=args.exclude, auto_exclude=args.auto_exclude,
                      seed=args.seed, data=args.data, data_root=args.data_root,
                      val_subset=args.val_subset, evaluate=not args.no_eval,
                      latency=not args.no_latency, latency_batch=args.latency_batch, batch_size=args.batch,
                      progress=not args.quiet)  # fmt: skip
    if args.layers:
        print(result.layer_table())
        print()
    print(result.summary())
    return 0
