"""``convforge export CHECKPOINT --format onnx``: write the trained model as ONNX and check it in onnxruntime."""

from __future__ import annotations

import argparse

NAME = "export"
HELP = "export a trained model (ONNX) with a parity check"


def add_parser(subparsers) -> None:
    from convforge.engine.export import FORMATS

    parser = subparsers.add_parser(NAME, help=HELP, description=__doc__)
    parser.add_argument("checkpoint", help="a run directory or a .safetensors checkpoint")
    parser.add_argument("--format", choices=FORMATS, default="onnx")
    parser.add_argument("--out", help="output file (default: <run>/export/<model>.onnx)")
    parser.add_argument("--imgsz", type=int, help="square input side for a detector (default: the training size)")
    parser.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --out file that convforge did not export")  # fmt: skip
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from convforge.engine.export import PARITY_TOLERANCE, export

    result = export(args.checkpoint, args.format, args.out, args.imgsz, check=not args.no_check,
                    overwrite=args.overwrite)  # fmt: skip
    shape = "x".join(map(str, result.input_shape))
    print(f"wrote {result.path} (input {shape})")
    if result.parity is None:
        return 0
    verdict = "agrees" if result.parity else "DISAGREES"
    print(f"onnxruntime {verdict} with PyTorch: max |diff| {result.max_abs_diff:.3g}, max |diff| / (1 + |y|) "
          f"{result.max_rel_diff:.3g} (tolerance {PARITY_TOLERANCE:g})")  # fmt: skip
    return 0 if result.parity else 1
