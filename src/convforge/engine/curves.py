"""Training curves: loss and accuracy per epoch, saved as a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convforge.figures import pyplot, save_figure
from convforge.tables import METRIC_UNITS, format_metric


def plot_curves(rows: list[dict[str, Any]], path: str | Path, title: str = "", primary: str | None = None) -> Path:
    """Plot the losses (train, val, and any ``val_*_loss`` parts) and the validation scores (the other ``val_*``
    columns) per epoch, marking the best epoch of ``primary`` (default: the first score)."""
    plt = pyplot()

    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    columns = list(rows[0]) if rows else []
    loss_parts = [k for k in columns if k.startswith("val_") and k.endswith("_loss") and k != "val_loss"]
    for key, style in (("train_loss", "-o"), ("val_loss", "-s"), *((k, "--") for k in loss_parts)):
        if key in columns:
            ax_loss.plot(epochs, [r[key] for r in rows], style, label=key.replace("_", " "), markersize=3)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_title("loss")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    metric_keys = [k for k in columns if k.startswith("val_") and k != "val_loss" and k not in loss_parts]
    for key in metric_keys:
        ax_metric.plot(epochs, [r[key] for r in rows], "-o", label=key.replace("_", " "), markersize=3)
    marked = primary if primary in metric_keys else (metric_keys[0] if metric_keys else None)
    if marked:
        best = max(rows, key=lambda r: r[marked])
        ax_metric.annotate(format_metric(marked[4:], best[marked]), (best["epoch"], best[marked]),
                           textcoords="offset points", xytext=(0, 6), ha="center")  # fmt: skip
    units = {METRIC_UNITS.get(k[4:], "").strip() for k in metric_keys}
    ax_metric.set_xlabel("epoch")
    ax_metric.set_title(f"validation ({units.pop()})" if len(units) == 1 and "" not in units else "validation")
    ax_metric.legend()
    ax_metric.grid(alpha=0.3)
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_loss, ax_metric):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, dpi=100)
