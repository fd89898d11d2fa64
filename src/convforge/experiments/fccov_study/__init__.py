"""The FCCov-Net study: FCCov-Net against SIR, SAVE, WIRE, GSIR and a deep distance-covariance SDR on simulated
designs with Euclidean, distributional, SPD and spherical responses (each with an outlier variant), and an image
application on rotated images.

The designs' (design, replicate) trials are queued in one Optuna study (:mod:`convforge.experiments.queued_study`)
and resume after an interruption; the report goes to ``<out>/report``. No published table exists to reproduce:
the figures compare methods on the same data.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from convforge.errors import InvalidValueError
from convforge.experiments.fccov_study.image_application import run_image_application
from convforge.experiments.fccov_study.report import dcor_table, subspace_table, write_report
from convforge.experiments.fccov_study.trial import run_one
from convforge.experiments.queued_study import run_queued
from convforge.sdr.simulations import DIMENSION_OF, design_names

STUDY = "fccov"


@dataclass(frozen=True)
class FccovPlan:
    """The study's settings: designs, replicates, sample size and the networks' training."""

    designs: tuple[str, ...] = field(default_factory=lambda: tuple(design_names()))
    reps: int = 5
    n: int = 1000
    epochs: int = 50
    passes: int = 10
    batch: int = 500
    lr: float = 3e-3
    mu: float = 1.0
    image_epochs: int = 20
    image_train: int = 10_000
    image_test: int = 2_000

    def settings(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def configurations(self) -> dict[str, dict[str, Any]]:
        unknown = [d for d in self.designs if d not in design_names()]
        if unknown or self.reps < 1:
            raise InvalidValueError(f"designs must be among {', '.join(design_names())} and reps >= 1; got "
                                    f"{', '.join(unknown) or self.reps}")  # fmt: skip
        configs = {}
        for design in self.designs:
            for rep in range(self.reps):
                key = f"{design}-rep{rep}"
                configs[key] = {"key": key, "design": design, "rep": rep, "dim": DIMENSION_OF[design.split("-")[0]],
                                "n": self.n, "epochs": self.epochs, "passes": self.passes, "batch": self.batch,
                                "lr": self.lr, "mu": self.mu}  # fmt: skip
        return configs


@dataclass
class FccovStudyResult:
    out: Path
    rows: list[dict[str, Any]]
    total: int
    image: dict[str, Any] | None
    report: str

    @property
    def tables(self) -> str:
        return f"{dcor_table(self.rows)}\n\n{subspace_table(self.rows)}"


def run_fccov_study(plan: FccovPlan | None = None, out: str | Path = "runs/studies/fccov", workers: int = 2,
                    storage: str | None = None, image: bool = True, image_dataset: str = "mnist",
                    data_root: str | None = None, progress: bool = True, report_only: bool = False,
                    command: str = "") -> FccovStudyResult:  # fmt: skip
    """Run (or resume) the simulation study and the image application, and write the report."""
    plan = plan or FccovPlan()
    out = Path(out)
    configs = plan.configurations()
    rows = run_queued(STUDY, configs, run_one, ("fccov_dcor",), out, plan.settings(), storage, workers, progress,
                      report_only)  # fmt: skip
    image_file = out / "report" / "rotated.json"
    image_result = json.loads(image_file.read_text()) if image_file.is_file() else None
    if image and not report_only and image_result is None:
        image_result = run_image_application(out, image_dataset, plan.image_train, plan.image_test, plan.image_epochs,
                                             data_root)  # fmt: skip
        image_file.parent.mkdir(parents=True, exist_ok=True)
        image_file.write_text(json.dumps(image_result, indent=2) + "\n", encoding="utf-8")
    report = write_report(rows, out / "report", command, image_result) if rows else ""
    return FccovStudyResult(out, rows, len(configs), image_result, report)


__all__ = ["FccovPlan", "FccovStudyResult", "run_fccov_study", "run_image_application"]
