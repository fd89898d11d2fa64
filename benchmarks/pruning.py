"""Structured pruning on CIFAR-10: is pruning (+ distillation) better than training a small network?

In one run on this machine:

1. a dense ResNet-20 trained for E epochs;
2. that model pruned to 0.5× MACs with magnitude (L2), Taylor and random importance, each fine-tuned
   F epochs without and with distillation from the dense model;
3. a ResNet-20 narrowed (width multiplier) to the same MACs, trained from scratch for E + F epochs.

For each: test top-1 on the full CIFAR-10 test split, parameters, MACs, and latency at
batch 1 and 64 (median of timed runs, all in this process), with the MACs reduction next to
the latency reduction. Torch-Pruning's published ResNet-56 figures are printed beside ours
for reference; they come from a far longer budget (hundreds of epochs), not this one.

    python benchmarks/pruning.py [--epochs 8] [--finetune 3] [--train-subset 20000] [--data-root DIR]
    python benchmarks/pruning.py --project DIR --reuse   # measure the runs an earlier call left in DIR
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

import convforge
from convforge.compress.prune_run import prune_run
from convforge.profiler import count_macs, measure_latency
from convforge.runs.loading import load_trained
from convforge.tables import text_table

PUBLISHED = "Torch-Pruning, ResNet-56 on CIFAR-10 (93.53 % dense): 2.11× fewer MACs, −0.07 points (no sparse training)"
NARROW_WIDTH = 0.71  # ResNet-20 at this width has 0.496× the MACs of the full one


LATENCY_ROUNDS = 5  # every model is timed once per round, in turn, so that machine noise hits all alike


def latencies(models: list[torch.nn.Module], batch: int) -> list[float]:
    """Median over rounds of each model's median latency in ms at ``batch``, the models timed in turn."""
    x = torch.randn(batch, 3, 32, 32)
    runs = 20 if batch == 1 else 5
    rounds = [[measure_latency(m, (x,), runs=runs, warmup=2).median_ms for m in models] for _ in range(LATENCY_ROUNDS)]
    return [statistics.median(r[i] for r in rounds) for i in range(len(models))]


def runs_to_measure(args: argparse.Namespace, project: str) -> list[tuple[str, Path, float]]:
    """Train (or, with --from, find) every model of the comparison: (label, run directory, seconds spent)."""
    common = dict(data="cifar10", data_root=args.data_root, train_subset=args.train_subset, project=project,
                  progress=False)  # fmt: skip
    variants = [(imp, kd) for imp in ("l2", "taylor", "random") for kd in (False, True)]
    labels = [f"dense ResNet-20, {args.epochs} epochs"]
    labels += [f"pruned {imp}{' + KD' if kd else ''}, +{args.finetune} epochs" for imp, kd in variants]
    labels += [f"narrow ResNet-20 (width {NARROW_WIDTH}), {args.epochs + args.finetune} epochs from scratch"]
    names = ["dense"] + [f"{imp}{'-kd' if kd else ''}" for imp, kd in variants] + ["narrow"]
    if args.reuse:
        return [(label, Path(project) / "classify" / name, 0.0) for label, name in zip(labels, names)]
    out = []
    t = time.perf_counter()
    dense = convforge.train("resnet20", epochs=args.epochs, name="dense", **common)
    out.append((labels[0], dense.run_dir, time.perf_counter() - t))
    for (importance, kd), label, name in zip(variants, labels[1:], names[1:]):
        t = time.perf_counter()
        outcome = prune_run(dense.run_dir, "macs=0.5", importance, finetune_epochs=args.finetune, kd=kd, name=name,
                            progress=False)  # fmt: skip
        out.append((label, outcome.run_dir, time.perf_counter() - t))
        print(f"{label}: done ({out[-1][2]:.0f} s)", flush=True)
    t = time.perf_counter()
    narrow = convforge.train("resnet20", epochs=args.epochs + args.finetune, name="narrow",
                             model_kwargs={"width": NARROW_WIDTH}, **common)  # fmt: skip
    out.append((labels[-1], narrow.run_dir, time.perf_counter() - t))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8, help="dense training epochs E")
    parser.add_argument("--finetune", type=int, default=3, help="fine-tuning epochs F")
    parser.add_argument("--train-subset", type=int, default=20000, help="training examples (0 = all 50000)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--project", default=None, help="where runs go (default: a temporary folder)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the runs an earlier call left in --project instead of training them",
    )
    args = parser.parse_args()
    if args.reuse and not args.project:
        parser.error("--reuse needs --project")
    project = args.project or tempfile.mkdtemp(prefix="convforge-pruning-")
    started = time.perf_counter()
    runs = runs_to_measure(args, project)
    models = [load_trained(run_dir).model.eval() for _, run_dir, _ in runs]
    top1 = [convforge.evaluate(run_dir, data_root=args.data_root)["top1"] for _, run_dir, _ in runs]
    macs = [count_macs(m, (3, 32, 32)) for m in models]
    params = [sum(p.numel() for p in m.parameters()) for m in models]
    lat1, lat64 = latencies(models, 1), latencies(models, 64)
    table = []
    for i, (label, _, seconds) in enumerate(runs):
        table.append((label, f"{top1[i]:.2f}", f"{top1[i] - top1[0]:+.2f}", f"{params[i] / 1e3:.1f} K",
                      f"{macs[i] / 1e6:.2f} M", f"{macs[0] / macs[i]:.2f}×", f"{lat1[i]:.2f}",
                      f"{lat1[0] / lat1[i]:.2f}×", f"{lat64[i]:.1f}", f"{lat64[0] / lat64[i]:.2f}×",
                      f"{seconds:.0f}" if seconds else "-"))  # fmt: skip
    headers = ["model", "top1 %", "Δ points", "params", "MACs", "MACs ↓", "ms b1", "latency ↓ b1", "ms b64",
               "latency ↓ b64", "train s"]  # fmt: skip
    print()
    print(f"CIFAR-10, {args.train_subset or 50000} training images, test on 10000; {torch.get_num_threads()} threads; "
          f"latency: median of {LATENCY_ROUNDS} rounds, models timed in turn")  # fmt: skip
    print(text_table(headers, table))
    print(f"published (different budget): {PUBLISHED}")
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
