"""A picture of a profile: where the MACs and the parameters are, module by module."""

from __future__ import annotations

from pathlib import Path

from convforge.figures import pyplot, save_figure
from convforge.profiler.result import ProfileResult
from convforge.tables import human_count


def plot_profile(result: ProfileResult, path: str | Path, depth: int = 1, top: int = 25) -> Path:
    """Save a PNG with MACs and parameters per module and MACs per operation category.

    Modules are those at ``depth`` below the model, plus shallower modules that have
    no children (so that every MAC appears once); at most ``top`` are drawn, largest
    MACs first. Returns the path written.
    """
    plt = pyplot()

    paths = [row.path for row in result.modules]

    def is_leaf(path: str) -> bool:
        return not any(other.startswith(path + ".") for other in paths) if path else False

    rows = [r for r in result.modules if r.depth == depth or (0 < r.depth < depth and is_leaf(r.path))]
    rows = rows or [result.modules[0]]
    rows = sorted(rows, key=lambda r: r.macs[result.convention], reverse=True)[:top]
    rows.reverse()  # largest on top of a horizontal bar chart
    labels = [row.path or "(model)" for row in rows]
    macs = [row.macs[result.convention] for row in rows]
    params = [row.params for row in rows]
    categories = sorted(result.by_category.items(), key=lambda kv: kv[1])

    height = max(3.0, 0.32 * len(rows) + 1.5)
    fig, (ax_macs, ax_params, ax_cat) = plt.subplots(
        1, 3, figsize=(15, height), gridspec_kw={"width_ratios": [2, 2, 1.4]}, constrained_layout=True
    )
    ax_macs.barh(labels, macs, color="#3a7ca5")
    ax_macs.set_title(f"MACs per module [{result.convention}]")
    ax_params.barh(labels, params, color="#81b29a")
    ax_params.set_title("parameters per module")
    ax_params.set_yticklabels([])
    for ax, values in ((ax_macs, macs), (ax_params, params)):
        for y, value in enumerate(values):
            if value:
                ax.text(value, y, f" {human_count(value)}", va="center", fontsize=8)
        ax.margins(x=0.25)
        ax.set_xticks([])
    ax_cat.barh([c for c, _ in categories], [v for _, v in categories], color="#e07a5f")
    ax_cat.set_title("MACs per operation class")
    ax_cat.set_xticks([])
    ax_cat.margins(x=0.35)
    for y, (_, value) in enumerate(categories):
        ax_cat.text(value, y, f" {100 * value / max(result.macs, 1):.1f} %", va="center", fontsize=8)
    shapes = ", ".join("x".join(map(str, s)) for s in result.input_shapes)
    fig.suptitle(
        f"{result.model} at {shapes}: {human_count(result.params)} params, "
        f"{human_count(result.macs, 'MACs')}, peak activations {result.activation_peak_mib:.2f} MiB"
    )
    return save_figure(fig, path, dpi=110)
