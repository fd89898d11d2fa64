"""``convforge eval CHECKPOINT_OR_RUN --data NAME``: score a trained model on a test split."""

from __future__ import annotations

import argparse

from convforge.cli.arguments import existing_folder
from convforge.tables import format_metric

NAME = "eval"
HELP = "evaluate a trained model"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(NAME, help=HELP, description=__doc__)
    parser.add_argument(
        "checkpoint",
        help="a run directory, a .safetensors checkpoint, or an .onnx file convforge "
        "wrote (run by onnxruntime, printed beside the run's FP32 model)",
    )
    parser.add_argument(
        "--data", help="dataset, or several separated by commas, e.g. set5,set14 (default: the one it was trained on)"
    )
    parser.add_argument("--data-root", type=existing_folder)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--val-subset", type=int, default=0,
                        help="score a seeded random subset of this many examples (default 0: all)")  # fmt: skip
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: cpu; ONNX files run on the CPU)")
    parser.add_argument("--report", action="store_true", help="also print per-class accuracy and write the "
                        "confusion matrix (into a fresh <run>/val folder, or --out)")  # fmt: skip
    parser.add_argument("--out", help="folder for --report's files")
    parser.add_argument("--overwrite", action="store_true", help="replace --report's files already in --out")
    parser.add_argument("--no-ema", action="store_true", help="use the raw weights even when EMA weights exist")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from convforge.engine.trainer import evaluate
    from convforge.runs.loading import has_checkpoint
    from convforge.runs.onnx_model import is_onnx_path, run_directory_of

    names = [n.strip() for n in args.data.split(",") if n.strip()] if args.data else [None]
    sources = [args.checkpoint]
    if is_onnx_path(args.checkpoint):
        run_dir = run_directory_of(args.checkpoint)
        if run_dir is not None and has_checkpoint(run_dir):
            sources.append(run_dir)  # the FP32 PyTorch model it came from
    for name in names:
        for source in sources:
            metrics = evaluate(source, name, data_root=args.data_root, batch_size=args.batch,
                               use_ema=not args.no_ema, val_subset=args.val_subset, device=args.device)  # fmt: skip
            shown = "  ".join(f"{k} {format_metric(k, v)}" for k, v in metrics.items() if k != "count")
            prefix = f"{name}: " if len(names) > 1 else ""
            label = f"{_label(source)}: " if len(sources) > 1 else ""
            print(f"{prefix}{label}{shown}  ({metrics['count']} examples)")
        if args.report:
            from convforge.engine.validation_report import validation_report

            report = validation_report(sources[-1], name, data_root=args.data_root, batch_size=args.batch,
                                       device=args.device, out=args.out, val_subset=args.val_subset,
                                       overwrite=args.overwrite)  # fmt: skip
            print(report.table)
            print(f"wrote {', '.join(p.name for p in report.files)} in {report.folder}")
    return 0


def _label(source) -> str:
    from pathlib import Path

    from convforge.runs.onnx_model import is_onnx_path

    return f"{Path(source).name} (onnxruntime)" if is_onnx_path(source) else "FP32 PyTorch"
