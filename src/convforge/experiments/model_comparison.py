"""Train several models with one recipe and compare them: params, MACs, latency, accuracy, time.

This is convforge's main job, the one ``make demo`` runs. Every model is trained by
:func:`convforge.train` on the same data and recipe; then each is profiled at its
input size (MACs in the ``macs`` convention, CPU latency at batch 1) and scored on
the full test split. The result is a table and a plot of accuracy against MACs.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from convforge.atomic import write_text_atomic
from convforge.engine.recipe import Recipe
from convforge.engine.trainer import train
from convforge.errors import ConvforgeError
from convforge.figures import pyplot, save_figure
from convforge.models import get_model_info
from convforge.overrides import parse_overrides
from convforge.profiler import profile
from convforge.tables import human_count, text_table

_SPEC = re.compile(r"^(?P<name>[^\[\]]+?)(?:\[(?P<overrides>[^\[\]]*)\])?$")


@dataclass
class ModelSpec:
    """A model name with optional overrides, written ``name[key=value,...]``.

    Keys that are recipe fields (``epochs=1``) change that model's recipe; the others
    go to the model's builder (``width=0.5``).
    """

    name: str
    overrides: dict[str, Any]

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        match = _SPEC.match(text.strip())
        if match is None:
            raise ConvforgeError(f"model {text!r} is not of the form name or name[key=value,...]")
        pairs = [p for p in (match["overrides"] or "").split(",") if p.strip()]
        return cls(match["name"], parse_overrides([p.strip() for p in pairs]))

    def split(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(recipe overrides, model overrides)."""
        recipe_fields = set(Recipe.field_names(get_model_info(self.name).task))
        recipe = {k: v for k, v in self.overrides.items() if k in recipe_fields}
        return recipe, {k: v for k, v in self.overrides.items() if k not in recipe_fields}

    @property
    def label(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in self.overrides.items())
        return f"{self.name}[{extra}]" if extra else self.name


@dataclass
class ComparisonRow:
    """One trained model's figures."""

    model: str
    params: int
    macs: int
    latency_ms: float
    score: float  # the task's primary metric at the best epoch: top-1 (%), PSNR (dB), mAP50, accuracy (%), ...
    metric: str
    train_time_s: float
    epochs: int
    run_dir: str


def compare_models(
    models: list[str],
    data: str = "fashion-mnist",
    latency_runs: int = 30,
    progress: bool = True,
    **recipe: Any,
) -> tuple[list[ComparisonRow], Path]:
    """Train each model spec on ``data`` with the same ``recipe`` fields, then measure it.

    Returns the rows (the best epoch's validation score under the task's primary metric:
    classification's top-1 in %, on the whole test split unless ``val_subset`` is set;
    latency in ms at batch 1; MACs in the ``macs`` convention) and the folder holding
    ``comparison.csv``, ``comparison.json`` and ``accuracy_vs_macs.png``.
    """
    if not models:
        raise ConvforgeError("name at least one model to compare")
    specs = [ModelSpec.parse(m) for m in models]
    tasks = {spec.name: get_model_info(spec.name).task for spec in specs}
    if len(set(tasks.values())) > 1:
        listed = ", ".join(f"{name} ({task})" for name, task in tasks.items())
        raise ConvforgeError(f"compare trains its models on one dataset, so they must share a task: {listed}")
    rows: list[ComparisonRow] = []
    resolved = Recipe.from_sources(recipe.get("recipe"), data=data,
                                   **{k: v for k, v in recipe.items() if k != "recipe"})  # fmt: skip
    project = resolved.project  # validated once, before any model trains
    for spec in specs:
        print(f"\n== {spec.label}", flush=True)
        recipe_overrides, model_overrides = spec.split()
        result = train(spec.name, data, model_kwargs=model_overrides, progress=progress,
                       **{**recipe, **recipe_overrides})  # fmt: skip
        measured = profile(result.model, result.input_size, latency=True, runs=latency_runs, warmup=5,
                           name=spec.label)  # fmt: skip
        best = result.best()
        rows.append(
            ComparisonRow(
                model=spec.label,
                params=measured.params,
                macs=measured.macs,
                latency_ms=measured.latency.median_ms,
                score=best[f"val_{result.primary_metric}"],
                metric=result.primary_metric,
                train_time_s=sum(r["epoch_time_s"] for r in result.metrics),
                epochs=len(result.metrics),
                run_dir=str(result.run_dir),
            )
        )
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports
        return rows, Path(project)
    out = Path(project) / "compare" / (Path(data).name if Path(data).is_dir() else data)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "comparison.csv", to_csv(rows))
    write_text_atomic(out / "comparison.json", json.dumps([asdict(r) for r in rows], indent=2))
    plot_accuracy_vs_macs(rows, out / "accuracy_vs_macs.png",
                          title=f"{data}: {metric_label(rows[0].metric)} against MACs")  # fmt: skip
    return rows, out


def metric_label(metric: str) -> str:
    """How a table and a plot name a primary metric (classification validates on the test split)."""
    return {"top1": "test top-1 (%)", "psnr": "val PSNR (dB)", "accuracy": "val accuracy (%)"}.get(
        metric, f"val {metric}"
    )


def comparison_table(rows: list[ComparisonRow]) -> str:
    """The rows as a text table, best score first."""
    ordered = sorted(rows, key=lambda r: -r.score)
    return text_table(
        [
            "model",
            "params",
            "MACs",
            "CPU latency",
            metric_label(rows[0].metric if rows else "top1"),
            "train time",
            "epochs",
        ],
        [
            (
                r.model,
                human_count(r.params),
                human_count(r.macs),
                f"{r.latency_ms:.2f} ms",
                f"{r.score:.2f}",
                f"{r.train_time_s:.0f} s",
                r.epochs,
            )  # fmt: skip
            for r in ordered
        ],
        align="lrrrrrr",
    )


def to_csv(rows: list[ComparisonRow]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(asdict(rows[0])))
    writer.writeheader()
    writer.writerows(asdict(r) for r in rows)
    return buffer.getvalue()


def plot_accuracy_vs_macs(rows: list[ComparisonRow], path: Path, title: str = "") -> Path:
    """Scatter of the score (test top-1 in %, ...) against MACs (log scale), one labelled point per model."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    for r in rows:
        ax.scatter(r.macs, r.score, s=40 + r.params / 2e4, alpha=0.8)
        ax.annotate(f"{r.model}\n{human_count(r.params)} params, {r.latency_ms:.1f} ms", (r.macs, r.score),
                    textcoords="offset points", xytext=(6, 4), fontsize=8)  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("MACs per example (log scale)")
    ax.set_ylabel(metric_label(rows[0].metric) if rows else "score")
    ax.grid(alpha=0.3, which="both")
    ax.margins(x=0.4, y=0.2)
    if title:
        ax.set_title(title)
    return save_figure(fig, path, dpi=110)
