"""The av-pyramid study: MM-Pyramid against HAN-style, AVEL-style and per-segment baselines on semi-synthetic
features laid on the real AVE and LLP labels, and a pyramid-levels ablation.

``run_study`` writes AVE-synth at each SNR and LLP-synth once (:mod:`convforge.data.av_synthetic_files`) into
``<out>/data``, queues every trial (:mod:`convforge.experiments.av_pyramid.grid`) in an Optuna study, trains them
in worker processes (resumable: finished trials are kept), and writes ``<out>/report``. Every trial is selected on
validation and scored on test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convforge.data.av_synthetic import SynthSettings
from convforge.data.av_synthetic_files import write_ave_synthetic, write_llp_synthetic
from convforge.data.roots import find_folder
from convforge.experiments.av_pyramid.grid import StudyPlan, configurations
from convforge.experiments.av_pyramid.report import accuracy_table, llp_table, write_report
from convforge.experiments.av_pyramid.trial import data_folder, run_trial
from convforge.experiments.queued_study import run_queued

STUDY = "av-pyramid"


@dataclass
class AVStudyResult:
    """The study's folder, its finished trials, how many are done out of all, and the report's text."""

    out: Path
    rows: list[dict[str, Any]]
    done: int
    total: int
    report: str

    @property
    def tables(self) -> str:
        return f"{accuracy_table(self.rows)}\n\n{accuracy_table(self.rows, levels=None)}\n\n{llp_table(self.rows)}"


def _run_one(config: dict[str, Any], out: str) -> dict[str, Any]:
    return run_trial(config, {"out": out})


def _write_data(plan: StudyPlan, out: Path, ave_source: Path, llp_source: Path, progress: bool) -> None:
    """The semi-synthetic folders the plan needs, each written once (a folder is complete when it has its
    ``SYNTHETIC.json``, written last)."""
    for snr in plan.snrs:
        folder = data_folder(out, "ave", snr)
        if not (folder / "SYNTHETIC.json").is_file():
            write_ave_synthetic(ave_source, folder, SynthSettings(snr_db=snr), videos=plan.ave_videos, overwrite=True,
                                progress=progress)  # fmt: skip
    folder = data_folder(out, "llp", plan.llp_snr)
    if not (folder / "SYNTHETIC.json").is_file():
        write_llp_synthetic(llp_source, folder, SynthSettings(snr_db=plan.llp_snr), videos=plan.llp_videos,
                            overwrite=True, progress=progress)  # fmt: skip


def run_study(plan: StudyPlan | None = None, out: str | Path = "runs/studies/av-pyramid", ave: str = "ave",
              llp: str = "llp", data_root: str | None = None, workers: int = 2, storage: str | None = None,
              progress: bool = True, report_only: bool = False, command: str = "") -> AVStudyResult:  # fmt: skip
    """Run (or resume) the study and write its report; ``ave`` and ``llp`` name the folders holding the real labels
    (found like datasets: a path, or below ``data_root`` and ``$CONVFORGE_DATA``)."""
    plan = plan or StudyPlan()
    out = Path(out)
    configs = configurations(plan)
    if not report_only:
        ave_source = find_folder(ave, data_root, ("Annotations.txt",), "AVE")
        llp_source = find_folder(llp, data_root, ("AVVP_train.csv",), "LLP")
        _write_data(plan, out, ave_source, llp_source, progress)
    scores = ("val_accuracy", "val_segment_type")
    rows = run_queued(STUDY, configs, _run_one, scores, out, plan.training(), storage, workers, progress,
                      report_only)  # fmt: skip
    report = write_report(rows, out / "report", command) if rows else ""
    return AVStudyResult(out, rows, len(rows), len(configs), report)


__all__ = ["AVStudyResult", "StudyPlan", "run_study"]
