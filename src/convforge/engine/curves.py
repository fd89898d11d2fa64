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
    units: dict[str, list[str]] = {}  # scores of one unit share an axis: PSNR in dB on the left, SSIM on the right
    for key in metric_keys:
        units.setdefault(METRIC_UNITS.get(key[4:], "").strip(), []).append(key)
    axes = [ax_metric] + [ax_metric.twinx() for _ in list(units)[1:2]]
    lines = []
    for number, (ax, (unit, keys)) in enumerate(zip(axes, units.items())):
        for key in keys:
            color = f"C{metric_keys.index(key)}"
            lines += ax.plot(epochs, [r[key] for r in rows], "-o" if number == 0 else "-^", color=color,
                             label=key.replace("_", " "), markersize=3)  # fmt: skip
        ax.set_ylabel(unit or "score")
        ax.margins(y=0.15)  # room above the best point's label
    marked = primary if primary in metric_keys else (metric_keys[0] if metric_keys else None)
    if marked:
        best = max(rows, key=lambda r: r[marked])
        marked_ax = next(ax for ax, keys in zip(axes, units.values()) if marked in keys)
        marked_ax.annotate(format_metric(marked[4:], best[marked]), (best["epoch"], best[marked]),
                           textcoords="offset points", xytext=(0, 6), ha="center")  # fmt: skip
    ax_metric.set_xlabel("epoch")
    ax_metric.set_title("validation")
    if lines:
        ax_metric.legend(lines, [line.get_label() for line in lines], loc="lower right")
    ax_metric.grid(alpha=0.3)
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_loss, ax_metric):
        if len(epochs) <= 12:  # every epoch a tick, and a lone epoch centred rather than among fractions
            ax.set_xticks(epochs)
            ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, dpi=100)
