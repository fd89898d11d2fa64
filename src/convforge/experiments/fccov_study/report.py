"""The FCCov simulation study's report: dCor with the true index per design and method (mean ± sd over
replicates), subspace distances of the linear methods, and a bar chart."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from convforge.tables import text_table

METHODS = (("fccov", "FCCov-Net"), ("dcov", "deep dCov"), ("gsir", "GSIR"), ("wire", "WIRE"), ("sir", "SIR"),
           ("save", "SAVE"), ("raw_x", "raw X (p = 10)"))  # fmt: skip


def _cell(values: list[float]) -> str:
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {sd:.3f}"


def _designs(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(r["design"] for r in rows))


def dcor_table(rows: list[dict[str, Any]]) -> str:
    """dCor(f̂(X_test), true index), mean ± sd over replicates: designs in rows, methods in columns."""
    body = []
    for design in _designs(rows):
        mine = [r for r in rows if r["design"] == design]
        body.append((design, len(mine), *(_cell([r[f"{m}_dcor"] for r in mine if f"{m}_dcor" in r])
                                          for m, _ in METHODS)))  # fmt: skip
    return text_table(["design", "reps", *(label for _, label in METHODS)], body, align="lr" + "r" * len(METHODS))


def subspace_table(rows: list[dict[str, Any]]) -> str:
    """‖P_B̂ − P_B‖_F of the linear methods where the truth is linear (0 is exact, √(2d) is orthogonal)."""
    methods = [m for m in ("wire", "sir", "save") if any(f"{m}_subspace" in r for r in rows)]
    body = []
    for design in _designs(rows):
        mine = [r for r in rows if r["design"] == design and any(f"{m}_subspace" in r for m in methods)]
        if mine:
            body.append((design, *(_cell([r[f"{m}_subspace"] for r in mine if f"{m}_subspace" in r])
                                   for m in methods)))  # fmt: skip
    return text_table(["design", *(m.upper() for m in methods)], body, align="l" + "r" * len(methods))


def plot_dcor(rows: list[dict[str, Any]], path: Path) -> Path:
    """Grouped bars of mean dCor per design and method, with the sd over replicates."""
    from convforge.figures import pyplot, save_figure

    designs = _designs(rows)
    fig, ax = pyplot().subplots(figsize=(10, 4.5), constrained_layout=True)
    width = 0.8 / len(METHODS)
    for k, (method, label) in enumerate(METHODS):
        means, sds, where = [], [], []
        for i, design in enumerate(designs):
            values = [r[f"{method}_dcor"] for r in rows if r["design"] == design and f"{method}_dcor" in r]
            if values:
                where.append(i + (k - len(METHODS) / 2 + 0.5) * width)
                means.append(statistics.fmean(values))
                sds.append(statistics.stdev(values) if len(values) > 1 else 0.0)
        ax.bar(where, means, width, yerr=sds, capsize=2, label=label)
    ax.set_xticks(range(len(designs)), designs, rotation=20, fontsize=8)
    ax.set_ylabel("dCor(f̂(X_test), true index)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=len(METHODS), loc="upper center", bbox_to_anchor=(0.5, -0.2))
    ax.set_title("Sufficient dimension reduction on simulated designs (p = 10, n = 1,000)")
    return save_figure(fig, path)


def write_report(rows: list[dict[str, Any]], folder: Path, command: str, image: dict[str, Any] | None) -> str:
    """``report.md`` and ``dcor_by_design.png`` (plus the image application's figures, when run) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    plot_dcor(rows, folder / "dcor_by_design.png")
    lines = ["# FCCov-Net against SDR baselines on simulated designs", "",
             f"Command: `{command}`" if command else "", "",
             "## dCor between the reduction of the test X and the true index (mean ± sd over replicates)", "",
             "```", dcor_table(rows), "```", "",
             "## Subspace distance of the linear methods (where the truth is linear)", "",
             "```", subspace_table(rows), "```", ""]  # fmt: skip
    if image:
        lines += ["## Rotated images: dCor with (cos θ, sin θ) on the test images", "", "```",
                  text_table(["method", "dCor"], [(k, f"{v:.3f}") for k, v in image["dcor"].items()], align="lr"),
                  "```", ""]  # fmt: skip
    text = "\n".join(lines)
    (folder / "report.md").write_text(text + "\n", encoding="utf-8")
    return text
