"""What a timm, torchvision or Ultralytics user reaches for on the command line, and the sentences they get."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from test_cli import convforge

TINY = ["--set", "width=0.25", "--data", "fashion-mnist", "--train-subset", "256", "--val-subset", "128",
        "--batch", "128", "--epochs", "1", "--quiet"]  # fmt: skip


def one_sentence(run, *words: str) -> str:
    """The run failed with exactly one line on stderr, no traceback, holding ``words``; returns that line."""
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode != 0 and len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    project = tmp_path_factory.mktemp("everyday")
    run = convforge("train", "simplenet_cifar_310k", *TINY, "--project", str(project))
    assert run.returncode == 0, run.stderr
    return project / "classify" / "simplenet_cifar_310k"


@pytest.fixture
def image(tmp_path):
    import torch
    from torchvision.io import write_png

    path = tmp_path / "shoe.png"
    write_png(torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8), str(path))
    return path


@pytest.mark.parametrize(("device", "words"), [("cuda:99", ["cuda:99", "GPU", "--device cpu"]),
                                               ("tpu", ["'tpu'", "auto, cpu, cuda or cuda:N"])])  # fmt: skip
def test_a_device_the_machine_lacks_is_one_sentence_for_train_and_eval(classifier, tmp_path, device, words):
    one_sentence(convforge("train", "simplenet_cifar_310k", *TINY, "--device", device, "--project", str(tmp_path)),
                 *words)  # fmt: skip
    one_sentence(convforge("eval", str(classifier), "--device", device), *words)
    assert not any(tmp_path.iterdir())


def test_eval_and_predict_take_a_device(classifier, image):
    scored = convforge("eval", str(classifier), "--device", "cpu", "--val-subset", "64")
    assert scored.returncode == 0 and "(64 examples)" in scored.stdout, scored.stderr
    predicted = convforge("predict", str(classifier), str(image), "--device", "auto", "--top-k", "2")
    assert predicted.returncode == 0 and "probability" in predicted.stdout, predicted.stderr


def test_a_data_root_that_does_not_exist_is_refused_instead_of_searching_elsewhere(tmp_path):
    missing = tmp_path / "no-such-folder"
    run = convforge("train", "simplenet_cifar_310k", *TINY, "--data-root", str(missing), "--project", str(tmp_path))
    one_sentence(run, str(missing), "does not exist", "leave the option out")
    assert not (tmp_path / "classify").exists()


def test_train_and_val_subsets_apply_to_super_resolution(tmp_path, shared_data):
    run = convforge("train", "espcn", "--task", "sr", "--data", "set14", "--val-data", "set5", "--epochs", "1",
                    "--train-subset", "3", "--val-subset", "2", "--data-root", str(shared_data), "--project",
                    str(tmp_path), "--quiet")  # fmt: skip
    assert run.returncode == 0, run.stderr
    data = yaml.safe_load((tmp_path / "sr" / "espcn" / "config.yaml").read_text())["data"]
    assert (data["train_images"], data["val_images"]) == (3, 2)


def test_a_plot_path_in_a_missing_folder_is_refused_and_creates_nothing(tmp_path):
    target = tmp_path / "nowhere" / "deeper" / "chart.png"
    one_sentence(convforge("profile", "resnet20", "--plot", str(target)), "does not exist", str(target.parent))
    assert not (tmp_path / "nowhere").exists()


def test_a_negative_depth_is_refused():
    one_sentence(convforge("profile", "resnet20", "--per-module", "--depth", "-1"), "--depth", "-1")


def test_a_damaged_json_sidecar_loses_nothing_on_resume(classifier, tmp_path):
    """The checkpoint's state lives in the safetensors file's header; the JSON beside it is for people to read."""
    import shutil

    from convforge.runs.checkpoint import load_checkpoint

    run = Path(shutil.copytree(classifier, tmp_path / "run"))
    (run / "checkpoints" / "last.json").write_text('{"epoch": 1, "optimizer": [trunc')
    state = load_checkpoint(run / "checkpoints" / "last").meta["optimizer"]
    resumed = convforge("train", "--resume", str(run), "--epochs", "2", "--quiet")
    assert resumed.returncode == 0 and "warning" not in resumed.stderr, resumed.stderr
    assert yaml.safe_load((run / "checkpoints" / "last.json").read_text())["epoch"] == 2  # rewritten whole
    assert state["param_groups"][0]["momentum"] == load_checkpoint(run / "checkpoints" / "last").meta["optimizer"][
        "param_groups"][0]["momentum"]  # fmt: skip


def test_an_out_that_is_a_file_is_one_sentence_for_predict_and_explain(classifier, image, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    one_sentence(convforge("predict", str(classifier), str(image), "--out", str(taken)), str(taken), "is a file")
    one_sentence(convforge("explain", str(classifier), "--image", str(image), "--out", str(taken)), "is a file")
    assert taken.read_text() == "mine"


def test_misleading_inputs_get_the_sentence_that_fits(classifier, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    one_sentence(convforge("explain", str(classifier), "--image", str(folder)), "is a folder, not an image")
    one_sentence(convforge("train", "simplenet_cifar_310k", "--data", str(folder), "--project", str(tmp_path)),
                 "not an image-folder dataset", "train/<class>")  # fmt: skip
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    line = one_sentence(convforge("predict", str(classifier), str(broken)), str(broken))
    assert ".cpp" not in line and "/__w/" not in line
    spec = tmp_path / "net.yaml"
    spec.write_text("in_channels: 3\nlayers:\n  - [-1, 1, Conv, [16, 'three']]\n")
    one_sentence(convforge("profile", str(spec)), "row 0 (args)")


def test_a_finished_run_says_epoch_in_the_singular(classifier, tmp_path):
    import shutil

    run = shutil.copytree(classifier, tmp_path / "run")
    again = convforge("train", "--resume", str(run), "--quiet")
    assert again.returncode == 0 and "already finished its 1 epoch\n" in again.stdout, again.stdout


def test_a_detector_defaults_to_batches_of_16_as_ultralytics_does():
    from convforge.engine.recipe import Recipe
    from convforge.engine.trainer import _model_defaults
    from convforge.models import get_model_info

    recipe = Recipe.from_sources(None, defaults=_model_defaults(get_model_info("leyolo_nano")))
    assert recipe.batch_size == 16
    assert (
        Recipe.from_sources(None, defaults=_model_defaults(get_model_info("leyolo_nano")), batch_size=4).batch_size == 4
    )


def test_warnings_are_one_line_each_and_shown_once(capsys):
    import warnings

    from convforge.warning_lines import show_warnings_as_lines

    saved = warnings.showwarning
    try:
        show_warnings_as_lines()
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            show_warnings_as_lines()
            for _ in range(2):
                warnings.warn("three labels\nname no image", UserWarning, stacklevel=1)
    finally:
        warnings.showwarning = saved
    assert capsys.readouterr().err == "convforge: warning: three labels name no image\n"


def test_a_log_redirected_to_a_file_gets_no_progress_bars(tmp_path):
    done = subprocess.run([sys.executable, "-m", "convforge", "train", "simplenet_cifar_310k", *TINY[:-1],
                           "--project", str(tmp_path)], capture_output=True, text=True, timeout=300,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "\r" not in done.stdout and "epoch   1/1" in done.stdout


def test_predict_takes_folders_and_patterns_and_writes_one_result_per_image(classifier, tmp_path):
    import torch
    from torchvision.io import write_png

    for sub in ("a", "b"):
        (tmp_path / "in" / sub).mkdir(parents=True)
        write_png(torch.zeros(1, 28, 28, dtype=torch.uint8), str(tmp_path / "in" / sub / "x.png"))
    write_png(torch.zeros(1, 28, 28, dtype=torch.uint8), str(tmp_path / "in" / "y.png"))
    out = tmp_path / "out"
    run = convforge("predict", str(classifier), str(tmp_path / "in" / "**" / "*.png"), "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert len(yaml.safe_load((out / "predictions.json").read_text())) == 3
    folder = convforge("predict", str(classifier), str(tmp_path / "in" / "a"), str(tmp_path / "in" / "b"))
    assert folder.returncode == 0 and folder.stdout.count("x.png") == 2 * 5, folder.stdout  # top 5 of each
    one_sentence(convforge("predict", str(classifier), str(tmp_path / "in" / "*.jpg")), "matches no file")


def test_models_reads_its_cached_table_without_importing_torch(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    first = subprocess.run([sys.executable, "-m", "convforge", "models", "resnet2*"], capture_output=True, text=True,
                           env=env, timeout=300, check=False)  # fmt: skip
    assert first.returncode == 0 and "resnet20" in first.stdout, first.stderr
    code = """
import contextlib, io, sys
from convforge.cli import main
shown = io.StringIO()
with contextlib.redirect_stdout(shown):
    main(["models", "resnet2*"])
print(shown.getvalue().count("269,722"), "torch" in sys.modules)
"""
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert again.stdout.split() == ["1", "False"]  # the same table, torch not loaded


def test_models_lists_timm_and_torchvision_names_by_prefix():
    timm = convforge("models", "timm:mobilenetv3_small*")
    assert timm.returncode == 0 and "timm:mobilenetv3_small_100" in timm.stdout, timm.stderr
    tv = convforge("models", "torchvision:resnet1*")
    assert tv.returncode == 0 and "torchvision:resnet18" in tv.stdout


def test_the_command_line_knows_every_task():
    from convforge.task_names import TASK_NAMES
    from convforge.tasks import TASKS

    assert tuple(TASKS) == TASK_NAMES


def test_patience_stops_a_run_whose_score_stopped_improving(tmp_path):
    from convforge.runs.run_dir import RunDir

    args = [a for a in TINY if a not in ("--epochs", "1")]
    run = convforge("train", "simplenet_cifar_310k", *args, "--epochs", "12", "--patience", "1", "--lr", "0.5",
                    "--project", str(tmp_path))  # fmt: skip
    assert run.returncode == 0, run.stderr
    tops = [row["val_top1"] for row in RunDir(tmp_path / "classify" / "simplenet_cifar_310k").read_metrics()]
    best_before = [max(range(n), key=lambda i: (tops[i], -i)) for n in range(1, len(tops) + 1)]
    waited = [n - 1 - best for n, best in zip(range(1, len(tops) + 1), best_before)]
    assert len(tops) < 12 and waited[-1] >= 1 and all(w < 1 for w in waited[:-1]), tops
    assert "stopping early" in run.stdout


def test_eval_report_writes_the_confusion_matrix_and_per_class_accuracy(classifier, tmp_path):
    import csv

    run = convforge("eval", str(classifier), "--report", "--val-subset", "500", "--out", str(tmp_path / "val"))
    assert run.returncode == 0, run.stderr
    assert "most often taken for" in run.stdout and "Ankle boot" in run.stdout
    rows = list(csv.DictReader((tmp_path / "val" / "per_class.csv").open()))
    assert len(rows) == 10 and sum(int(r["examples"]) for r in rows) == 500
    top1 = float(run.stdout.split("top1 ")[1].split(" %")[0])
    assert sum(int(r["correct"]) for r in rows) / 5 == pytest.approx(top1, abs=0.01)  # the same predictions
    assert (tmp_path / "val" / "confusion_matrix.png").stat().st_size > 0
    before = (tmp_path / "val" / "per_class.csv").read_bytes()
    again = convforge("eval", str(classifier), "--report", "--val-subset", "500", "--out", str(tmp_path / "val"))
    one_sentence(again, "confusion_matrix.png", "--overwrite")
    assert (tmp_path / "val" / "per_class.csv").read_bytes() == before
    replaced = convforge("eval", str(classifier), "--report", "--val-subset", "500", "--out", str(tmp_path / "val"),
                         "--overwrite")  # fmt: skip
    assert replaced.returncode == 0, replaced.stderr


def test_tensorboard_logs_every_epoch_beside_metrics_csv(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = [a for a in TINY if a not in ("--epochs", "1")]
    run = convforge("train", "simplenet_cifar_310k", *args, "--epochs", "2", "--tensorboard", "--project",
                    str(tmp_path))  # fmt: skip
    assert run.returncode == 0, run.stderr
    events = EventAccumulator(str(tmp_path / "classify" / "simplenet_cifar_310k" / "tensorboard"))
    events.Reload()
    assert {"train/loss", "val/loss", "val/top1", "lr"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("val/top1")] == [1, 2]


def test_tensorboard_missing_is_named_with_its_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    run = convforge("train", "simplenet_cifar_310k", *TINY, "--tensorboard", "--project", str(tmp_path))
    one_sentence(run, "pip install tensorboard")
    assert not (tmp_path / "classify").exists()  # refused before the run began


def test_device_cuda_trains_on_a_gpu_or_says_there_is_none(tmp_path):
    import torch

    run = convforge("train", "simplenet_cifar_310k", *TINY, "--device", "cuda", "--project", str(tmp_path))
    if torch.cuda.is_available():
        assert run.returncode == 0, run.stderr
    else:
        one_sentence(run, "'cuda'", "finds none", "--device cpu")
