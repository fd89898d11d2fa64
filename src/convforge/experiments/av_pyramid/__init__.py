"""The av-pyramid study: MM-Pyramid against HAN-style, AVEL-style and per-segment baselines on semi-synthetic
features laid on the real AVE and LLP labels, and a pyramid-levels ablation.

``run_study`` writes AVE-synth at each SNR and LLP-synth once (:mod:`convforge.data.av_synthetic_files`) into
``<out>/data``, queues every trial (:mod:`convforge.experiments.av_pyramid.grid`) in an Optuna study, trains them
in worker processes (resumable: finished trials are kept), and writes ``<out>/report``. Every trial is selected on
validation and scored on test.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from convforge.data.av_synthetic import SynthSettings
from convforge.data.av_synthetic_files import write_ave_synthetic, write_llp_synthetic
from convforge.data.roots import find_folder
from convforge.errors import ConvforgeError, InvalidValueError
from convforge.experiments.av_pyramid.grid import StudyPlan, configurations
from convforge.experiments.av_pyramid.report import accuracy_table, llp_table, trial_rows, write_report
from convforge.experiments.av_pyramid.trial import data_folder, run_trial
from convforge.trials import Progress, enqueue_configurations, open_storage, run_workers, storage_url
from convforge.trials.queue import work_through_queue

STUDY = "av-pyramid"
SETTINGS = "training"


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


@dataclass(frozen=True)
class _Work:
    storage: str
    out: str
    heartbeat_s: int = 10
    grace_s: int = 30


def _objective(out: str, config: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    result = run_trial(config, {"out": out})
    return float(result.get("val_accuracy", result.get("val_segment_type", 0.0))), result


def study_worker(work: _Work, slot: Any) -> None:
    """One worker: train queued trials until none waits or runs."""
    import optuna

    storage = open_storage(work.storage, work.heartbeat_s, work.grace_s)
    study = optuna.load_study(study_name=STUDY, storage=storage)
    work_through_queue([study], storage, partial(_objective, work.out),
                       log=lambda text: print(f"[worker {slot.index}] {text}", flush=True))  # fmt: skip


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


def _open_study(url: str, plan: StudyPlan, storage: Any) -> Any:
    import optuna

    study = optuna.create_study(study_name=STUDY, storage=storage, direction="maximize", load_if_exists=True)
    stored = study.user_attrs.get(SETTINGS)
    if stored is None:
        study.set_user_attr(SETTINGS, plan.training())
    elif stored != plan.training():
        changed = sorted(k for k in set(stored) | set(plan.training()) if stored.get(k) != plan.training().get(k))
        raise ConvforgeError(f"the study in {url} was started with other settings ({', '.join(changed)}); use "
                             "another --out or --storage")  # fmt: skip
    return study


def run_study(plan: StudyPlan | None = None, out: str | Path = "runs/studies/av-pyramid", ave: str = "ave",
              llp: str = "llp", data_root: str | None = None, workers: int = 2, storage: str | None = None,
              progress: bool = True, report_only: bool = False, command: str = "") -> AVStudyResult:  # fmt: skip
    """Run (or resume) the study and write its report; ``ave`` and ``llp`` name the folders holding the real labels
    (found like datasets: a path, or below ``data_root`` and ``$CONVFORGE_DATA``)."""
    plan = plan or StudyPlan()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidValueError(f"workers = {workers!r} is not allowed; use a positive integer (1 trains here)")
    out = Path(out)
    url = storage_url(storage or out / "trials.db")
    opened = open_storage(url)
    study = _open_study(url, plan, opened)
    configs = configurations(plan)
    if not report_only:
        ave_source = find_folder(ave, data_root, ("Annotations.txt",), "AVE")
        llp_source = find_folder(llp, data_root, ("AVVP_train.csv",), "LLP")
        _write_data(plan, out, ave_source, llp_source, progress)
        enqueue_configurations(study, configs)

        def finished() -> tuple[int, dict[str, Any]]:
            states = [t.state.name for t in study.get_trials(deepcopy=False)]
            return states.count("COMPLETE") + states.count("FAIL"), {"running": states.count("RUNNING")}

        run_workers(study_worker, (_Work(url, str(out.resolve())),), workers, Progress(STUDY, len(configs), finished),
                    progress, log_dir=out / "logs")  # fmt: skip
    rows = trial_rows(study.get_trials(deepcopy=False))
    report = write_report(rows, out / "report", command) if rows else ""
    return AVStudyResult(out, rows, len(rows), len(configs), report)


__all__ = ["AVStudyResult", "StudyPlan", "run_study"]
