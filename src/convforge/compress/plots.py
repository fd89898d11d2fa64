"""Pictures of a compression: a pruning's channels per layer and score against MACs, its sensitivity, and a
quantisation's error per layer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from convforge.compress.pruning import LayerWidth
from convforge.compress.quantization_error import SQNR_CAP_DB, LayerError
from convforge.figures import pyplot, save_figure
from convforge.tables import METRIC_UNITS


def plot_pruning(layers: Sequence[LayerWidth], points: Sequence[tuple[str, float, float]], metric: str,
                 path: str | Path, title: str = "") -> Path:  # fmt: skip
    """Left: output channels per layer, dense and pruned. Right: ``metric`` against MACs for each
    ``(label, macs, score)`` point (dense, pruned, pruned + fine-tuned)."""
    plt = pyplot()
    fig, (ax_layers, ax_score) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [2.2, 1]},
                                              constrained_layout=True)  # fmt: skip
    positions = range(len(layers))
    ax_layers.bar(positions, [w.out_before for w in layers], color="#c9d6e8", label="dense")
    ax_layers.bar(positions, [w.out_after for w in layers], color="#2c6fbb", width=0.6, label="pruned")
    ax_layers.set_xticks(list(positions))
    ax_layers.set_xticklabels([w.name for w in layers], rotation=90, fontsize=6)
    ax_layers.set_ylabel("output channels")
    ax_layers.set_title("channels per layer")
    ax_layers.legend()
    markers = ("o", "s", "^", "D", "v")
    for i, (label, macs, score) in enumerate(points):
        ax_score.scatter([macs / 1e6], [score], s=60, marker=markers[i % len(markers)], label=label, zorder=3)
    ax_score.set_xlabel("MACs (M)")
    ax_score.set_ylabel(_label(metric))
    ax_score.set_title(f"{metric} against MACs")
    ax_score.grid(alpha=0.3)
    ax_score.legend()
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def plot_sensitivity(curves: dict[str, list[tuple[float, float]]], dense_score: float, metric: str,
                     path: str | Path, title: str = "") -> Path:  # fmt: skip
    """``metric`` against the ratio of channels removed, one line per layer pruned alone."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5), constrained_layout=True)
    for name, points in curves.items():
        ax.plot([r for r, _ in points], [s for _, s in points], "-o", markersize=3, label=name)
    ax.axhline(dense_score, color="black", linestyle="--", linewidth=1, label="dense")
    ax.set_xlabel("fraction of the layer's channels removed")
    ax.set_ylabel(_label(metric))
    ax.set_title(title or "sensitivity of each layer, pruned alone without fine-tuning")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2 if len(curves) > 12 else 1, loc="lower left")
    return save_figure(fig, path)


def _label(metric: str) -> str:
    unit = METRIC_UNITS.get(metric, "").strip()
    return f"{metric} ({unit})" if unit else metric


def plot_quantization(errors: Sequence[LayerError], path: str | Path, title: str = "", worst: int = 15) -> Path:
    """Top: SQNR of every quantised operation's output, INT8 against FP32, in graph order (those kept in FP32 in
    grey). Bottom: the ``worst`` operations by the dB each loses on its own, named."""
    plt = pyplot()
    fig, (ax, ax_worst) = plt.subplots(2, 1, figsize=(min(6 + 0.12 * len(errors), 20), 8.5), constrained_layout=True,
                                       gridspec_kw={"height_ratios": [1.3, 1]})  # fmt: skip
    positions = list(range(len(errors)))
    ax.bar(positions, [min(e.sqnr_db, SQNR_CAP_DB) for e in errors],
           color=["#2c6fbb" if e.int8 else "#b0b0b0" for e in errors])  # fmt: skip
    if len(errors) <= 60:
        ax.set_xticks(positions)
        ax.set_xticklabels([e.label for e in errors], rotation=90, fontsize=6)
    else:
        ax.set_xlabel(f"the {len(errors)} quantised operations, input to output")
    ax.set_ylabel("output SQNR (dB), higher is better")
    ax.bar([], [], color="#2c6fbb", label="runs in INT8")
    if not all(e.int8 for e in errors):
        ax.bar([], [], color="#b0b0b0", label="kept in FP32")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "quantisation error per operation")
    ranked = sorted(errors, key=lambda e: -e.lost_db)[:worst][::-1]
    ax_worst.barh(range(len(ranked)), [e.lost_db for e in ranked], color="#d9534f")
    ax_worst.set_yticks(range(len(ranked)))
    ax_worst.set_yticklabels([f"{e.label}  (to {min(e.sqnr_db, SQNR_CAP_DB):.1f} dB)" for e in ranked], fontsize=7)
    ax_worst.set_xlabel("SQNR lost in the operation itself (dB): what --auto-exclude moves to FP32 first")
    ax_worst.grid(axis="x", alpha=0.3)
    return save_figure(fig, path)
