"""Architecture search: spaces sample valid specs, budgets prune before training, studies resume, specs export."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
import yaml

import convforge
from convforge.nas import Budget, SearchSpace, SpaceError, hypervolume, measure, pareto_front
from convforge.nn.search_stage import BRANCHES
from convforge.spec import build_spec
from convforge.trials import open_storage

SPACE = Path(__file__).resolve().parents[1] / "spaces" / "fashion-mnist.yaml"
TINY_SPACE = {
    "name": "tiny",
    "in_channels": 1,
    "num_classes": 10,
    "input_size": [1, 28, 28],
    "stem": [8, 16],
    "stages": [
        {
            "width": [16, 24],
            "depth": [0, 1],
            "block": ["ib", "conv"],
            "expansion": [1, 2],
            "layout": ["sequential", "parallel"],
        }
    ],  # fmt: skip
    "head": 0,
}
QUICK = dict(train_subset=256, val_subset=256, batch_size=64, epochs=1)


@pytest.mark.parametrize("sampler", [optuna.samplers.RandomSampler(seed=0), optuna.samplers.NSGAIISampler(seed=0)])
def test_a_space_samples_only_valid_architectures(sampler):
    space = SearchSpace.load(SPACE)
    directions = ["maximize", "minimize"]
    study = optuna.create_study(sampler=sampler, directions=directions)
    seen = set()
    for _ in range(25):
        trial = study.ask()
        architecture = space.sample(trial)
        assert space.contains(architecture)
        model = build_spec(space.to_spec(architecture)).eval()
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
        seen.add(tuple(sorted(architecture.items())))
        study.tell(trial, [0.5, 1.0])
    assert len(seen) == 25  # 725,594,112 architectures: no repeats by chance
    assert not space.contains({**architecture, "stem": 17})


ZOO_SPACE = SPACE.parent / "cifar10-zoo.yaml"


@pytest.mark.parametrize("block", BRANCHES)
def test_every_zoo_branch_builds_in_a_stage_and_keeps_its_function_in_inference_form(block):
    values = yaml.safe_load(ZOO_SPACE.read_text())
    for stage in values["stages"]:
        stage.update(block=block, depth=2)  # the zoo space with every stage of this branch type
    space = SearchSpace.load(values)
    architecture = {name: options[-1] for name, options in space.choices.items()}
    model = build_spec(space.to_spec(architecture)).eval()
    for norm in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        norm.running_mean.uniform_(-1, 1), norm.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(convforge.reparameterize(model)(x), model(x), rtol=1e-5, atol=1e-5)


def test_re_parameterisable_branches_meet_the_budget_in_their_inference_form():
    space = SearchSpace.load(ZOO_SPACE)
    architecture = {name: options[0] for name, options in space.choices.items()}
    costs = {}
    for block in ("repvgg", "mobileone", "conv"):
        spec = space.to_spec(architecture | {f"stage{i}.block": block for i in range(space.stage_count)})
        trained = convforge.profile(build_spec(spec), (3, 32, 32)).macs
        costs[block] = (trained, measure(spec)["macs"])
    assert costs["repvgg"][0] > costs["repvgg"][1] == costs["conv"][1]  # the 1×1 branches fold into the k×k conv
    assert costs["mobileone"][0] > costs["mobileone"][1] == costs["conv"][1]
    budget = Budget(max_macs=costs["conv"][1])
    assert budget.violations({"params": 0, "macs": costs["repvgg"][1], "latency_ms": 0}) == []
    assert budget.violations({"params": 0, "macs": costs["repvgg"][0], "latency_ms": 0})  # the trained form breaks it


def test_space_errors_name_the_field_and_what_is_allowed():
    bad_block = {**TINY_SPACE, "stages": [{"width": 16, "block": ["ib", "mbconv"]}]}
    allowed = "ib, ib_se, ib_eca, ib_cbam, conv, ghost, uib, repvgg, mobileone"
    with pytest.raises(SpaceError, match=rf"stages\[0\].block: 'mbconv' is not one of {allowed}"):
        SearchSpace.load(bad_block)
    with pytest.raises(SpaceError, match=r"stages\[0\].kernel: use odd kernel sizes"):
        SearchSpace.load({**TINY_SPACE, "stages": [{"width": 16, "kernel": [3, 4]}]})
    with pytest.raises(SpaceError, match="unknown field"):
        SearchSpace.load({**TINY_SPACE, "depth": 3})


def test_budget_violations_name_the_quantity_and_the_limit():
    measured = {"params": 5000, "macs": 2_000_000, "latency_ms": 1.5}
    assert Budget(max_macs=1_000_000).violations(measured) == ["macs 2,000,000 MACs > 1,000,000 MACs"]
    assert Budget(max_params=10_000, max_latency_ms=2.0).violations(measured) == []


def test_constraint_violations_are_pruned_before_any_training(tmp_path):
    result = convforge.search(TINY_SPACE, trials=4, sampler="random", max_macs=1000, project=tmp_path,
                              progress=False, **QUICK)  # fmt: skip
    assert [r.state for r in result.rows] == ["pruned"] * 4
    assert all(r.pruned_because.startswith("macs ") and r.macs > 1000 for r in result.rows)
    assert not (tmp_path / "search" / "tiny-random" / "trials").exists()  # nothing was trained
    assert result.front == [] and result.hypervolume == 0


def test_a_search_trains_trials_and_exports_specs_that_rebuild_the_same_models(tmp_path):
    result = convforge.search(TINY_SPACE, trials=3, sampler="nsga2", project=tmp_path, progress=False, **QUICK)
    trained = [r for r in result.rows if r.state == "complete"]
    assert len(trained) == 3 and all(0 < r.top1 <= 1 for r in trained)
    assert result.front and len(result.spec_paths) == len(result.front)
    assert result.plot_path.is_file() and "| trial |" in result.table_path.read_text()
    for row, path in zip(result.front, result.spec_paths):
        rebuilt = convforge.create_model(str(path))  # what `convforge train path.yaml` builds
        profiled = convforge.profile(convforge.reparameterize(rebuilt), (1, 28, 28))  # budgets see the shipped form
        assert (profiled.params, profiled.macs) == (row.params, row.macs)
        assert measure(row.spec)["params"] == row.params
    run_dir = tmp_path / "search" / "tiny-nsga2" / "trials" / "classify" / f"trial_{result.front[0].number}"
    scores = convforge.evaluate(run_dir, "fashion-mnist")  # a trial's run rebuilds its network from its spec file
    assert scores["count"] == 10000 and 0 < scores["top1"] <= 100


@pytest.mark.slow  # a kill at a random moment; the trial queue's own resume tests run by default
def test_a_study_killed_in_mid_run_resumes_as_the_same_study(tmp_path):
    settings = dict(trials=3, sampler="random", project=str(tmp_path), progress=False, heartbeat_s=1, grace_s=2,
                    **QUICK)  # fmt: skip
    script = f"import convforge; convforge.search({TINY_SPACE!r}, **{settings!r})"
    worker = subprocess.Popen([sys.executable, "-c", script])
    storage = f"sqlite:///{tmp_path / 'search' / 'tiny-random' / 'study.db'}"
    deadline = time.time() + 240
    study = None
    while time.time() < deadline:  # kill it once one trial has finished and another is running
        time.sleep(0.5)
        try:
            study = optuna.load_study(study_name="tiny-random", storage=storage)
            states = [t.state for t in study.get_trials(deepcopy=False)]
        except Exception:  # noqa: BLE001 - the database may not exist yet
            continue
        if optuna.trial.TrialState.COMPLETE in states and states[-1] == optuna.trial.TrialState.RUNNING:
            break
    worker.kill()
    worker.wait()
    assert study is not None
    # the trials as the kill left them
    before = optuna.load_study(study_name="tiny-random", storage=storage).get_trials(deepcopy=False)
    killed = before[-1]
    assert killed.state == optuna.trial.TrialState.RUNNING
    watcher = optuna.load_study(study_name="tiny-random", storage=open_storage(storage, heartbeat_s=1, grace_s=2))
    deadline = time.time() + 60
    while watcher.get_trials(deepcopy=False)[killed.number].state == optuna.trial.TrialState.RUNNING:
        assert time.time() < deadline, "the killed trial never went stale"
        optuna.storages.fail_stale_trials(watcher)  # what the resumed search does first, once the grace period is over
        time.sleep(0.1)

    result = convforge.search(TINY_SPACE, **settings)
    after = optuna.load_study(study_name="tiny-random", storage=storage)
    assert after._study_id == study._study_id
    trials = after.get_trials(deepcopy=False)
    assert trials[0].params == before[0].params and trials[0].state == optuna.trial.TrialState.COMPLETE
    assert trials[killed.number].state == optuna.trial.TrialState.FAIL
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", optuna.storages.RetryFailedTrialCallback)
    retried = [t for t in trials if retry.retried_trial_number(t) == killed.number]
    # the interrupted architecture is tried again (a trial killed while sampling keeps what it had chosen)
    assert retried and killed.params.items() <= retried[0].params.items()
    assert sum(r.state == "complete" for r in result.rows) == 3


def test_the_pareto_front_and_hypervolume():
    points = [(0.5, 0.2), (0.8, 0.5), (0.4, 0.3), (0.8, 0.6), (0.9, 1.2)]
    assert pareto_front(points) == [0, 1, 4]
    # [0.2, 1] × [0, 0.5] ∪ [0.5, 1] × [0, 0.8]; the point past the reference cost adds nothing
    assert hypervolume(points, (0.0, 1.0)) == pytest.approx(0.55)
    assert hypervolume([], (0.0, 1.0)) == 0


def test_workers_and_resumed_runs_draw_different_architectures(tmp_path):
    from convforge.nas.study import SearchSettings, open_study

    space = SearchSpace.load(TINY_SPACE)
    settings = dict(space=TINY_SPACE, data="fashion-mnist", study="s", storage=f"sqlite:///{tmp_path / 's.db'}",
                    sampler="random", budget=Budget(), trials=8, out=str(tmp_path))  # fmt: skip
    drawn = []
    for worker in (0, 1, 0):  # two workers, then worker 0 again as a resumed run would be
        study = open_study(SearchSettings(**settings, worker=worker))
        trial = study.ask()
        drawn.append(space.sample(trial))
        study.tell(trial, [0.5, 1.0])
    assert drawn[0] != drawn[1] and drawn[2] != drawn[0]


def test_a_study_measured_in_the_trained_form_is_not_resumed_with_inference_form_budgets(tmp_path):
    convforge.search(TINY_SPACE, trials=1, sampler="random", max_macs=1000, project=tmp_path, progress=False,
                     **QUICK)  # fmt: skip
    storage = f"sqlite:///{tmp_path / 'search' / 'tiny-random' / 'study.db'}"
    study = optuna.load_study(study_name="tiny-random", storage=storage)
    older = {k: v for k, v in study.user_attrs["settings"].items() if k != "measured"}
    study.set_user_attr("settings", older)  # as a study written before budgets were checked on the inference form
    with pytest.raises(convforge.ConvforgeError, match="measured in the trained form by an earlier convforge"):
        convforge.search(TINY_SPACE, trials=2, sampler="random", max_macs=1000, project=tmp_path, progress=False,
                         **QUICK)  # fmt: skip
