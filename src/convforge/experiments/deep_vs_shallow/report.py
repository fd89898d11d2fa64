"""Tables and plots of the deep-versus-shallow study.

- The Q table, in the form the paper published: mean training and validation
  cross-entropy per interval of the determination ratio Q (training samples × outputs
  per parameter), per dataset and layout, with the published values below ours.
- Paired differences (parallel − sequential) for every configuration, over its seeds,
  and per dataset over all configurations, with 95 % confidence intervals (Student t).
- Plots: validation loss of the sequential against the parallel layout with y = x, and
  loss against Q.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convforge.atomic import write_text_atomic
from convforge.experiments.deep_vs_shallow.grid import pair_key
from convforge.figures import pyplot, save_figure
from convforge.tables import text_table

Q_BINS: tuple[tuple[float, float, str], ...] = (
    (0.0, 1.0, "Q < 1"),
    (1.0, 3.0, "1 ≤ Q < 3"),
    (3.0, 10.0, "3 ≤ Q < 10"),
    (10.0, math.inf, "Q ≥ 10"),
)

# Mean cross-entropy (train, validation) per Q interval, as published (Bermeitinger et al., 2023).
PUBLISHED: dict[tuple[str, str], tuple[tuple[float, float], ...]] = {
    ("mnist", "sequential"): ((0.00013, 0.05201), (0.01702, 0.12449), (0.03620, 0.11743), (0.11246, 0.13550)),
    ("mnist", "parallel"): ((0.00009, 0.07551), (0.02679, 0.11468), (0.05238, 0.11467), (0.13310, 0.14900)),
    ("cifar10", "sequential"): ((0.25326, 2.03107), (0.72510, 1.31691), (1.07333, 1.34721), (1.58608, 1.65354)),
    ("cifar10", "parallel"): ((0.52658, 1.32386), (0.88701, 1.24884), (1.17085, 1.34227), (1.63449, 1.68879)),
}


def trial_rows(trials: Iterable[Any]) -> list[dict[str, Any]]:
    """Flat rows (configuration and result) of the completed Optuna trials of a study, one per configuration."""
    rows: dict[str, dict[str, Any]] = {}
    for trial in trials:
        attrs = trial.user_attrs
        if trial.state.name == "COMPLETE" and "result" in attrs and attrs["key"] not in rows:
            rows[attrs["key"]] = {**attrs["config"], **attrs["result"], "key": attrs["key"]}
    return list(rows.values())


def q_bin(q: float) -> int:
    """The index of the Q interval that holds ``q``."""
    return next(i for i, (low, high, _) in enumerate(Q_BINS) if low <= q < high)


def _cell(pairs: list[tuple[float, float]]) -> str:
    if not pairs:
        return "–"
    train = statistics.fmean(p[0] for p in pairs)
    val = statistics.fmean(p[1] for p in pairs)
    return f"{train:.5f} / {val:.5f} (n={len(pairs)})"


def q_table(rows: list[dict[str, Any]], published: bool = True) -> str:
    """Mean train / validation loss per Q interval, per dataset and layout (the published table's form)."""
    cells: dict[tuple[str, str], list[list[tuple[float, float]]]] = defaultdict(lambda: [[] for _ in Q_BINS])
    for row in rows:
        cells[(row["data"], row["layout"])][q_bin(row["q"])].append((row["train_loss"], row["val_loss"]))
    lines = [
        (data, layout, *(_cell(c) for c in bins))
        for (data, layout), bins in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1] != "sequential"))
    ]
    if published:
        for data in sorted({k[0] for k in cells}):
            for layout in ("sequential", "parallel"):
                if (data, layout) in PUBLISHED:
                    values = PUBLISHED[(data, layout)]
                    lines.append((f"{data} (published)", layout, *(f"{t:.5f} / {v:.5f}" for t, v in values)))
    return text_table(["data", "layout", *(b[2] for b in Q_BINS)], lines, align="ll" + "l" * len(Q_BINS))


@dataclass
class Difference:
    """A mean paired difference (parallel − sequential) with its 95 % confidence interval."""

    mean: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        if self.n < 2:
            return f"{self.mean:+.4f}"
        return f"{self.mean:+.4f} [{self.low:+.4f}, {self.high:+.4f}]"


def mean_difference(values: list[float], confidence: float = 0.95) -> Difference:
    """The mean of ``values`` with a Student-t confidence interval (none for fewer than 2 values)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Difference(mean, math.nan, math.nan, len(values))
    from scipy import stats

    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return Difference(mean, mean - half, mean + half, len(values))


def pairs(rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(sequential, parallel) rows of the same configuration (same data, settings and seed)."""
    by_pair: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        by_pair[pair_key(row)][row["layout"]] = row
    return [(p["sequential"], p["parallel"]) for p in by_pair.values() if "sequential" in p and "parallel" in p]


def configuration_label(row: dict[str, Any]) -> str:
    """A configuration without its seed and layout, e.g. ``mnist d4 w32 k3 relu lr0.002``."""
    text = f"{row['data']} d{row['depth']} w{row['width']} k{row['kernel']} {row['act']} lr{row['lr']:g}"
    text += f" α{row['branch_scale']:g}" if row["branch_scale"] != 1.0 else ""
    return text + (f" n{row['train_subset']}" if row.get("subsets") else "")


def paired_tables(rows: list[dict[str, Any]]) -> tuple[str, str]:
    """(per dataset summary, per configuration table) of parallel − sequential loss differences."""
    matched = pairs(rows)
    by_config: dict[str, list[tuple[dict, dict]]] = defaultdict(list)
    by_data: dict[str, list[tuple[dict, dict]]] = defaultdict(list)
    for seq, par in matched:
        by_config[configuration_label(seq)].append((seq, par))
        by_data[seq["data"]].append((seq, par))

    def diff(group: list[tuple[dict, dict]], key: str) -> Difference:
        return mean_difference([par[key] - seq[key] for seq, par in group])

    by_interval: dict[tuple[str, int], list[tuple[dict, dict]]] = defaultdict(list)
    for seq, par in matched:
        by_interval[(seq["data"], q_bin(seq["q"]))].append((seq, par))
    groups = [(data, group) for data, group in sorted(by_data.items())]
    groups += [(f"{data}, {Q_BINS[b][2]}", group) for (data, b), group in sorted(by_interval.items())]
    summary = []
    for label, group in groups:
        wins = sum(par["val_loss"] < seq["val_loss"] for seq, par in group)
        summary.append((label, len(group), str(diff(group, "train_loss")), str(diff(group, "val_loss")),
                        str(diff(group, "val_top1")), f"{wins}/{len(group)}"))  # fmt: skip
    summary_text = text_table(
        ["data", "pairs", "Δ train loss [95 % CI]", "Δ val loss [95 % CI]", "Δ val top-1 % [95 % CI]",
         "parallel lower val loss"],
        summary,
    )  # fmt: skip
    detail = []
    for label, group in sorted(by_config.items(), key=lambda kv: (kv[1][0][0]["data"], kv[1][0][0]["q"])):
        detail.append((label, f"{group[0][0]['q']:.2f}", len(group), str(diff(group, "train_loss")),
                       str(diff(group, "val_loss"))))  # fmt: skip
    detail_text = text_table(["configuration", "Q", "seeds", "Δ train loss", "Δ val loss"], detail)
    return summary_text, detail_text


def plot_sequential_vs_parallel(rows: list[dict[str, Any]], path: Path) -> Path:
    """Scatter of parallel against sequential loss (train and validation), one point per configuration and seed."""
    plt = pyplot()
    matched = pairs(rows)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    for ax, key, title in zip(axes, ("val_loss", "train_loss"), ("validation loss", "training loss")):
        for data in sorted({s["data"] for s, _ in matched}):
            group = [(s[key], p[key]) for s, p in matched if s["data"] == data]
            ax.scatter([g[0] for g in group], [g[1] for g in group], s=18, alpha=0.7, label=data)
        values = [v for s, p in matched for v in (s[key], p[key]) if v > 0]
        if values:
            low, high = min(values) * 0.8, max(values) * 1.25
            ax.plot([low, high], [low, high], "k--", lw=1, label="y = x")
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel(f"sequential (deep) {title}")
        ax.set_ylabel(f"parallel (shallow) {title}")
        ax.set_title(f"{title}: points below the line favour the parallel layout", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_loss_vs_q(rows: list[dict[str, Any]], path: Path) -> Path:
    """Training and validation loss against Q, per dataset, for both layouts."""
    plt = pyplot()
    datasets = sorted({r["data"] for r in rows})
    fig, axes = plt.subplots(1, max(len(datasets), 1), figsize=(5.2 * max(len(datasets), 1), 4.4), squeeze=False)
    styles = {"sequential": ("tab:blue", "o"), "parallel": ("tab:orange", "s")}
    for ax, data in zip(axes[0], datasets):
        for layout, (colour, marker) in styles.items():
            group = [r for r in rows if r["data"] == data and r["layout"] == layout]
            qs = [r["q"] for r in group]
            ax.scatter(qs, [r["val_loss"] for r in group], c=colour, marker=marker, s=20, label=f"{layout} val")
            ax.scatter(qs, [r["train_loss"] for r in group], facecolors="none", edgecolors=colour, marker=marker,
                       s=20, label=f"{layout} train")  # fmt: skip
        for low, _, _ in Q_BINS[1:]:
            ax.axvline(low, color="grey", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("Q = training samples × outputs / parameters")
        ax.set_ylabel("cross-entropy")
        ax.set_title(data)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def to_csv(rows: list[dict[str, Any]]) -> str:
    """Every finished trial as CSV."""
    columns = sorted({k for r in rows for k in r}, key=lambda k: (k not in ("key", "data", "layout"), k))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_report(rows: list[dict[str, Any]], folder: Path, title: str, command: str = "") -> str:
    """Write ``report.md``, ``trials.csv`` and the plots into ``folder``; returns the report's text."""
    folder.mkdir(parents=True, exist_ok=True)
    table = q_table(rows)
    summary, detail = paired_tables(rows)
    scatter = plot_sequential_vs_parallel(rows, folder / "sequential_vs_parallel.png")
    by_q = plot_loss_vs_q(rows, folder / "loss_vs_q.png")
    write_text_atomic(folder / "trials.csv", to_csv(rows))
    text = "\n".join(
        [
            f"# {title}",
            "",
            *([f"Command: `{command}`", ""] if command else []),
            f"{len(rows)} finished trials. Loss is cross-entropy; cells are mean train / validation loss.",
            "",
            "## Mean loss per Q interval",
            "",
            "```",
            table,
            "```",
            "",
            "## Paired differences, parallel − sequential (negative: the parallel layout is lower)",
            "",
            "```",
            summary,
            "```",
            "",
            "Per configuration, over seeds (95 % CI when there are at least two):",
            "",
            "```",
            detail,
            "```",
            "",
            f"![sequential against parallel]({scatter.name})",
            "",
            f"![loss against Q]({by_q.name})",
            "",
        ]
    )
    write_text_atomic(folder / "report.md", text)
    return text
