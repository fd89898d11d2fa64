"""``convforge profile MODEL``: parameters, MACs/FLOPs, activation memory and latency of one model."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from convforge.cli.arguments import parse_input_size, parse_overrides
from convforge.errors import ConvforgeError
from convforge.field_checks import MAX_INPUT_ELEMENTS
from convforge.input_shapes import as_shapes, from_record, shape_text
from convforge.output_files import check_picture_path

NAME = "profile"
MAX_RUNS = 100_000  # timed runs of --latency
HELP = "count parameters and MACs, and measure memory and latency"


def add_parser(subparsers) -> None:
    from convforge.profiler import CONVENTIONS

    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description=(
            "Profile one forward pass of a model: parameters, MACs and FLOPs (FLOPs = 2 x MACs) under a counting "
            "convention, peak activation memory, and optionally latency. MODEL is a registered name, "
            "timm:<name>, torchvision:<name>, or a run directory or checkpoint (its trained model, pruned ones "
            "included, at the run's input size). An .onnx file convforge wrote is timed in onnxruntime beside "
            "the run's FP32 PyTorch model and its FP32 or INT8 sibling, at batch 1 and --batch (64 when --batch is 1)."
        ),
    )
    parser.add_argument("model", help="e.g. simplenet_cifar_5m, timm:resnet18, runs/classify/x")
    parser.add_argument("--input", default=None, help="per-sample input size CxHxW, e.g. 3x224x224 (default: model's)")
    parser.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    parser.add_argument("--convention", choices=CONVENTIONS, default="macs", help="counting convention")
    parser.add_argument("--latency", action="store_true", help="also time forward passes")
    parser.add_argument("--runs", type=int, default=50, help="timed runs for --latency (default 50)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed warm-up runs for --latency (default 10)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for --latency (default: torch's)")
    parser.add_argument("--per-module", action="store_true", help="add the per-module table")
    parser.add_argument("--depth", type=int, default=None, help="deepest module level in the per-module table")
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output format")
    parser.add_argument("--plot", metavar="PNG", default=None, help="also save a chart of MACs and params per module")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="model override, e.g. --set in_chans=1")
    parser.set_defaults(run=run)


def is_run(text: str) -> bool:
    """Whether ``text`` names a run directory or a checkpoint file rather than a model."""
    path = Path(text)
    return (path.is_dir() and (path / "checkpoints").is_dir()) or (path.suffix == ".safetensors" and path.is_file())


def run(args: argparse.Namespace) -> int:
    from convforge.models import create_model, default_input_size
    from convforge.profiler import plot_profile, profile

    for option in ("batch", "runs", "threads"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise ConvforgeError(f"--{option} must be a positive integer, got {value}")
    if args.warmup < 0:
        raise ConvforgeError(f"--warmup must be zero or more, got {args.warmup}")
    if args.depth is not None and args.depth < 0:
        raise ConvforgeError(f"--depth must be 0 (the model alone) or more, got {args.depth}")
    if args.plot:
        check_picture_path(Path(args.plot), "--plot")
    overrides = parse_overrides(args.set)
    if Path(args.model).suffix.lower() == ".onnx":
        return _profile_onnx(args)
    if is_run(args.model):
        from convforge.runs.loading import load_trained

        trained = load_trained(args.model)
        model, size = trained.model, from_record(trained.config.get("input_size") or ())
        size = parse_input_size(args.input) if args.input else size
    else:
        size = parse_input_size(args.input) if args.input else default_input_size(args.model, **overrides)
        model = create_model(args.model, **overrides)
    batch_values = (args.batch or 1) * sum(math.prod(shape) for shape in as_shapes(size))
    if batch_values > MAX_INPUT_ELEMENTS:
        shape = shape_text(size)
        raise ConvforgeError(f"--batch {args.batch} of {shape} inputs is {batch_values:,} values, more than the "
                             f"{MAX_INPUT_ELEMENTS:,} convforge profiles at once; lower --batch")  # fmt: skip
    if args.runs is not None and args.runs > MAX_RUNS:
        raise ConvforgeError(f"--runs {args.runs} is more than the {MAX_RUNS:,} latency runs convforge times")
    result = profile(
        model,
        size,
        batch_size=args.batch,
        convention=args.convention,
        latency=args.latency,
        runs=args.runs,
        warmup=args.warmup,
        threads=args.threads,
        name=args.model,
        progress=args.latency,
    )
    if args.format == "json":
        print(result.to_json(per_module=args.per_module))
    elif args.format == "csv":
        print(result.to_csv(per_module=args.per_module, max_depth=args.depth), end="")
    else:
        print(result.summary_table())
        if args.per_module:
            print()
            print(result.module_table(args.depth))
    if args.plot:
        try:
            written = plot_profile(result, args.plot, depth=args.depth or 1)
        except OSError as err:
            raise ConvforgeError(f"could not write the chart to {args.plot!r}: {err.strerror or err}") from err
        print(f"chart written to {written}", file=sys.stderr)
    return 0


def _profile_onnx(args: argparse.Namespace) -> int:
    """Latency of an ONNX file beside its run's PyTorch model and its FP32/INT8 sibling."""
    from convforge.compress.speed_comparison import compare_onnx_file

    batch = args.batch if args.batch > 1 else 64
    comparison = compare_onnx_file(args.model, sorted({1, batch}), args.threads, progress=True)
    if args.format == "json":
        import json

        print(json.dumps(comparison.to_dict(), indent=2))
    else:
        print(comparison.table())
        print(comparison.verdict())
    return 0
