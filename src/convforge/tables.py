"""Plain-text tables and human-readable numbers, for results printed to a terminal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def human_count(n: float, unit: str = "", digits: int = 2) -> str:
    """A count with an SI prefix: ``human_count(652_100_000, "MACs")`` → '652.10 MMACs'."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= factor:
            return f"{n / factor:.{digits}f} {prefix}{unit}".rstrip()
    number = f"{n:.0f}" if float(n).is_integer() else f"{n:.{digits}f}"
    return f"{number} {unit}".rstrip()


def text_table(headers: Sequence[str] | None, rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """Render rows as an aligned text table, with a header and a rule under it unless ``headers`` is None.

    ``align`` has one letter per column, ``l`` or ``r``; by default numbers are
    right-aligned and everything else left-aligned.
    """
    body = [["" if c is None else str(c) for c in row] for row in rows]
    cells = ([[str(c) for c in headers]] if headers is not None else []) + body
    columns = len(cells[0]) if cells else 0
    widths = [max(len(row[i]) for row in cells) for i in range(columns)]
    if align is None:
        align = "".join(
            "r" if rows and all(isinstance(row[i], (int, float)) or _looks_numeric(row[i]) for row in rows) else "l"
            for i in range(columns)
        )
    lines = []
    for index, row in enumerate(cells):
        parts = [c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align)]
        lines.append("  ".join(parts).rstrip())
        if index == 0 and headers is not None:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


METRIC_UNITS = {"top1": " %", "top5": " %", "psnr": " dB"}


def format_metric(metric: str, value: float) -> str:
    """A task metric with its unit: accuracies in %, PSNR in dB, loss, SSIM and mAP (0–1) as plain numbers."""
    return f"{value:.2f}{METRIC_UNITS[metric]}" if metric in METRIC_UNITS else f"{value:.4f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Render rows as a GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(str(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join("" if c is None else str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _looks_numeric(value: Any) -> bool:
    text = str(value).replace(",", "").split(" ")[0]
    try:
        float(text)
    except ValueError:
        return False
    return True
