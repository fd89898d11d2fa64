"""Architecture search: spaces of specs, budgets checked by the profiler, Optuna studies, Pareto fronts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convforge.errors import InvalidValueError
from convforge.field_checks import check_path_component
from convforge.mapping_file import read_mapping
from convforge.nas.pareto import hypervolume, pareto_front
from convforge.nas.report import SearchResult, TrialRow, collect, front_table_text, summarise, write_report
from convforge.nas.space import SearchSpace, SpaceError
from convforge.nas.study import SAMPLERS, Budget, SearchSettings, measure, open_study, run_search


def search(
    space: str | Path | dict[str, Any],
    data: str = "fashion-mnist",
    *,
    trials: int = 40,
    sampler: str = "nsga2",
    max_params: int | None = None,
    max_macs: int | None = None,
    max_latency_ms: float | None = None,
    workers: int = 1,
    storage: str | None = None,
    study: str | None = None,
    project: str | Path = "runs",
    seed: int = 0,
    progress: bool = True,
    heartbeat_s: int = 10,
    grace_s: int = 30,
    **recipe: Any,
) -> SearchResult:
    """Search ``space`` for accurate networks within a budget, training each candidate on ``data``.

    ``recipe`` holds the short training budget of each trial (``epochs=1``,
    ``train_subset=10000``, ``opt="adamw"``, ...). Results go to
    ``<project>/search/<study>/``: ``study.db`` (unless ``storage`` names a database URL),
    the trials' run directories, ``pareto.md``, ``pareto.png`` and ``best/trial_<n>.yaml``
    specs. Calling again with the same study resumes it up to ``trials`` finished trials.
    """
    space_dict = read_mapping(space, "search space", SpaceError)
    loaded = SearchSpace.load(space_dict)
    if sampler not in SAMPLERS:
        raise InvalidValueError(f"sampler {sampler!r} is not one of {', '.join(SAMPLERS)}")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise InvalidValueError(f"trials must be a positive integer, got {trials!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidValueError(f"workers must be a positive integer, got {workers!r}")
    name = check_path_component("study" if study else "the space's name", study or f"{loaded.name}-{sampler}")
    out = Path(project) / "search" / name
    out.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    recipe = {"epochs": 1, **recipe}
    settings = SearchSettings(space_dict, data, name, url, sampler, Budget(max_params, max_macs, max_latency_ms),
                              trials, str(out), seed, recipe, heartbeat_s, grace_s)  # fmt: skip
    run_search(settings, workers, progress)
    rows = collect(open_study(settings, create=False), limit=trials)
    return write_report(summarise(name, rows, max_macs), out)


__all__ = [
    "SAMPLERS",
    "Budget",
    "SearchResult",
    "SearchSpace",
    "SpaceError",
    "TrialRow",
    "front_table_text",
    "hypervolume",
    "measure",
    "pareto_front",
    "search",
]
