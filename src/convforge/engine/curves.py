"""Training curves: loss and accuracy per epoch, saved as a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convforge.figures import pyplot, save_figure


def plot_curves(rows: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Plot train/val loss and the metrics named ``val_top1``/``val_top5`` (or any ``val_*``) per epoch."""
    plt = pyplot()

    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for key, style in (("train_loss", "-o"), ("val_loss", "-s")):
        if rows and key in rows[0]:
            ax_loss.plot(epochs, [r[key] for r in rows], style, label=key.replace("_", " "), markersize=3)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_title("loss")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    metric_keys = [k for k in (rows[0] if rows else {}) if k.startswith("val_") and k != "val_loss"]
    for key in metric_keys:
        ax_metric.plot(epochs, [r[key] for r in rows], "-o", label=key.replace("_", " "), markersize=3)
    if metric_keys:
        best = max(rows, key=lambda r: r[metric_keys[0]])
        ax_metric.annotate(f"{best[metric_keys[0]]:.2f}", (best["epoch"], best[metric_keys[0]]),
                           textcoords="offset points", xytext=(0, 6), ha="center")  # fmt: skip
    ax_metric.set_xlabel("epoch")
    ax_metric.set_title("validation (%)")
    ax_metric.legend()
    ax_metric.grid(alpha=0.3)
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_loss, ax_metric):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, dpi=100)
