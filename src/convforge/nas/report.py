"""What a search found: every trial, the Pareto front of accuracy against MACs, its hypervolume, a plot, and the
front's architectures written as spec files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from convforge.nas.pareto import hypervolume, pareto_front
from convforge.tables import human_count, markdown_table


@dataclass
class TrialRow:
    """One finished trial: accuracy (0–1) when trained, its measurements, and its architecture."""

    number: int
    state: str  # complete, pruned
    top1: float | None
    params: int
    macs: int
    latency_ms: float
    architecture: dict[str, Any]
    spec: dict[str, Any]
    pruned_because: str = ""
    run_dir: str = ""


@dataclass
class SearchResult:
    """A study's outcome; ``front`` is sorted by MACs."""

    study: str
    rows: list[TrialRow]
    front: list[TrialRow]
    hypervolume: float  # of (accuracy, MACs / reference_macs) against (0, 1)
    reference_macs: float
    spec_paths: list[Path] = field(default_factory=list)
    table_path: Path | None = None
    plot_path: Path | None = None

    @property
    def best(self) -> TrialRow | None:
        """The most accurate trained architecture."""
        return self.front[-1] if self.front else None


def collect(study, limit: int | None = None) -> list[TrialRow]:
    """The completed and pruned trials of an Optuna study, in trial order; the first ``limit`` of them when given
    (workers running at once may finish a few more than the budget)."""
    import optuna

    rows = []
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    for trial in study.get_trials(deepcopy=False, states=states):
        attrs = trial.user_attrs
        if "macs" not in attrs:
            continue
        rows.append(TrialRow(trial.number, trial.state.name.lower(), attrs.get("top1"), int(attrs["params"]),
                             int(attrs["macs"]), float(attrs["latency_ms"]), attrs["architecture"], attrs["spec"],
                             attrs.get("pruned_because", ""), attrs.get("run_dir", "")))  # fmt: skip
    return rows[:limit] if limit else rows


def summarise(study_name: str, rows: list[TrialRow], reference_macs: float | None = None) -> SearchResult:
    """Front and hypervolume of trained trials; MACs are divided by ``reference_macs`` (default: the largest seen)."""
    trained = [r for r in rows if r.top1 is not None]
    reference = reference_macs or max((r.macs for r in trained), default=1) * 1.0
    points = [(r.top1, r.macs / reference) for r in trained]
    front = [trained[i] for i in pareto_front(points)]
    return SearchResult(study_name, rows, front, hypervolume(points, (0.0, 1.0)), reference)


def write_report(result: SearchResult, out: str | Path) -> SearchResult:
    """Write ``pareto.md``, ``pareto.png`` and ``best/trial_<n>.yaml`` (one spec per front member) under ``out``."""
    out = Path(out)
    (out / "best").mkdir(parents=True, exist_ok=True)
    result.spec_paths = []
    for row in result.front:
        path = out / "best" / f"trial_{row.number}.yaml"
        header = (f"# trial {row.number} of search {result.study}: top-1 {100 * row.top1:.2f} %, "
                  f"{human_count(row.macs)} MACs, {row.params:,} params\n")  # fmt: skip
        path.write_text(header + yaml.safe_dump(row.spec, sort_keys=False, default_flow_style=None))
        result.spec_paths.append(path)
    result.table_path = out / "pareto.md"
    result.table_path.write_text(front_table(result) + "\n")
    result.plot_path = plot_front(result, out / "pareto.png")
    return result


def front_table(result: SearchResult) -> str:
    """The Pareto front as a markdown table."""
    rows = [(r.number, f"{100 * r.top1:.2f}", human_count(r.macs), f"{r.params:,}", f"{r.latency_ms:.2f}",
             _describe(r.architecture)) for r in result.front]  # fmt: skip
    return markdown_table(["trial", "top-1 %", "MACs", "params", "latency ms", "architecture"], rows)


def front_table_text(result: SearchResult) -> str:
    """The Pareto front as an aligned text table for the terminal."""
    from convforge.tables import text_table

    rows = [(r.number, f"{100 * r.top1:.2f}", human_count(r.macs), f"{r.params:,}", f"{r.latency_ms:.2f}",
             _describe(r.architecture)) for r in result.front]  # fmt: skip
    return text_table(["trial", "top-1 %", "MACs", "params", "latency ms", "architecture"], rows,
                      align="rrrrrl")  # fmt: skip


def _describe(architecture: dict[str, Any]) -> str:
    stages = sorted({k.split(".")[0] for k in architecture if k.startswith("stage")})
    parts = [f"stem {architecture['stem']}"]
    for s in stages:
        a = {k.split(".")[1]: v for k, v in architecture.items() if k.startswith(s + ".")}
        parts.append(f"{a['width']}×{a['depth']} {a['block']} k{a['kernel']} e{a['expansion']} {a['layout'][:3]}")
    if architecture.get("head"):
        parts.append(f"head {architecture['head']}")
    return " / ".join(parts)


def plot_front(result: SearchResult, path: str | Path, extra: dict[str, tuple[float, float, float]] | None = None,
               title: str = "") -> Path:  # fmt: skip
    """Accuracy against MACs and against latency: every trained trial, the front joined. ``extra`` adds labelled
    reference points {label: (top1, macs, latency_ms)}."""
    from convforge.figures import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    trained = [r for r in result.rows if r.top1 is not None]
    for ax, key, label in ((axes[0], "macs", "MACs (batch 1)"), (axes[1], "latency_ms", "CPU latency, ms")):
        ax.scatter([getattr(r, key) for r in trained], [100 * r.top1 for r in trained], s=14, color="0.6",
                   label="trained trials")  # fmt: skip
        # each panel's own front: the trials no other beats in both accuracy and this cost
        front = [trained[i] for i in pareto_front([(r.top1, getattr(r, key)) for r in trained])]
        ax.plot([getattr(r, key) for r in front], [100 * r.top1 for r in front], "-o", color="C3", markersize=5,
                label=f"Pareto front (accuracy vs {'MACs' if key == 'macs' else 'latency'})")  # fmt: skip
        for name, (top1, macs, latency) in (extra or {}).items():
            ax.scatter([macs if key == "macs" else latency], [100 * top1], marker="*", s=120, label=name, zorder=3)
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("validation top-1 (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or f"search {result.study}: hypervolume {result.hypervolume:.3f}")
    return save_figure(fig, path, dpi=100)
