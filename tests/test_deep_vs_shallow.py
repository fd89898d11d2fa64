"""The deep-versus-shallow study: its grid, its trial store, its workers, its report."""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from convforge.errors import ConvforgeError, InvalidValueError
from convforge.experiments.deep_vs_shallow import GRIDS, load_grid, run_study, run_trial
from convforge.experiments.deep_vs_shallow.grid import pair_key
from convforge.experiments.deep_vs_shallow.report import mean_difference, paired_tables, q_bin, q_table
from convforge.experiments.deep_vs_shallow.study import queue_grid, status_counts
from convforge.experiments.deep_vs_shallow.trial import model_settings, trial_recipe
from convforge.models import create_model
from convforge.trials import open_storage, work_through_queue

TINY_GRID = """
data: [mnist]
depth: [1, 2, 3]
width: [4]
epochs: 2
train_subset: 600
val_subset: 500
batch_size: 64
"""


class TestGrid:
    def test_every_configuration_is_trained_in_both_layouts_under_unique_keys(self):
        grid = GRIDS["medium"]
        configs = grid.configurations()
        assert len(configs) == grid.size() >= 200  # "a few hundred trials"
        by_pair: dict[str, set[str]] = {}
        for config in configs.values():
            by_pair.setdefault(pair_key(config), set()).add(config["layout"])
        assert all(layouts == {"sequential", "parallel"} for layouts in by_pair.values())

    def test_the_convergence_grid_spans_every_q_interval_with_both_layouts_per_subset(self):
        grid = GRIDS["convergence"]
        configs = grid.configurations()
        assert len(configs) == grid.size() == 48
        bins = set()
        for key, config in configs.items():
            assert key.endswith(f"-n{config['train_subset']}-{config['layout']}")
            params = sum(p.numel() for p in create_model("residual_stack_net", **model_settings(config)).parameters())
            bins.add(q_bin(config["train_subset"] * 10 / params))
            recipe = trial_recipe(config, ".").to_dict()  # converged, with nothing that would hide over-fitting
            assert {k: recipe[k] for k in ("patience_on", "weight_decay", "flip", "crop_padding", "label_smoothing")} \
                == {"patience_on": "train_loss", "weight_decay": 0, "flip": False, "crop_padding": 0,
                    "label_smoothing": 0}  # fmt: skip
            assert recipe["patience"] > 0 and recipe["train_subset"] == config["train_subset"]
        assert bins == {0, 1, 2, 3}
        assert "patience" not in GRIDS["medium"].training()  # grids stored before these settings still resume

    def test_the_paper_grid_has_6912_configurations_per_layout(self):
        assert GRIDS["paper"].size() == 6912 * 2

    def test_a_yaml_grid_is_read_and_bad_ones_are_named(self, tmp_path):
        good = tmp_path / "tiny.yaml"
        good.write_text(TINY_GRID)
        grid = load_grid(good)
        assert grid.name == "tiny" and grid.depth == (1, 2, 3) and grid.size() == 6
        bad = tmp_path / "bad.yaml"
        bad.write_text("depths: [1, 2]\n")
        with pytest.raises(InvalidValueError, match="unknown grid field.*depths"):
            load_grid(bad)
        with pytest.raises(
            InvalidValueError, match="grid .huge. is not known; use one of small, medium, convergence, paper"
        ):
            load_grid("huge")

    def test_yaml_numbers_are_read_as_numbers(self, tmp_path):
        path = tmp_path / "g.yaml"
        path.write_text("lr: [1e-3, 0.01]\ndepth: 4\nbranch_scale: [1, 0.5]\n")
        grid = load_grid(path)
        assert grid.lr == (0.001, 0.01) and grid.depth == (4,) and grid.branch_scale == (1.0, 0.5)
        path.write_text("depth: [two]\n")
        with pytest.raises(InvalidValueError, match="depth value 'two' is not allowed; use a int"):
            load_grid(path)

    def test_a_bad_value_is_rejected_before_any_training(self, tmp_path):
        grid = tmp_path / "g.yaml"
        grid.write_text(TINY_GRID + "kernel: [4]\n")
        with pytest.raises(InvalidValueError, match="kernel = 4"):
            run_study(grid, out=tmp_path / "study", workers=1, progress=False)
        assert not (tmp_path / "study" / "trials").exists()
        with pytest.raises(InvalidValueError, match="dataset\\(s\\) 'mnits' are not known"):
            run_study(grid, data="mnits", out=tmp_path / "study", workers=1, progress=False)


class TestStudySettings:
    def test_a_changed_training_setting_is_refused_by_name(self, tmp_path):
        grid = tmp_path / "tiny.yaml"
        grid.write_text(TINY_GRID)
        storage = open_storage(tmp_path / "trials.db")
        queue_grid(load_grid(grid), ("mnist",), storage, tmp_path, retry=False)
        grid.write_text(TINY_GRID.replace("epochs: 2", "epochs: 5"))
        with pytest.raises(ConvforgeError, match=r"already has trials trained with other settings \(epochs: 2 → 5\)"):
            queue_grid(load_grid(grid), ("mnist",), storage, tmp_path, retry=False)

    def test_each_dataset_has_its_own_study_and_queues_its_configurations_once(self, tmp_path):
        grid = load_grid_text(tmp_path, TINY_GRID)
        storage = open_storage(tmp_path / "trials.db")
        studies = queue_grid(grid, ("mnist", "cifar10"), storage, tmp_path, retry=False)
        queue_grid(grid, ("mnist", "cifar10"), storage, tmp_path, retry=False)
        assert [s.study_name for s in studies] == ["deep-vs-shallow-tiny-mnist", "deep-vs-shallow-tiny-cifar10"]
        assert [len(s.get_trials()) for s in studies] == [6, 6]
        assert status_counts(studies) == {"done": 0, "failed": 0, "pending": 12, "running": 0}

    def test_failed_configurations_run_again_only_when_asked(self, tmp_path):
        grid = load_grid_text(tmp_path, TINY_GRID)
        storage = open_storage(tmp_path / "trials.db")
        (study,) = queue_grid(grid, ("mnist",), storage, tmp_path, retry=False)
        work_through_queue([study], storage, lambda config: 1 / 0, poll_s=0.1, log=lambda text: None)
        assert status_counts([study])["failed"] == 6
        queue_grid(grid, ("mnist",), storage, tmp_path, retry=False)
        assert status_counts([study])["failed"] == 6
        queue_grid(grid, ("mnist",), storage, tmp_path, retry=True)
        assert status_counts([study]) == {"done": 0, "failed": 0, "pending": 6, "running": 0}


def load_grid_text(tmp_path: Path, text: str):
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    return load_grid(path)


def rows(q, train_seq, val_seq, train_par, val_par, seed=0, width=4):
    base = dict(data="mnist", depth=2, width=width, kernel=3, act="relu", lr=0.002, branch_scale=1.0, seed=seed, q=q)
    return [
        {**base, "layout": "sequential", "train_loss": train_seq, "val_loss": val_seq, "val_top1": 90.0},
        {**base, "layout": "parallel", "train_loss": train_par, "val_loss": val_par, "val_top1": 91.0},
    ]


class TestReport:
    def test_q_intervals_match_the_published_table(self):
        assert [q_bin(q) for q in (0.5, 1.0, 2.99, 3.0, 9.9, 10.0, 1e6)] == [0, 1, 1, 2, 2, 3, 3]

    def test_the_table_averages_per_interval_and_shows_the_published_values(self):
        data = rows(0.5, 0.1, 0.3, 0.2, 0.2, seed=0) + rows(0.5, 0.3, 0.5, 0.4, 0.4, seed=1) + rows(20, 1, 1, 1, 1)
        text = q_table(data)
        assert "0.20000 / 0.40000 (n=2)" in text  # sequential, Q < 1
        assert "0.30000 / 0.30000 (n=2)" in text  # parallel, Q < 1
        assert "0.00013 / 0.05201" in text  # published MNIST sequential, Q < 1

    def test_confidence_intervals_follow_student_t(self):
        d = mean_difference([1.0, 2.0, 3.0])
        assert d.mean == 2.0 and d.n == 3
        assert d.low == pytest.approx(2 - 4.302653 / math.sqrt(3), abs=1e-5)
        assert d.high == pytest.approx(2 + 4.302653 / math.sqrt(3), abs=1e-5)
        assert math.isnan(mean_difference([1.0]).low)

    def test_paired_differences_are_parallel_minus_sequential(self):
        summary, detail = paired_tables(rows(0.5, 0.1, 0.3, 0.2, 0.2, seed=0) + rows(0.5, 0.1, 0.3, 0.2, 0.1, seed=1))
        assert "+0.1000 [+0.1000, +0.1000]" in summary  # train loss: +0.1 in both seeds
        assert "2/2" in summary  # the parallel layout had the lower validation loss twice
        assert "mnist d2 w4 k3 relu lr0.002" in detail and "-0.1500" in detail
        assert re.search(r"mnist, Q < 1 +2 +\+0\.1000", summary)  # and per Q interval

    def test_pairs_of_a_subset_grid_are_per_subset_size(self):
        small = [{**r, "subsets": [500, 2000], "train_subset": 500} for r in rows(0.5, 0.1, 0.3, 0.2, 0.2)]
        large = [{**r, "subsets": [500, 2000], "train_subset": 2000, "q": 2.0} for r in rows(2.0, 0.3, 0.3, 0.4, 0.4)]
        summary, detail = paired_tables(small + large)
        assert "relu lr0.002 n500" in detail and "relu lr0.002 n2000" in detail
        assert "mnist, Q < 1" in summary and "mnist, 1 ≤ Q < 3" in summary


def start_study(tmp_path: Path, shared_data: Path, wait_for):
    """``convforge study`` on the tiny grid with 2 workers, in its own process group: (process, study, out, grid)."""
    grid = tmp_path / "tiny.yaml"
    grid.write_text(TINY_GRID)
    out = tmp_path / "study"
    env = {**os.environ, "CONVFORGE_DATA": str(shared_data)}
    command = [sys.executable, "-m", "convforge", "study", "deep-vs-shallow", "--grid", str(grid), "--out", str(out),
               "--workers", "2", "--heartbeat", "1", "--grace", "3", "--quiet"]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)  # fmt: skip

    def opened():
        if not (out / "trials.db").exists():
            return None
        try:
            return optuna.load_study(study_name="deep-vs-shallow-tiny-mnist", storage=f"sqlite:///{out / 'trials.db'}")
        except (KeyError, sqlalchemy.exc.DatabaseError):  # not there yet, or its tables are being made this moment
            return None

    return process, wait_for(opened, 60, "the study"), out, grid


def by_key(study) -> dict[str, list]:
    """Every trial of the study, grouped by its configuration's key."""
    grouped: dict[str, list] = {}
    for trial in study.get_trials(deepcopy=False):
        grouped.setdefault(trial.user_attrs["key"], []).append(trial)
    return grouped


def running_trial_and_its_process(study, out: Path):
    """A trial some worker is running now and that worker's process id, once one trial has finished."""
    trials = study.get_trials(deepcopy=False)
    if not any(t.state == TrialState.COMPLETE for t in trials):
        return None
    logs = "".join(p.read_text() for p in (out / "logs").glob("worker-*.log"))
    for trial in trials:
        found = re.findall(rf"Optuna trial {trial.number}, process (\d+)", logs)
        if trial.state == TrialState.RUNNING and found:
            return trial, int(found[-1])
    return None


@pytest.mark.slow  # the study's fault tolerance; test_a_study_killed_outright_... covers resuming by default
def test_a_study_completes_after_a_worker_is_killed_mid_study(tmp_path, shared_data, wait_for):
    """End to end on real MNIST: kill one worker mid-trial; the other finishes everything, nothing is lost."""
    process, study, out, _ = start_study(tmp_path, shared_data, wait_for)

    def freeze_a_busy_worker():
        found = running_trial_and_its_process(study, out)
        if found is None:
            return None
        trial, pid = found
        os.kill(pid, signal.SIGSTOP)  # frozen, its trial cannot finish while we look
        if study.get_trials(deepcopy=False)[trial.number].state == TrialState.RUNNING:
            return trial, pid
        os.kill(pid, signal.SIGCONT)
        return None

    victim, pid = wait_for(freeze_a_busy_worker, what="a worker in mid-trial")
    done_before = {key: ts for key, ts in by_key(study).items() if ts[0].state == TrialState.COMPLETE}
    assert done_before
    os.kill(pid, signal.SIGKILL)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output

    trials = by_key(study)
    assert len(trials) == 6 and all(ts[-1].state == TrialState.COMPLETE for ts in trials.values()), output
    key = victim.user_attrs["key"]
    assert [t.state for t in trials[key]] == [TrialState.FAIL, TrialState.COMPLETE]  # the killed trial ran again
    for done_key, before in done_before.items():  # finished trials were neither re-run nor changed
        assert len(trials[done_key]) == 1 and trials[done_key][0].datetime_complete == before[0].datetime_complete
    assert sum(len(ts) for ts in trials.values()) == 7
    result = trials[key][-1].user_attrs["result"]
    assert result["params"] > 0 and result["q"] == pytest.approx(600 * 10 / result["params"])
    assert 0 < result["val_loss"] < 3 and result["epochs"] == 2
    assert "Mean cross-entropy per Q interval" in output and "mnist (published)" in output
    assert (out / "report" / "sequential_vs_parallel.png").stat().st_size > 0
    assert (out / "report" / "loss_vs_q.png").stat().st_size > 0


@pytest.mark.slow  # over 8 s; run by make test-all
def test_a_study_killed_outright_resumes_without_repeating_finished_trials(tmp_path, shared_data, wait_for):
    process, study, out, grid = start_study(tmp_path, shared_data, wait_for)
    wait_for(lambda: sum(t.state == TrialState.COMPLETE for t in study.get_trials()) >= 2, what="two finished trials")
    os.killpg(process.pid, signal.SIGKILL)  # the study and all its workers
    process.wait()
    done_before = {key: ts[0] for key, ts in by_key(study).items() if ts[0].state == TrialState.COMPLETE}
    assert 2 <= len(done_before) < 6

    result = run_study(grid, out=out, workers=1, progress=False, data_root=str(shared_data), heartbeat_s=1,
                       grace_s=3)  # fmt: skip
    assert result.counts["done"] == 6 and len(result.rows) == 6
    trials = by_key(study)
    for key, before in done_before.items():
        assert len(trials[key]) == 1 and trials[key][0].datetime_complete == before.datetime_complete
    assert "Q < 1" in result.table


def test_finished_trials_of_an_earlier_trial_table_are_adopted(tmp_path):
    """A study folder from before the studies moved to Optuna keeps its finished trials and its report."""
    import json
    import sqlite3

    grid = load_grid_text(tmp_path, TINY_GRID)
    configs = grid.configurations(("mnist",))
    out = tmp_path / "study"
    out.mkdir()
    database = sqlite3.connect(out / "trials.db")
    database.execute("CREATE TABLE convforge_trials (study TEXT, key TEXT, position INTEGER, config TEXT, status TEXT, "
                     "owner TEXT, heartbeat REAL, attempts INTEGER, started REAL, finished REAL, result TEXT, "
                     "error TEXT)")  # fmt: skip
    for position, (key, config) in enumerate(list(configs.items())[:2]):
        result = {"params": 100, "q": 60.0, "train_loss": 0.5, "val_loss": 0.6 + position, "val_top1": 80.0}
        database.execute("INSERT INTO convforge_trials VALUES ('deep-vs-shallow-tiny', ?, ?, ?, 'done', NULL, NULL, "
                         "1, 0, 0, ?, NULL)", (key, position, json.dumps(config), json.dumps(result)))  # fmt: skip
    database.commit()
    database.close()

    result = run_study(tmp_path / "tiny.yaml", out=out, report_only=True, progress=False)
    assert sorted(row["key"] for row in result.rows) == sorted(list(configs)[:2])
    assert [row["val_loss"] for row in sorted(result.rows, key=lambda r: r["val_loss"])] == [0.6, 1.6]
    storage = open_storage(out / "trials.db")
    (study,) = queue_grid(grid, ("mnist",), storage, out, retry=False)  # the same training settings: accepted
    assert status_counts([study]) == {"done": 2, "failed": 0, "pending": 4, "running": 0}


def test_a_trial_folder_left_by_other_settings_is_started_over_not_resumed(tmp_path, shared_data):
    grid = load_grid_text(tmp_path, TINY_GRID.replace("depth: [1, 2, 3]", "depth: [1]"))
    config = next(iter(grid.configurations(("mnist",)).values()))
    context = {"out": str(tmp_path), "data_root": str(shared_data)}
    first = run_trial({**config, "epochs": 1}, context)
    again = run_trial({**config, "epochs": 2}, context)  # another grid's trial of the same key, same folder
    assert (first["epochs"], again["epochs"]) == (1, 2)
