"""The av-pyramid study's report: accuracy per model and SNR (mean ± sd over seeds) with the reference lines, the
pyramid-levels ablation, the LLP-synth figures, and a plot of accuracy against SNR."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from convforge.experiments.av_pyramid.grid import AVE_MODELS
from convforge.tables import text_table

ALL_BACKGROUND = 17.8  # % of AVE test segments that are background: what "always background" scores
VIDEO_CLASS_KNOWN = 82.2  # the video's class on every segment, boundaries unknown
LLP_FIGURES = ("a", "v", "av", "type", "event")


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.1f} ± {sd:.1f} (n={len(values)})"


def _variant(row: dict[str, Any]) -> str:
    levels = row["settings"].get("levels")
    return f"{row['label']} L={levels}" if levels else row["label"]


def accuracy_table(rows: list[dict[str, Any]], levels: int | None = 4) -> str:
    """Test accuracy (%) per model (rows) and SNR (columns); ``levels`` picks MM-Pyramid's depth (None: every)."""
    ave = [r for r in rows if r["dataset"] == "ave"]
    snrs = sorted({r["snr"] for r in ave})
    if levels is None:
        names = [f"MM-Pyramid L={lv}" for lv in sorted({r["settings"].get("levels") for r in ave
                                                         if r["model"] == "mm_pyramid_ave"})]  # fmt: skip
    else:
        names = [label + (f" L={levels}" if name == "mm_pyramid_ave" else "") for label, name, _ in AVE_MODELS]
    body = []
    for variant in names:
        cells = [_mean_sd([r["test_accuracy"] for r in ave if _variant(r) == variant and r["snr"] == snr])
                 for snr in snrs]  # fmt: skip
        params = next((r["params"] for r in ave if _variant(r) == variant), 0)
        body.append((variant, f"{params:,}", *cells))
    if levels is not None:
        body.append(("always background (reference)", "–", *[f"{ALL_BACKGROUND:.1f}"] * len(snrs)))
        body.append(("video class known, no boundaries (reference)", "–", *[f"{VIDEO_CLASS_KNOWN:.1f}"] * len(snrs)))
    headers = ["model", "params", *(f"{snr:+g} dB" for snr in snrs)]
    return text_table(headers, body, align="lr" + "r" * len(snrs))


def llp_table(rows: list[dict[str, Any]]) -> str:
    """The LLP-synth test figures (%) of each LLP trial: five segment-level and five event-level F1s."""
    body = []
    for row in (r for r in rows if r["dataset"] == "llp"):
        for level in ("segment", "event"):
            body.append((f"{row['label']} ({row['snr']:+g} dB)", level,
                         *(f"{row[f'test_{level}_{f}']:.1f}" for f in LLP_FIGURES)))  # fmt: skip
    return text_table(["model", "level", "A", "V", "AV", "Type@AV", "Event@AV"], body, align="ll" + "r" * 5)


def plot_accuracy(rows: list[dict[str, Any]], path: Path) -> Path:
    """Test accuracy against SNR per model (mean ± sd over seeds), with the two reference lines."""
    from convforge.figures import pyplot, save_figure

    fig, ax = pyplot().subplots(figsize=(7, 4.5))
    ave = [r for r in rows if r["dataset"] == "ave"]
    variants = dict.fromkeys(_variant(r) for r in sorted(ave, key=lambda r: (r["model"], str(r["settings"]))))
    for variant in variants:
        snrs = sorted({r["snr"] for r in ave if _variant(r) == variant})
        values = [[r["test_accuracy"] for r in ave if _variant(r) == variant and r["snr"] == s] for s in snrs]
        means = [statistics.fmean(v) for v in values]
        sds = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in values]
        dashed = "L=" in variant and not variant.endswith("L=4")
        ax.errorbar(snrs, means, yerr=sds, marker="o", capsize=3, label=variant, linestyle="--" if dashed else "-")
    ax.axhline(ALL_BACKGROUND, color="grey", linestyle=":", label="always background")
    ax.axhline(VIDEO_CLASS_KNOWN, color="black", linestyle=":", label="video class known, no boundaries")
    ax.set_xlabel("event SNR (dB)")
    ax.set_ylabel("test segment accuracy (%)")
    ax.set_title("AVE-synth: segment accuracy (selected on validation)")
    ax.legend(fontsize=7, loc="lower right")
    return save_figure(fig, path)


def write_report(rows: list[dict[str, Any]], folder: Path, command: str) -> str:
    """``report.md`` and ``accuracy_vs_snr.png`` in ``folder``; returns the markdown."""
    folder.mkdir(parents=True, exist_ok=True)
    plot = plot_accuracy(rows, folder / "accuracy_vs_snr.png") if any(r["dataset"] == "ave" for r in rows) else None
    seconds = sum(r["epoch_time_s"] * r["epochs_run"] for r in rows)
    text = "\n".join([
        "# MM-Pyramid on semi-synthetic AVE and LLP features",
        "",
        "Semi-synthetic features on the real labels and timings: these figures measure temporal localisation on "
        "controlled data, not the published benchmark.",
        "",
        f"Command: `{command}`" if command else "",
        "",
        "## AVE-synth: test segment accuracy (%), mean ± sd over seeds, selected on validation",
        "",
        "```", accuracy_table(rows), "```",
        "",
        "## Pyramid levels (MM-Pyramid, width 128)",
        "",
        "```", accuracy_table(rows, levels=None), "```",
        "",
        "## LLP-synth: test F1 (%)",
        "",
        "```", llp_table(rows), "```",
        "",
        f"Plot: {plot.name if plot else 'none'}. Trials: {len(rows)}; their training epochs took {seconds / 60:.0f} "
        "min in all (evaluation and data writing not included).",
    ])  # fmt: skip
    (folder / "report.md").write_text(text + "\n", encoding="utf-8")
    return text
