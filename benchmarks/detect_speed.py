"""CPU latency of LeYOLO detectors: PyTorch eager against onnxruntime, in the same run.

For each model and input (leyolo_nano at 320, leyolo_small at 640 by default), three
forms run the same batch-1 input, round by round in turn:

- ``eager``: the model as built (BatchNorm separate), ``torch.no_grad``;
- ``eager fused``: ``convforge.fuse_bn`` of it (every BatchNorm folded), and the same in
  channels-last memory format;
- ``onnxruntime``: the model exported by ``convforge.engine.export.export_onnx`` and run
  by onnxruntime's CPU provider, with as many threads as torch uses.

Each figure is the median over rounds of one forward pass including the head's box
decoding (no NMS). Prints the times and their ratios to eager.

    python benchmarks/detect_speed.py [--rounds 30] [--models leyolo_nano@320,leyolo_small@640]

A model is a registered name or a spec file (``specs/leyolo_nano_uib.yaml@320``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

import convforge
from convforge.engine.export import export_onnx
from convforge.tables import text_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--models", default="leyolo_nano@320,leyolo_small@640")
    args = parser.parse_args()
    import onnxruntime

    threads = torch.get_num_threads()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for entry in args.models.split(","):
            name, size = entry.split("@")
            torch.manual_seed(0)
            model = convforge.create_model(name).eval()
            x = torch.rand(1, 3, int(size), int(size))
            exported = export_onnx(model, Path(folder) / f"{Path(name).stem}.onnx", tuple(x.shape))
            session = onnxruntime.InferenceSession(str(exported.path), options, providers=["CPUExecutionProvider"])
            fused, feed = convforge.fuse_bn(model), {"images": x.numpy()}
            fused_nhwc = convforge.fuse_bn(model).to(memory_format=torch.channels_last)
            x_nhwc = x.contiguous(memory_format=torch.channels_last)
            forms = {
                "eager": lambda m=model, x=x: m(x),
                "eager fused": lambda m=fused, x=x: m(x),
                "eager fused channels-last": lambda m=fused_nhwc, x=x_nhwc: m(x),
                "onnxruntime": lambda s=session, feed=feed: s.run(None, feed),
            }
            times: dict[str, list[float]] = {form: [] for form in forms}
            with torch.no_grad():
                for run in forms.values():  # warm-up
                    run()
                    run()
                for _ in range(args.rounds):
                    for form, run in forms.items():
                        start = time.perf_counter()
                        run()
                        times[form].append(time.perf_counter() - start)
            base = statistics.median(times["eager"])
            for form, values in times.items():
                ms = statistics.median(values) * 1e3
                spread = (statistics.quantiles(values, n=4)[2] - statistics.quantiles(values, n=4)[0]) * 1e3
                rows.append((f"{name}@{size}", form, f"{ms:.1f}", f"{spread:.1f}", f"{ms / (base * 1e3):.2f}"))
            print(f"{name}@{size}: onnx parity max |diff| / (1 + |y|) = {exported.max_rel_diff:.2e}")
    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {threads} threads, "
          f"{args.rounds} rounds, batch 1")  # fmt: skip
    print(text_table(["model", "form", "median ms", "IQR ms", "time / eager"], rows, align="llrrr"))


if __name__ == "__main__":
    main()
