"""``convforge.search``: architecture search under a budget, driven by Optuna.

Each trial samples an architecture from a :class:`SearchSpace`, measures it with the
profiler (parameters, MACs, CPU latency at batch 1) in its inference form (re-parameterisable
branches folded, BatchNorm fused), and prunes it before any training
when it breaks a constraint. Otherwise it trains the network with the engine for a
short budget and reports its validation accuracy.

- ``nsga2`` and ``random`` studies have two objectives: accuracy (maximised) and MACs
  (minimised).
- ``tpe`` maximises accuracy alone, and the budget bounds the cost.

Studies live in an Optuna storage: SQLite in the output folder by default, or any
database URL shared by many machines. They resume by name. A trial whose process died
(its heartbeat stopped) is failed and its architecture tried again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from convforge.errors import ConvforgeError
from convforge.nas.space import SearchSpace
from convforge.trials import Progress, WorkerSlot, open_storage, run_workers, study_names

SAMPLERS = ("nsga2", "tpe", "random")
MEASURED_FORM = "inference form"  # what measure() profiles; stored with a study so that resumes do not mix forms


@dataclass(frozen=True)
class Budget:
    """Constraints checked before training; None leaves a quantity free."""

    max_params: int | None = None
    max_macs: int | None = None  # MACs at the space's input size, batch 1
    max_latency_ms: float | None = None  # median CPU latency at batch 1, one thread

    def violations(self, measured: dict[str, float]) -> list[str]:
        """What ``measured`` breaks, as sentences (empty when within the budget)."""
        broken = []
        for key, limit, unit in (("params", self.max_params, ""), ("macs", self.max_macs, " MACs"),
                                 ("latency_ms", self.max_latency_ms, " ms")):  # fmt: skip
            if limit is not None and measured[key] > limit:
                shown = (lambda v: f"{v:,.2f}") if key == "latency_ms" else (lambda v: f"{int(v):,}")
                broken.append(f"{key} {shown(measured[key])}{unit} > {shown(limit)}{unit}")
        return broken


def measure(spec: dict[str, Any], latency_runs: int = 10) -> dict[str, float]:
    """Parameters, MACs (batch 1) and median CPU latency in ms (one thread) of the network a spec describes, in
    the form it ships in (:func:`~convforge.surgery.inference_form`: RepVGG and MobileOne branches folded,
    BatchNorm fused), with the trained form's parameter count beside them as ``train_params``."""
    from convforge.profiler import measure_latency, profile
    from convforge.spec import build_spec
    from convforge.surgery.inference_form import inference_form

    model = build_spec(spec).eval()
    deployed = inference_form(model)
    size = tuple(spec["input_size"])
    result = profile(deployed, size)
    latency = measure_latency(deployed, (torch.randn(1, *size),), runs=latency_runs, warmup=3, threads=1)
    return {"params": result.params, "macs": result.macs, "latency_ms": latency.median_ms,
            "train_params": sum(p.numel() for p in model.parameters())}  # fmt: skip


@dataclass
class SearchSettings:
    """Everything a worker needs to run trials of one study (picklable, for worker processes)."""

    space: dict[str, Any]
    data: str
    study: str
    storage: str
    sampler: str
    budget: Budget
    trials: int
    out: str
    seed: int = 0
    recipe: dict[str, Any] = field(default_factory=dict)
    heartbeat_s: int = 10
    grace_s: int = 30
    worker: int = 0  # which of the local workers runs these settings


def _objective(settings: SearchSettings, space: SearchSpace):
    import optuna
    import yaml

    from convforge.engine.trainer import train

    def objective(trial: optuna.Trial) -> float | tuple[float, float]:
        architecture = space.sample(trial)
        spec = space.to_spec(architecture)
        measured = measure(spec)
        for key, value in (("architecture", architecture), ("spec", spec), *measured.items()):
            trial.set_user_attr(key, value)
        broken = settings.budget.violations(measured)
        if broken:
            trial.set_user_attr("pruned_because", "; ".join(broken))
            raise optuna.TrialPruned("; ".join(broken))
        # trained from a spec file, so that the run rebuilds itself (convforge eval, predict, export)
        spec_file = Path(settings.out) / "specs" / f"trial_{trial.number}.yaml"
        spec_file.parent.mkdir(parents=True, exist_ok=True)
        spec_file.write_text(yaml.safe_dump(spec, sort_keys=False, default_flow_style=None))
        result = train(str(spec_file.resolve()), settings.data, project=str(Path(settings.out) / "trials"),
                       name=f"trial_{trial.number}", progress=False, seed=settings.seed,
                       **settings.recipe)  # fmt: skip
        accuracy = result.best()["val_top1"] / 100
        trial.set_user_attr("top1", accuracy)
        trial.set_user_attr("run_dir", str(result.run_dir))
        return accuracy if settings.sampler == "tpe" else (accuracy, float(measured["macs"]))

    return objective


def open_study(settings: SearchSettings, create: bool = True):
    """The Optuna study of ``settings`` (created, or loaded when it exists)."""
    import optuna

    storage = open_storage(settings.storage, settings.heartbeat_s, settings.grace_s)
    generation = min(20, max(4, settings.trials // 4))  # several generations within the trial budget
    # each worker, and each resumed run, draws from its own random stream: one seed for all would repeat architectures
    seed = settings.seed + 7919 * settings.worker + _trial_count(storage, settings.study)
    if settings.sampler == "nsga2":
        sampler = optuna.samplers.NSGAIISampler(seed=seed, population_size=generation)
    elif settings.sampler == "tpe":
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, generation))
    else:
        sampler = optuna.samplers.RandomSampler(seed=seed)
    directions = ["maximize"] if settings.sampler == "tpe" else ["maximize", "minimize"]
    if not create:
        return optuna.load_study(study_name=settings.study, storage=storage, sampler=sampler)
    study = optuna.create_study(study_name=settings.study, storage=storage, sampler=sampler, directions=directions,
                                load_if_exists=True)  # fmt: skip
    expected = [optuna.study.StudyDirection[d.upper()] for d in directions]
    if list(study.directions) != expected:
        raise ConvforgeError(f"the study {settings.study!r} in {settings.storage} was created with other objectives; "
                             f"resume it with its own sampler, or name a new study")  # fmt: skip
    stored = study.user_attrs.get("settings")
    mine = {"space": settings.space, "data": settings.data, "sampler": settings.sampler, "measured": MEASURED_FORM}
    if stored is None and not study.trials:
        study.set_user_attr("settings", mine)
    elif stored is None or stored.get("measured") != MEASURED_FORM:
        raise ConvforgeError(f"the study {settings.study!r} was measured in the trained form by an earlier "
                             f"convforge; budgets are now checked on the {MEASURED_FORM}, so name a new study "
                             "(--study) rather than mix the two")  # fmt: skip
    elif stored != mine:
        raise ConvforgeError(f"the study {settings.study!r} already exists with another space, data or sampler; "
                             "name a new study (--study) to start afresh")  # fmt: skip
    return study


def _trial_count(storage: Any, study: str) -> int:
    """How many trials the study already holds (0 when it does not exist yet)."""
    import optuna

    if study not in study_names(storage):
        return 0
    return len(optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False))


def finished_trials(study) -> int:
    """Trials that count toward the budget: completed, or pruned by a constraint."""
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def run_worker(settings: SearchSettings, slot: WorkerSlot) -> None:
    """Run trials of the study until it holds ``settings.trials`` finished ones (completed or pruned)."""
    import optuna
    from optuna.study import MaxTrialsCallback

    study = open_study(replace(settings, worker=slot.index))
    if finished_trials(study) >= settings.trials:
        return
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    study.optimize(_objective(settings, SearchSpace.load(settings.space)),
                   callbacks=[MaxTrialsCallback(settings.trials, states=states)], gc_after_trial=True)  # fmt: skip


def run_search(settings: SearchSettings, workers: int, progress: bool = True) -> None:
    """Run the study's trials in this process (``workers=1``) or in ``workers`` processes sharing its storage."""
    study = open_study(settings)  # created once, before workers race to create it
    if finished_trials(study) >= settings.trials:
        return
    shown = Progress(f"search {settings.study}", settings.trials, lambda: (finished_trials(study), {}))
    run_workers(run_worker, (settings,), workers, shown, progress)
