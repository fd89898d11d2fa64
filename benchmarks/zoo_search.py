"""A search over the block zoo on CIFAR-10, and what each branch type did in it.

Runs (or resumes) ``convforge.search`` on ``spaces/cifar10-zoo.yaml`` under a MACs budget, then prints:

- the Pareto front of validation accuracy against MACs;
- per branch type: the trials that used it in any stage, how many were pruned by the budget, and the best and
  mean accuracy of the trained ones;
- the re-parameterisable trials (RepVGG, MobileOne) whose trained form would have broken the budget, which the
  search admitted because budgets are checked on the inference form.

    CONVFORGE_DATA=../shared/data .venv/bin/python benchmarks/zoo_search.py --trials 40 --workers 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import convforge
from convforge.nas.space import SearchSpace
from convforge.spec import build_spec
from convforge.tables import markdown_table

SPACE = Path(__file__).resolve().parents[1] / "spaces" / "cifar10-zoo.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-macs", type=float, default=20e6)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-subset", type=int, default=5000)
    parser.add_argument("--val-subset", type=int, default=2000)
    parser.add_argument("--project", default="runs/zoo-search")
    args = parser.parse_args()
    started = time.perf_counter()
    result = convforge.search(
        str(SPACE), data="cifar10", trials=args.trials, sampler="nsga2", max_macs=int(args.max_macs),
        workers=args.workers, project=args.project, epochs=args.epochs, train_subset=args.train_subset,
        val_subset=args.val_subset, opt="adamw", lr=0.003, batch_size=128, progress=False,
    )  # fmt: skip
    minutes = (time.perf_counter() - started) / 60
    space = SearchSpace.load(SPACE)
    blocks = space.choices["stage0.block"]
    print(f"{result.study}: {len(result.rows)} trials in {minutes:.1f} min; budget {args.max_macs / 1e6:g} M MACs "
          f"(inference form); hypervolume {result.hypervolume:.4f}")  # fmt: skip

    front = [(r.number, f"{r.top1 * 100:.2f}", f"{r.macs / 1e6:.2f}", f"{r.params:,}", f"{r.latency_ms:.2f}",
              " / ".join(r.architecture[f"stage{i}.block"] for i in range(space.stage_count)))
             for r in result.front]  # fmt: skip
    print("\nPareto front\n")
    print(markdown_table(["trial", "val top-1 %", "MMACs", "params", "ms", "branches"], front))

    rows = []
    for block in blocks:
        used = [r for r in result.rows
                if block in (r.architecture[f"stage{i}.block"] for i in range(space.stage_count))]  # fmt: skip
        trained = [r.top1 * 100 for r in used if r.state == "complete"]
        pruned = sum(r.state == "pruned" for r in used)
        rows.append((block, len(used), pruned, len(trained), f"{max(trained):.2f}" if trained else "–",
                     f"{statistics.mean(trained):.2f}" if trained else "–"))  # fmt: skip
    print("\nBranch types (a trial counts for every type it uses)\n")
    print(markdown_table(["branch", "trials", "pruned", "trained", "best %", "mean %"], rows))

    admitted = []
    for r in result.rows:
        uses = {r.architecture[f"stage{i}.block"] for i in range(space.stage_count)}
        if r.state != "complete" or not uses & {"repvgg", "mobileone"}:
            continue
        trained_macs = convforge.profile(build_spec(r.spec), tuple(r.spec["input_size"])).macs
        if trained_macs > args.max_macs >= r.macs:
            admitted.append((r.number, f"{trained_macs / 1e6:.2f}", f"{r.macs / 1e6:.2f}", f"{r.top1 * 100:.2f}"))
    print(f"\nRe-parameterisable trials over the budget in their trained form, admitted in their inference form: "
          f"{len(admitted)}\n")  # fmt: skip
    if admitted:
        print(markdown_table(["trial", "trained MMACs", "inference MMACs", "val top-1 %"], admitted))


if __name__ == "__main__":
    main()
