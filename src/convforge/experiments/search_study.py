"""The documented search: NSGA-II against random search on Fashion-MNIST, on an equal trial budget.

Both studies search the same space (``spaces/fashion-mnist.yaml`` by default) under the
same budget: at most SimpleNet cifar_310k's MACs at 28×28. Every trial trains with the
same short recipe. SimpleNet cifar_310k is then trained with that recipe too. Each
study's best trial and SimpleNet are scored on the full 10,000-image test split.

The report gives:
- the Pareto fronts of both studies, and the hypervolume of each (accuracy against MACs
  divided by the budget, reference point (0, 1)) with their ratio;
- whether the best architecture found beats SimpleNet at no more than its MACs, or
  matches it at no more than half of them.

    python -m convforge.experiments.search_study [--trials 30] [--workers 2] [--out docs/search]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import convforge
from convforge.models import get_model_info
from convforge.nas import SearchResult, SearchSpace, TrialRow, search
from convforge.nas.report import _describe, plot_front
from convforge.runs.checkpoint import load_checkpoint
from convforge.runs.run_dir import RunDir
from convforge.tables import human_count, markdown_table

RECIPE: dict[str, Any] = {"epochs": 2, "train_subset": 6000, "val_subset": 2000, "batch_size": 64, "opt": "adamw",
                          "lr": 0.003, "sched": "cosine"}  # fmt: skip
BASELINE = "simplenet_cifar_310k"


def run_study(space: str, trials: int, workers: int, project: str, seed: int) -> dict[str, Any]:
    """Both searches, the baseline, full-test-split scores and the figures; returns what the report needs."""
    baseline_macs = convforge.profile(convforge.create_model(BASELINE, in_chans=1), (1, 28, 28)).macs
    results: dict[str, SearchResult] = {}
    for sampler in ("nsga2", "random"):
        results[sampler] = search(space, "fashion-mnist", trials=trials, sampler=sampler, max_macs=baseline_macs,
                                  workers=workers, study=f"fashion-{sampler}", project=project, seed=seed,
                                  **RECIPE)  # fmt: skip
    baseline_dir = RunDir.path_for(Path(project) / "baseline", get_model_info(BASELINE).task, BASELINE)
    if (baseline_dir / "checkpoints" / "best.safetensors").is_file():  # trained by an earlier run of this study
        from convforge.runs.loading import load_trained

        baseline_model = load_trained(baseline_dir).model
        baseline_val = load_checkpoint(baseline_dir / "checkpoints" / "best.safetensors").meta["best"]["val_top1"]
    else:
        baseline = convforge.train(BASELINE, "fashion-mnist", model_kwargs={"in_chans": 1},
                                   project=f"{project}/baseline", name=BASELINE, progress=False, seed=seed,
                                   **RECIPE)  # fmt: skip
        baseline_model, baseline_val = baseline.model, baseline.best()["val_top1"]
        baseline_dir = baseline.run_dir
    baseline_val /= 100
    baseline_latency = convforge.profile(baseline_model, (1, 28, 28), latency=True, runs=30, warmup=5, threads=1)
    scores = {"baseline": convforge.evaluate(baseline_dir, "fashion-mnist")["top1"] / 100}
    for sampler, result in results.items():
        best = result.best
        if best is not None:
            scores[sampler] = test_accuracy(best)
    return {"results": results, "baseline_macs": baseline_macs, "baseline_val": baseline_val,
            "baseline_params": sum(p.numel() for p in baseline_model.parameters()),
            "space_size": SearchSpace.load(space).size, "space": space, "seed": seed,
            "baseline_latency": baseline_latency.latency.median_ms, "test": scores}  # fmt: skip


def test_accuracy(row: TrialRow) -> float:
    """Top-1 (0–1) on the full test split of a trial's best checkpoint (its run rebuilds from its spec file)."""
    return convforge.evaluate(row.run_dir, "fashion-mnist")["top1"] / 100


def confirm(study: dict[str, Any], project: str, epochs: int, seed: int) -> list[tuple[str, int, float]]:
    """Retrain each study's best architecture and the baseline for ``epochs`` on the full training split, with the
    trial recipe otherwise; (name, MACs, full-test top-1 in 0–1) for each."""
    recipe = {**RECIPE, "epochs": epochs, "train_subset": 0, "val_subset": 0}
    runs: list[tuple[str, Any, int]] = [(BASELINE, BASELINE, study["baseline_macs"])]
    for sampler, result in study["results"].items():
        if result.best is not None:
            runs.append((f"{sampler} trial {result.best.number}", result.best.spec, result.best.macs))
    rows = []
    for label, model, macs in runs:
        built = (convforge.create_model(model, in_chans=1) if isinstance(model, str)
                 else convforge.spec.build_spec(model))  # fmt: skip
        result = convforge.train(built, "fashion-mnist", project=f"{project}/confirm",
                                 name=label.replace(" ", "_"), progress=False, seed=seed, **recipe)  # fmt: skip
        rows.append((label, macs, result.last["val_top1"] / 100))
    return rows


def verdict(best: TrialRow, best_test: float, baseline_test: float, baseline_macs: int) -> str:
    """The issue's question, answered from the test-split scores."""
    if best_test > baseline_test and best.macs <= baseline_macs:
        return (f"beats {BASELINE} ({100 * best_test:.2f} % against {100 * baseline_test:.2f} %) at "
                f"{best.macs / baseline_macs:.0%} of its MACs")  # fmt: skip
    if best_test >= baseline_test - 0.001 and best.macs <= baseline_macs / 2:
        return f"matches {BASELINE} within 0.1 point at {best.macs / baseline_macs:.0%} of its MACs"
    return (f"does not beat {BASELINE} ({100 * best_test:.2f} % against {100 * baseline_test:.2f} %, at "
            f"{best.macs / baseline_macs:.0%} of its MACs)")  # fmt: skip


def write_report(study: dict[str, Any], out: str | Path, trials: int, workers: int) -> Path:
    """``<out>/../search.md`` and the plots in ``<out>``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results, test = study["results"], study["test"]
    extra = {f"{BASELINE} (val)": (study["baseline_val"], study["baseline_macs"], study["baseline_latency"])}
    for sampler, result in results.items():
        plot_front(result, out / f"{sampler}.png", extra=extra,
                   title=f"{sampler}: {trials} trials, hypervolume {result.hypervolume:.4f}")  # fmt: skip
    hv = {s: r.hypervolume for s, r in results.items()}
    rows = []
    for sampler, result in results.items():
        pruned = sum(r.state == "pruned" for r in result.rows)
        best = result.best
        rows.append((sampler, len(result.rows), pruned, len(result.front), f"{result.hypervolume:.4f}",
                     f"{100 * best.top1:.2f}" if best else "", f"{100 * test.get(sampler, 0):.2f}" if best else "",
                     human_count(best.macs) if best else ""))  # fmt: skip
    lines = [
        "# Architecture search on Fashion-MNIST: NSGA-II against random search",
        "",
        f"Command: `python -m convforge.experiments.search_study --trials {trials} --workers {workers}`.",
        "",
        f"- **Space:** `{study['space']}` ({study['space_size']:,} architectures): a 3×3 "
        "stem, three stages with choices of width, depth, kernel, expansion, branch type (inverted bottleneck, "
        "with SE, with ECA, or plain conv) and residual layout (sequential or parallel), and an optional head.",
        f"- **Budget:** at most {human_count(study['baseline_macs'])} MACs at 1×28×28, the cost of {BASELINE}. "
        "Trials over it are pruned before training and count toward the trial budget.",
        f"- **Trial recipe:** {RECIPE['epochs']} epochs on {RECIPE['train_subset']} training images, validated on "
        f"{RECIPE['val_subset']} test images, AdamW {RECIPE['lr']}, cosine. {BASELINE} was trained the same way.",
        f"- **Equal budgets:** {trials} trials per study, {workers} worker process(es), seed {study['seed']}.",
        "",
        markdown_table(
            [
                "sampler",
                "trials",
                "pruned",
                "front size",
                "hypervolume",
                "best val top-1 %",
                "its test top-1 %",
                "its MACs",
            ],
            rows,
        ),  # fmt: skip
        "",
        f"**Hypervolume ratio, NSGA-II / random: {hv['nsga2'] / hv['random']:.3f}.**" if hv["random"] else "",
        "",
        f"{BASELINE}: {100 * study['baseline_val']:.2f} % on the validation subset, **{100 * test['baseline']:.2f} %** "
        f"on the full test split, {human_count(study['baseline_macs'])} MACs, {study['baseline_params']:,} params.",
        "",
    ]
    for sampler, result in results.items():
        if result.best is None:
            continue
        lines += [f"**{sampler}: the best architecture found "
                  f"{verdict(result.best, test[sampler], test['baseline'], study['baseline_macs'])}.** "
                  f"It is trial {result.best.number}: {_describe(result.best.architecture)}.", ""]  # fmt: skip
    for sampler, result in results.items():
        lines += [f"## {sampler}: Pareto front", "", f"![{sampler}]({out.name}/{sampler}.png)", "",
                  markdown_table(["trial", "val top-1 %", "MACs", "params", "latency ms", "architecture"],
                                 [(r.number, f"{100 * r.top1:.2f}", human_count(r.macs), f"{r.params:,}",
                                   f"{r.latency_ms:.2f}", _describe(r.architecture)) for r in result.front]),
                  ""]  # fmt: skip
    if study.get("confirm"):
        epochs = study["confirm_epochs"]
        lines += ["## A longer, equal training for the winners and the baseline", "",
                  f"Each retrained from scratch for {epochs} epochs on all 60,000 training images (the trial recipe "
                  "otherwise), scored on the full test split:", "",
                  markdown_table(["network", "MACs", "test top-1 %"],
                                 [(n, human_count(m), f"{100 * a:.2f}") for n, m, a in study["confirm"]]),
                  ""]  # fmt: skip
    report = out.parent / "search.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="spaces/fashion-mnist.yaml")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--project", default="runs/search-study")
    parser.add_argument("--out", default="docs/search")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--confirm-epochs",
        type=int,
        default=0,
        help="then retrain the winners and the baseline this long on all the data (0: skip)",
    )
    args = parser.parse_args()
    study = run_study(args.space, args.trials, args.workers, args.project, args.seed)
    if args.confirm_epochs:
        study["confirm"] = confirm(study, args.project, args.confirm_epochs, args.seed)
        study["confirm_epochs"] = args.confirm_epochs
    print(f"report: {write_report(study, args.out, args.trials, args.workers)}")


if __name__ == "__main__":
    main()
