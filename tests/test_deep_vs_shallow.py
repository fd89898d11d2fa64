"""The deep-versus-shallow study: its grid, its trial store, its workers, its report."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from convforge.errors import ConvforgeError, InvalidValueError
from convforge.experiments.deep_vs_shallow import GRIDS, load_grid, run_study
from convforge.experiments.deep_vs_shallow.grid import pair_key
from convforge.experiments.deep_vs_shallow.report import mean_difference, paired_tables, q_bin, q_table
from convforge.experiments.trial_store import TrialStore

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
        with pytest.raises(InvalidValueError, match="grid 'huge' is not known; use one of small, medium, paper"):
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
            run_study(grid, out=tmp_path / "study", workers=0, progress=False)
        assert not (tmp_path / "study" / "trials").exists()
        with pytest.raises(InvalidValueError, match="dataset\\(s\\) 'mnits' are not known"):
            run_study(grid, data="mnits", out=tmp_path / "study", workers=0, progress=False)


class TestTrialStore:
    def test_concurrent_workers_never_claim_the_same_trial(self, tmp_path):
        url = str(tmp_path / "trials.db")
        TrialStore(url).add("s", {f"t{i}": {"i": i} for i in range(40)})
        claimed: list[list[str]] = [[], [], []]

        def work(slot: int) -> None:
            store = TrialStore(url)  # one connection pool per worker, as in separate processes
            while (trial := store.claim("s", f"worker-{slot}")) is not None:
                claimed[slot].append(trial.key)
                store.finish("s", trial.key, f"worker-{slot}", {"by": slot})

        threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        everything = [k for keys in claimed for k in keys]
        assert sorted(everything) == sorted(f"t{i}" for i in range(40))  # each exactly once
        assert TrialStore(url).counts("s") == {"pending": 0, "running": 0, "done": 40, "failed": 0}

    def test_adding_the_same_trials_again_changes_nothing(self, tmp_path):
        store = TrialStore(tmp_path / "t.db")
        assert store.add("s", {"a": {"x": 1}, "b": {"x": 2}}) == 2
        trial = store.claim("s", "me")
        store.finish("s", trial.key, "me", {"loss": 0.5})
        assert store.add("s", {"a": {"x": 1}, "b": {"x": 2}, "c": {"x": 3}}) == 1
        assert store.get("s", "a").result == {"loss": 0.5}
        assert [t.key for t in store.trials("s")] == ["a", "b", "c"]

    def test_a_trial_of_a_dead_worker_is_claimed_again_and_a_live_one_is_not(self, tmp_path):
        store = TrialStore(tmp_path / "t.db")
        store.add("s", {"a": {}, "b": {}})
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        host = os.uname().nodename
        assert store.claim("s", f"{host}:{dead.pid}").key == "a"
        assert store.claim("s", f"{host}:{os.getpid()}").key == "b"  # alive: this process
        again = store.claim("s", "someone")
        assert again.key == "a" and again.attempts == 2
        assert store.claim("s", "someone else") is None
        assert store.busy_elsewhere("s") == 2

    def test_a_silent_worker_loses_its_trial_after_the_stale_time(self, tmp_path):
        store = TrialStore(tmp_path / "t.db", stale_after_s=0.2)
        store.add("s", {"a": {}})
        store.claim("s", "far-away-host:123")
        assert store.claim("s", "me") is None
        time.sleep(0.3)
        assert store.claim("s", "me").attempts == 2

    def test_a_finished_result_is_never_overwritten(self, tmp_path):
        store = TrialStore(tmp_path / "t.db")
        store.add("s", {"a": {}})
        store.claim("s", "one")
        store.finish("s", "a", "one", {"loss": 1.0})
        store.finish("s", "a", "two", {"loss": 2.0})
        store.fail("s", "a", "two", "boom")
        assert store.get("s", "a").result == {"loss": 1.0} and store.get("s", "a").status == "done"
        assert store.claim("s", "three") is None

    def test_a_trial_stored_with_other_settings_is_refused(self, tmp_path):
        store = TrialStore(tmp_path / "t.db")
        store.add("s", {"a": {"epochs": 3}})
        with pytest.raises(ConvforgeError, match="already has trial a with other settings \\(epochs: 3 → 5\\)"):
            store.add("s", {"a": {"epochs": 5}})

    def test_a_trial_that_keeps_killing_its_worker_is_failed_not_retried_forever(self, tmp_path):
        store = TrialStore(tmp_path / "t.db", stale_after_s=0.0, max_attempts=2)
        store.add("s", {"a": {}})
        assert store.claim("s", "w1").attempts == 1
        time.sleep(0.01)
        assert store.claim("s", "w2").attempts == 2
        time.sleep(0.01)
        assert store.claim("s", "w3") is None
        trial = store.get("s", "a")
        assert trial.status == "failed" and "died 2 times" in trial.error
        assert store.retry_failed("s") == ["a"] and store.get("s", "a").attempts == 0

    def test_claims_can_be_limited_to_a_scope(self, tmp_path):
        store = TrialStore(tmp_path / "t.db")
        store.add("s", {"cifar10-a": {}, "mnist-a": {}})
        assert store.claim("s", "me", scope=("mnist-",)).key == "mnist-a"
        assert store.claim("s", "me", scope=("mnist-",)) is None
        assert store.counts("s", scope=("cifar10-",))["pending"] == 1

    def test_a_bad_url_is_one_clear_error(self):
        with pytest.raises(ConvforgeError, match="could not open the trial store"):
            TrialStore("nosuchdialect://x")


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


def wait_for(condition, timeout=240.0, what="a condition"):
    end = time.time() + timeout
    while time.time() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


STUDY = "deep-vs-shallow-tiny"


def start_study(tmp_path: Path, shared_data: Path) -> tuple[subprocess.Popen, TrialStore, Path, Path]:
    """``convforge study`` on the tiny grid with 2 workers, in its own process group: (process, store, out, grid)."""
    grid = tmp_path / "tiny.yaml"
    grid.write_text(TINY_GRID)
    out = tmp_path / "study"
    env = {**os.environ, "CONVFORGE_DATA": str(shared_data)}
    command = [sys.executable, "-m", "convforge", "study", "deep-vs-shallow", "--grid", str(grid), "--out", str(out),
               "--workers", "2", "--quiet"]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)  # fmt: skip
    store = wait_for(lambda: (out / "trials.db").exists() and TrialStore(out / "trials.db"), 60, "the store")
    return process, store, out, grid


def test_a_study_completes_after_a_worker_is_killed_mid_study(tmp_path, shared_data):
    """End to end on real MNIST: kill one worker mid-trial; the other finishes everything, nothing is lost."""
    process, store, out, _ = start_study(tmp_path, shared_data)
    study = STUDY

    def finished_and_running():
        trials = store.trials(study)
        done = {t.key: t for t in trials if t.status == "done"}
        running = [t for t in trials if t.status == "running"]
        return (done, running) if done and running else None

    def freeze_a_busy_worker():
        _, running = wait_for(finished_and_running, what="a finished and a running trial")
        pid = int(running[0].owner.split(":")[1])
        os.kill(pid, signal.SIGSTOP)  # frozen, its trial cannot finish while we look
        trial = store.get(study, running[0].key)
        if trial.status == "running" and trial.owner == running[0].owner:
            return pid, trial
        os.kill(pid, signal.SIGCONT)
        return None

    pid, victim = wait_for(freeze_a_busy_worker, what="a worker in mid-trial")
    done_before = {t.key: t for t in store.trials(study, "done")}
    assert done_before
    os.kill(pid, signal.SIGKILL)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output

    trials = {t.key: t for t in store.trials(study)}
    assert len(trials) == 6 and all(t.status == "done" for t in trials.values()), output
    assert trials[victim.key].attempts == 2  # the killed trial ran again
    for key, before in done_before.items():  # finished trials were neither re-run nor changed
        assert trials[key].attempts == 1 and trials[key].result == before.result
        assert trials[key].finished == before.finished
    assert sum(t.attempts for t in trials.values()) == 7
    result = trials[victim.key].result
    assert result["params"] > 0 and result["q"] == pytest.approx(600 * 10 / result["params"])
    assert 0 < result["val_loss"] < 3 and result["epochs"] == 2
    assert "Mean cross-entropy per Q interval" in output and "mnist (published)" in output
    assert (out / "report" / "sequential_vs_parallel.png").stat().st_size > 0
    assert (out / "report" / "loss_vs_q.png").stat().st_size > 0


def test_a_study_killed_outright_resumes_without_repeating_finished_trials(tmp_path, shared_data):
    process, store, out, grid = start_study(tmp_path, shared_data)
    study = STUDY
    wait_for(lambda: store.counts(study)["done"] >= 2, what="two finished trials")
    os.killpg(process.pid, signal.SIGKILL)  # the study and all its workers
    process.wait()
    done_before = {t.key: t for t in store.trials(study, "done")}
    assert 2 <= len(done_before) < 6

    result = run_study(grid, out=out, workers=1, progress=False, data_root=str(shared_data))
    assert result.counts["done"] == 6 and len(result.rows) == 6
    trials = {t.key: t for t in store.trials(study)}
    for key, before in done_before.items():
        assert trials[key].attempts == 1 and trials[key].finished == before.finished
    assert "Q < 1" in result.table
