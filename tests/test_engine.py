"""Training and evaluation on real data (small subsets of Fashion-MNIST), run directories and resume."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from torch import nn

import convforge
from convforge.engine.optim import lr_factor
from convforge.engine.recipe import Recipe
from convforge.engine.trainer import NonFiniteLossError
from convforge.errors import ConvforgeError
from convforge.runs.checkpoint import load_checkpoint
from convforge.runs.run_dir import RunDir

TINY = {"width": 0.25}  # SimpleNet-310K at a quarter width: seconds per epoch on 2 cores
FAST = dict(data="fashion-mnist", train_subset=1024, val_subset=512, batch_size=128, progress=False)


def tiny_run(tmp_path, **overrides):
    settings = {**FAST, "project": str(tmp_path), **overrides}
    return convforge.train("simplenet_cifar_310k", model_kwargs=TINY, **settings)


def test_one_epoch_trains_evaluates_and_writes_the_run_directory(tmp_path):
    result = tiny_run(tmp_path, epochs=1, train_subset=2048, batch_size=64)
    run = result.run_dir
    assert run == tmp_path / "classify" / "simplenet_cifar_310k"
    for name in ("config.yaml", "metrics.csv", "profile.json", "plots/curves.png", "checkpoints/last.safetensors",
                 "checkpoints/last.json", "checkpoints/best.safetensors", "checkpoints/best.json"):  # fmt: skip
        assert (run / name).is_file(), name
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["recipe"]["epochs"] == 1 and config["model_kwargs"]["in_chans"] == 1
    row = result.metrics[0]
    assert set(row) >= {"train_loss", "val_loss", "val_top1", "val_top5", "lr", "images_per_s", "epoch_time_s"}
    assert row["train_loss"] < math.log(10)  # below the chance-level cross-entropy: it learned something
    profile = json.loads((run / "profile.json").read_text())
    assert profile["params"] == sum(p.numel() for p in result.model.parameters())
    sidecar = json.loads((run / "checkpoints/last.json").read_text())
    assert sidecar["epoch"] == 1 and "optimizer" in sidecar and "scheduler" in sidecar
    metrics = convforge.evaluate(run)
    assert metrics["count"] == 10_000  # evaluation uses the full test split
    assert 0 <= metrics["top1"] <= metrics["top5"] <= 100


def test_a_second_run_with_the_same_name_gets_a_numbered_directory(tmp_path):
    tiny_run(tmp_path, epochs=1, train_subset=256, val_subset=128)
    second = tiny_run(tmp_path, epochs=1, train_subset=256, val_subset=128)
    assert second.run_dir.name == "simplenet_cifar_310k-2"


def _train_command(project, *extra):
    return [sys.executable, "-m", "convforge", "train", "simplenet_cifar_310k", "--set", "width=0.25", "--data",
            "fashion-mnist", "--train-subset", "2048", "--val-subset", "512", "--batch", "128", "--epochs", "3",
            "--ema", "0.9", "--label-smoothing", "0.1", "--grad-clip", "5", "--seed", "7", "--project", str(project),
            "--quiet", *extra]  # fmt: skip


def _epoch_row(run_dir, epoch):
    row = {k: v for k, v in RunDir(run_dir).read_metrics()[epoch - 1].items()}
    return {k: row[k] for k in ("epoch", "train_loss", "val_loss", "val_top1", "val_top5", "lr")}


@pytest.mark.slow  # 22 s: a kill and a resume; resuming is also tested by the metrics-crash and hostile-input tests
def test_a_run_killed_after_epoch_2_resumes_to_the_same_epoch_3_as_an_uninterrupted_run(tmp_path):
    env = {**os.environ, "CONVFORGE_OFFLINE": "1"}
    whole = subprocess.run(_train_command(tmp_path / "whole"), env=env, capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr

    run_dir = tmp_path / "killed" / "classify" / "simplenet_cifar_310k"
    process = subprocess.Popen(_train_command(tmp_path / "killed"), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    sidecar = run_dir / "checkpoints" / "last.json"
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if sidecar.is_file() and json.loads(sidecar.read_text() or "{}").get("epoch") == 2:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)  # no chance to clean up
    process.wait()
    assert load_checkpoint(run_dir / "checkpoints" / "last.safetensors").epoch == 2

    resumed = subprocess.run([sys.executable, "-m", "convforge", "train", "--resume", str(run_dir), "--quiet"],
                             env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert _epoch_row(run_dir, 3) == _epoch_row(tmp_path / "whole" / "classify" / "simplenet_cifar_310k", 3)
    assert [r["epoch"] for r in RunDir(run_dir).read_metrics()] == [1, 2, 3]


class ExplodesInEpoch2(nn.Module):
    """A small classifier whose output turns to NaN at its third training step."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
        self.steps = 0

    def forward(self, x):
        out = self.net(x)
        if self.training:
            self.steps += 1
            if self.steps >= 3:
                out = out * float("nan")
        return out


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    settings = {**FAST, "train_subset": 256, "val_subset": 128, "epochs": 2, "project": str(tmp_path)}
    with pytest.raises(NonFiniteLossError, match="epoch 2, step 1.*last good checkpoint.*epoch 1"):
        convforge.train(ExplodesInEpoch2(), name="explodes", **settings)
    last = tmp_path / "classify" / "explodes" / "checkpoints" / "last.safetensors"
    assert load_checkpoint(last).epoch == 1
    assert all(torch.isfinite(t).all() for t in load_checkpoint(last).tensors["model"].values())


class ExplodesAtStep3(ExplodesInEpoch2):
    """Its output turns to NaN at the third training step of its first epoch."""


def test_a_nan_loss_stops_the_run_within_the_check_interval(tmp_path):
    from convforge.engine.trainer import FINITE_CHECK_STEPS

    model = ExplodesAtStep3()
    settings = {**FAST, "train_subset": 8 * 40, "val_subset": 128, "batch_size": 8, "epochs": 1}
    with pytest.raises(NonFiniteLossError, match="became nan at epoch 1, step 3;.*no epoch finished"):
        convforge.train(model, name="explodes", project=str(tmp_path), **settings)
    assert 3 <= model.steps <= FINITE_CHECK_STEPS  # stopped at the first check after the NaN, not at the epoch's end
    assert not (tmp_path / "classify" / "explodes" / "checkpoints" / "last.safetensors").exists()


def test_corrupted_or_truncated_checkpoint_is_a_clear_error(tmp_path):
    run = tiny_run(tmp_path, epochs=1, train_subset=256, val_subset=128).run_dir
    path = run / "checkpoints/last.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConvforgeError, match="corrupted or truncated"):
        load_checkpoint(path)
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(ConvforgeError, match="corrupted or truncated"):
        convforge.train(None, resume=run, progress=False, epochs=2)


def test_bad_recipe_values_are_rejected_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="opt = 'lion'.*sgd, adamw, adadelta"):
        tiny_run(tmp_path, opt="lion")
    with pytest.raises(ValueError, match="unknown recipe field"):
        tiny_run(tmp_path, learning_rat=0.1)
    assert not (tmp_path / "classify").exists()


def test_recipe_file_is_read_and_overridden(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("opt: adamw\nepochs: 7\nlabel_smoothing: 0.1\n")
    recipe = Recipe.from_sources(path, epochs=3)
    assert (recipe.opt, recipe.epochs, recipe.learning_rate) == ("adamw", 3, 2e-3)
    assert recipe.task_settings.label_smoothing == 0.1  # a classification field, held by the task's settings
    assert recipe.to_dict()["label_smoothing"] == 0.1 and recipe.to_dict()["epochs"] == 3


def test_task_settings_of_the_wrong_type_are_one_sentence(tmp_path):
    with pytest.raises(ValueError, match="label_smoothing = 'high' is not allowed; use a number in"):
        Recipe.from_sources(None, label_smoothing="high")
    with pytest.raises(ValueError, match="zoom = 'wide' is not allowed"):
        Recipe.from_sources(None, task="detect", zoom="wide")


def test_a_recipe_moved_to_another_task_drops_its_own_task_settings():
    recipe = Recipe.from_sources(None, epochs=3, label_smoothing=0.1)
    moved = recipe.with_overrides(task="sr", scale=3)
    assert (moved.task, moved.epochs, moved.task_settings.scale, moved.data) == ("sr", 3, 3, "t91")
    assert recipe.with_overrides(epochs=5).task_settings.label_smoothing == 0.1


def test_settings_of_another_task_are_refused_when_evaluating_or_resuming(tmp_path):
    run = tiny_run(tmp_path, epochs=1, train_subset=256, val_subset=128).run_dir
    with pytest.raises(ValueError, match=r"scale \(sr\) belong to another task, not classify"):
        convforge.evaluate(run, scale=4)
    with pytest.raises(ValueError, match=r"zoom \(detect\) belong to another task"):
        convforge.train(None, resume=run, progress=False, zoom=0.3)


def test_a_model_of_another_task_is_refused_before_any_data_is_read(tmp_path):
    with pytest.raises(ConvforgeError, match="resnet20 is a classify model; the detect task trains detect models "
                                             "such as leyolo_large"):  # fmt: skip
        convforge.train("resnet20", task="detect", data="nowhere.yaml", project=str(tmp_path), progress=False)


def test_a_field_of_another_task_is_refused_by_name():
    with pytest.raises(ValueError, match=r"scale \(sr\) belong to another task, not classify"):
        Recipe.from_sources(None, scale=4)
    recipe = Recipe.from_sources(None, task="sr", scale=4)
    assert recipe.task_settings.scale == 4 and recipe.data == "t91"  # the task's own default data


@pytest.mark.parametrize("sched", ["cosine", "step", "onecycle", "constant"])
def test_schedules_warm_up_linearly_then_follow_their_shape(sched):
    recipe = Recipe(epochs=4, sched=sched, warmup_epochs=1)
    factors = [lr_factor(s, 40, 10, recipe) for s in range(40)]
    assert factors[:10] == pytest.approx([(i + 1) / 10 for i in range(10)])
    assert all(0 <= f <= 1 for f in factors)
    if sched == "cosine":
        assert factors[10] == pytest.approx(1.0) and factors[-1] == pytest.approx(
            0.5 * (1 + math.cos(math.pi * 29 / 30))
        )
    if sched == "step":
        assert factors[25] == pytest.approx(0.1) and factors[35] == pytest.approx(0.01)
    if sched == "onecycle":
        assert factors[10] == pytest.approx(1.0) and factors[-1] < 0.05


def test_optimizers_exempt_biases_and_norms_from_weight_decay():
    from convforge.engine.optim import build_optimizer

    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    for opt in ("sgd", "adamw", "adadelta"):
        optimizer = build_optimizer(model, Recipe(opt=opt, weight_decay=0.01))
        decayed, exempt = optimizer.param_groups
        assert [p.ndim for p in decayed["params"]] == [4] and exempt["weight_decay"] == 0.0
    assert build_optimizer(model, Recipe(opt="sgd")).param_groups[0]["nesterov"]


def test_predict_returns_the_top_classes_of_an_image(tmp_path):
    from torchvision.io import write_png

    from convforge.data import load_dataset

    run = tiny_run(tmp_path, epochs=1).run_dir
    image = load_dataset("fashion-mnist", "test").images[0]
    write_png(image, str(tmp_path / "item.png"))
    ranked = convforge.predict(run, tmp_path / "item.png", top_k=3)
    assert len(ranked) == 3 and ranked[0][1] >= ranked[1][1] >= ranked[2][1]
    assert ranked[0][0] in load_dataset("fashion-mnist", "test").classes
    assert sum(p for _, p in convforge.predict(run, tmp_path / "item.png", top_k=10)) == pytest.approx(1.0, abs=1e-5)


def test_channels_last_is_chosen_for_conv_models_on_cpu(tmp_path):
    result = tiny_run(tmp_path, epochs=1, train_subset=256, val_subset=128)
    config = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert config["channels_last"] is True
    weights = [m.weight for m in result.model.modules()
               if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1) and m.in_channels > 1]  # fmt: skip
    assert weights and all(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
                           for w in weights)  # fmt: skip
    assert next(result.model.parameters()).device == torch.device("cpu")


@pytest.mark.slow  # over 8 s; run by make test-all
def test_two_process_ddp_run_on_cpu_trains_and_writes_one_run_directory(tmp_path):
    env = {**os.environ, "CONVFORGE_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "convforge", "train", "simplenet_cifar_310k", "--set", "width=0.25", "--data", "fashion-mnist",
               "--train-subset", "1024", "--val-subset", "512", "--batch", "64", "--epochs", "2",
               "--project", str(tmp_path), "--quiet"]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = list((tmp_path / "classify").iterdir())
    assert [r.name for r in runs] == ["simplenet_cifar_310k"]
    config = yaml.safe_load((runs[0] / "config.yaml").read_text())
    assert config["world_size"] == 2
    rows = RunDir(runs[0]).read_metrics()
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert done.stdout.count("best val top1") == 1  # only rank 0 reports
    assert load_checkpoint(runs[0] / "checkpoints" / "last.safetensors").epoch == 2


def test_an_image_folder_directory_trains_through_dataloader_workers(tmp_path):
    from torchvision.io import write_png

    from convforge.data import load_dataset

    source = load_dataset("fashion-mnist", "test")
    root = tmp_path / "folder"
    names = [source.classes[label].replace("/", "-") for label in range(3)]
    for label, name in enumerate(names):
        images = source.images[source.labels == label]
        for split, chunk in (("train", images[:32]), ("val", images[32:40])):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i, image in enumerate(chunk):
                write_png(image, str(root / split / name / f"{i}.png"))
    result = convforge.train("simplenet_cifar_310k", str(root), model_kwargs=TINY, epochs=1, batch_size=16,
                             image_size=32, workers=1, project=str(tmp_path / "runs"), progress=False)  # fmt: skip
    config = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert config["model_kwargs"] == {"num_classes": 3, "in_chans": 3, "width": 0.25}
    assert config["classes"] == sorted(names)
    assert config["data"]["train_examples"] == 96 and config["data"]["val_examples"] == 24
    scores = convforge.evaluate(result.run_dir)
    assert scores["count"] == 24 and scores["top1"] == pytest.approx(result.best()["val_top1"])
    assert scores["loss"] == pytest.approx(result.best()["val_loss"], rel=1e-5)  # the run's own validation, again


def test_onecycle_with_warmup_rises_once_then_falls():
    recipe = Recipe(epochs=4, sched="onecycle", warmup_epochs=0.5)
    factors = [lr_factor(s, 40, 10, recipe) for s in range(40)]
    peak = factors.index(max(factors))
    assert all(a < b for a, b in zip(factors[:peak], factors[1 : peak + 1]))
    assert all(a >= b for a, b in zip(factors[peak:], factors[peak + 1 :]))


def test_recipe_values_of_the_wrong_type_are_refused():
    with pytest.raises(ValueError, match="lr = 'abc'"):
        Recipe.from_sources(None, lr="abc")
    with pytest.raises(ValueError, match="milestones"):
        Recipe.from_sources(None, milestones=5)
    with pytest.raises(ValueError, match="at most 1e30"):
        Recipe.from_sources(None, lr=1e300)


def test_metrics_rows_survive_a_crash_between_checkpoint_and_metrics_file(tmp_path):
    run = tiny_run(tmp_path, epochs=2, train_subset=256, val_subset=128)
    (run.run_dir / "metrics.csv").unlink()  # as if killed right after the checkpoint was renamed into place
    resumed = convforge.train(None, resume=run.run_dir, progress=False, epochs=3)
    assert [r["epoch"] for r in resumed.metrics] == [1, 2, 3]
    assert [r["epoch"] for r in RunDir(run.run_dir).read_metrics()] == [1, 2, 3]
    assert RunDir(run.run_dir).read_config()["recipe"]["epochs"] == 3  # the config says how far it now goes


def test_resuming_a_run_that_never_finished_an_epoch_starts_it_over(tmp_path):
    run = tiny_run(tmp_path, epochs=1, train_subset=256, val_subset=128).run_dir
    for path in (run / "checkpoints").iterdir():
        path.unlink()
    resumed = convforge.train(None, resume=run, progress=False)
    assert resumed.run_dir == run and [r["epoch"] for r in resumed.metrics] == [1]


def test_run_files_get_the_usual_permissions(tmp_path):
    run = tiny_run(tmp_path, epochs=1, train_subset=256, val_subset=128).run_dir
    umask = os.umask(0)
    os.umask(umask)
    assert (run / "config.yaml").stat().st_mode & 0o777 == 0o666 & ~umask


def test_ema_warms_up_so_early_averages_follow_the_weights():
    from convforge.engine.ema import build_ema

    model = nn.Linear(1, 1, bias=False)
    ema = build_ema(model, decay=0.999)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model, step=1)
    assert ema.module.weight.item() == 1.0  # the first update copies the weights
    with torch.no_grad():
        model.weight.fill_(2.0)
    ema.update(model, step=2)
    second_decay = 1 / 11  # min(0.999, (2 - 1) / (2 + 9))
    assert ema.module.weight.item() == pytest.approx(second_decay * 1.0 + (1 - second_decay) * 2.0)
    for step in range(3, 53):
        ema.update(model, step=step)
    assert ema.module.weight.item() == pytest.approx(2.0, abs=1e-6)  # a constant 0.999 would still be ~5 % off


def test_ema_weights_are_validated_and_kept_through_a_resume(tmp_path):
    run = tiny_run(tmp_path, epochs=1, train_subset=256, val_subset=128, ema_decay=0.9)
    ckpt = load_checkpoint(run.run_dir / "checkpoints" / "last.safetensors")
    assert ckpt.meta["ema_updates"] == 2 and ckpt.tensors["ema"]
    assert any(not torch.equal(ckpt.tensors["ema"][k], ckpt.tensors["model"][k]) for k in ckpt.tensors["model"]
               if ckpt.tensors["model"][k].is_floating_point())  # fmt: skip
    resumed = convforge.train(None, resume=run.run_dir, progress=False, epochs=2)
    assert load_checkpoint(resumed.run_dir / "checkpoints" / "last.safetensors").meta["ema_updates"] == 4


def test_patience_on_the_training_loss_stops_when_it_falls_by_under_one_percent(tmp_path, capsys):
    # one full batch an epoch, no augmentation, no dropout, a learning rate too small to move: the same loss each epoch
    settings = {**FAST, "train_subset": 256, "val_subset": 128, "batch_size": 256, "flip": False, "crop_padding": 0}
    result = convforge.train("simplenet_cifar_310k", model_kwargs={**TINY, "drop_rate": 0, "pool_drop": 0},
                             project=str(tmp_path), epochs=6, patience=2, patience_on="train_loss", lr=1e-9,
                             **settings)  # fmt: skip
    losses = [row["train_loss"] for row in result.metrics]
    assert len(losses) == 3  # epoch 1 is the best; epochs 2 and 3 fall by under 1 %; no epoch 4
    assert all(later > losses[0] * 0.99 for later in losses[1:])
    assert "no better train loss for 2 epochs (patience 2)" in capsys.readouterr().out
    with pytest.raises(ValueError, match="patience_on = 'val_loss'.*val, train_loss"):
        tiny_run(tmp_path, patience_on="val_loss")
