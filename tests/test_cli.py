"""The `convforge` command, run as a user runs it."""

import contextlib
import io
import json
import subprocess
import sys
import warnings

import torch

from convforge.cli import main


def convforge(*args):
    """Run ``convforge ARGS`` as the console script does, in this process (a new interpreter per command would
    spend most of these tests importing torch); stdout, stderr and the exit status come back as from a process.
    ``test_the_module_runs_as_a_program`` runs it as a separate program."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("default")  # shown on stderr, as a fresh interpreter shows them
        try:
            code = main(list(args))
        except SystemExit as exit:  # argparse: --help, bad options
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def test_the_module_runs_as_a_program():
    run = subprocess.run([sys.executable, "-m", "convforge", "models", "resnet2*"], capture_output=True, text=True,
                         timeout=300, check=False)  # fmt: skip
    assert run.returncode == 0 and "resnet20" in run.stdout, run.stderr
    bad = subprocess.run([sys.executable, "-m", "convforge", "profile", "nonexistent_model"], capture_output=True,
                         text=True, timeout=300, check=False)  # fmt: skip
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "nonexistent_model" in bad.stderr


def test_the_command_line_lists_its_commands_without_importing_torch():
    code = """
import contextlib, io, sys
from convforge.cli import main
shown = io.StringIO()
with contextlib.suppress(SystemExit), contextlib.redirect_stdout(shown):
    main(["--help"])
print("train" in shown.getvalue() and "predict" in shown.getvalue(), "torch" in sys.modules)
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["True", "False"]  # the commands are listed; torch is not loaded


def test_models_prints_a_table_with_published_figures():
    run = convforge("models", "simplenet_cifar*")
    assert run.returncode == 0, run.stderr
    assert "simplenet_cifar_5m" in run.stdout and "5,498,378" in run.stdout and "✓" in run.stdout
    assert "resnet20" not in run.stdout


def test_models_with_no_match_says_so():
    run = convforge("models", "nothing_like_this*")
    assert run.returncode == 1 and "no model matches" in run.stdout


def test_profile_timm_model_with_latency_prints_a_readable_table():
    run = convforge("profile", "timm:resnet18", "--input", "3x224x224", "--latency", "--runs", "5", "--warmup", "1")
    assert run.returncode == 0, run.stderr
    assert "11,689,512" in run.stdout
    assert "1.81 GMACs" in run.stdout
    assert "ms median" in run.stdout and "threads" in run.stdout


def test_profile_json_with_per_module_rows():
    run = convforge("profile", "resnet20", "--format", "json", "--per-module", "--convention", "thop")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["convention"] == "thop" and data["params"] == 269_722
    assert any(m["module"] == "layer1.0.conv1" for m in data["modules"])


def test_profile_plot_option_saves_a_chart(tmp_path):
    chart = tmp_path / "resnet20.png"
    run = convforge("profile", "resnet20", "--plot", str(chart))
    assert run.returncode == 0, run.stderr
    assert chart.stat().st_size > 10_000 and str(chart) in run.stderr


def test_profile_csv_and_overrides():
    run = convforge("profile", "simplenet_cifar_310k", "--set", "in_chans=1", "--input", "1x28x28", "--format", "csv")
    assert run.returncode == 0, run.stderr
    assert "input_shapes,1x1x28x28" in run.stdout


def _one_sentence_error(run):
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    return lines[0]


def test_malformed_input_is_one_sentence():
    line = _one_sentence_error(convforge("profile", "timm:resnet18", "--input", "3x224"))
    assert "'3x224'" in line and "3x224x224" in line


def test_unknown_model_is_one_sentence_with_suggestions():
    line = _one_sentence_error(convforge("profile", "simplenet_cifar5m"))
    assert "simplenet_cifar_5m" in line


def test_failing_forward_is_one_sentence_naming_the_module():
    line = _one_sentence_error(convforge("profile", "timm:resnet18", "--input", "5x64x64"))
    assert "'conv1' (Conv2d)" in line


def test_bad_batch_size_is_one_sentence():
    line = _one_sentence_error(convforge("profile", "resnet20", "--batch", "0"))
    assert "batch" in line and "0" in line


def test_bad_latency_options_and_overrides_are_one_sentence():
    assert "--threads" in _one_sentence_error(convforge("profile", "resnet20", "--latency", "--threads", "0"))
    assert "in_chans" in _one_sentence_error(convforge("profile", "resnet20", "--set", "in_chans=abc"))
    assert "'foo'" in _one_sentence_error(convforge("profile", "timm:resnet18", "--set", "foo=1"))


TRAIN = ["--set", "width=0.25", "--data", "fashion-mnist", "--train-subset", "512", "--val-subset", "256",
         "--epochs", "1", "--quiet"]  # fmt: skip


def test_train_eval_and_predict_from_the_command_line(tmp_path):
    run = convforge("train", "simplenet_cifar_310k", *TRAIN, "--project", str(tmp_path))
    assert run.returncode == 0, run.stderr
    run_dir = tmp_path / "classify" / "simplenet_cifar_310k"
    assert str(run_dir) in run.stdout and "epoch   1/1" in run.stdout

    evaluated = convforge("eval", str(run_dir))
    assert evaluated.returncode == 0, evaluated.stderr
    assert "top1" in evaluated.stdout and "(10000 examples)" in evaluated.stdout

    from torchvision.io import write_png

    from convforge.data import load_dataset

    write_png(load_dataset("fashion-mnist", "test").images[0], str(tmp_path / "item.png"))
    predicted = convforge("predict", str(run_dir / "checkpoints" / "best.safetensors"), str(tmp_path / "item.png"),
                          "--top-k", "3")  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr
    assert "probability" in predicted.stdout and predicted.stdout.count("%") == 3

    explained = convforge("explain", str(run_dir), "--image", str(tmp_path / "item.png"), "--class", "Sneaker",
                          "--out", str(tmp_path / "explain"))  # fmt: skip
    assert explained.returncode == 0, explained.stderr
    assert "comes from the bias part c" in explained.stdout
    written = sorted(p.name for p in (tmp_path / "explain").iterdir())
    assert {"input.png", "bias_share.png", "votes_Sneaker.png"} <= set(written)
    assert any(n.startswith("row_") for n in written) and all(
        (tmp_path / "explain" / n).stat().st_size for n in written
    )


def test_super_resolution_train_eval_upscale_and_explain_from_the_command_line(tmp_path, shared_data):
    root = ["--data-root", str(shared_data)]
    recipe = ["--task", "sr", "--data", "set14", "--val-data", "set5", "--scale", "2", "--epochs", "1", "--batch", "16"]
    run = convforge("train", "sesr_m3", *recipe, "--set", "expansion=16", "--project", str(tmp_path), *root)
    assert run.returncode == 0, run.stderr
    run_dir = tmp_path / "sr" / "sesr_m3"
    assert "best val psnr" in run.stdout and " dB " in run.stdout

    evaluated = convforge("eval", str(run_dir), "--data", "set5,set14", *root)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "set5: " in evaluated.stdout and "(14 examples)" in evaluated.stdout and "psnr" in evaluated.stdout

    low = shared_data / "sr" / "test" / "Set5" / "x2" / "LR" / "img_002.png"
    upscaled = convforge("upscale", str(run_dir), str(low), str(tmp_path / "big.png"))
    assert upscaled.returncode == 0, upscaled.stderr
    from convforge.data.image_file import read_image

    small, big = read_image(low), read_image(tmp_path / "big.png")
    assert big.shape == (3, 2 * small.shape[1], 2 * small.shape[2])

    explained = convforge("explain", str(run_dir), "--image", str(low), "--out", str(tmp_path / "explain"))
    assert explained.returncode == 0, explained.stderr
    assert {"row_centre.png", "column_centre.png"} <= {p.name for p in (tmp_path / "explain").iterdir()}

    refused = convforge("upscale", str(run_dir), str(low), str(tmp_path / "big.gif"))
    assert refused.returncode == 1 and "gif" in refused.stderr.lower()

    other = shared_data / "sr" / "test" / "Set5" / "x2" / "LR" / "img_003.png"
    predicted = convforge("predict", str(run_dir), str(low), str(other))  # the SR task's prediction: enlargements
    assert predicted.returncode == 0, predicted.stderr
    written = sorted(p.name for p in (run_dir / "predict").iterdir())
    assert written == ["img_002.png", "img_003.png"] and "enlarged" in predicted.stdout
    assert torch.equal(read_image(run_dir / "predict" / "img_002.png"), big)  # as upscale made it

    # INT8: the collapsed model quantised, scored on whole images of any size through onnxruntime, and timed
    quantized = convforge("quantize", str(run_dir), "--calib", "32", "--latency-batch", "4", "--layers", "--quiet")
    assert quantized.returncode == 0, quantized.stderr
    assert "INT8 onnxruntime" in quantized.stdout and "SQNR dB" in quantized.stdout and "psnr" in quantized.stdout
    assert (run_dir / "model.int8.onnx").is_file() and (run_dir / "plots" / "quantization.png").is_file()
    scored = convforge("eval", str(run_dir / "model.int8.onnx"), "--data", "set5,set14", *root)
    assert scored.returncode == 0, scored.stderr
    int8, fp32 = (float(line.split("psnr ")[1].split(" dB")[0]) for line in scored.stdout.splitlines()[2:4])
    assert "set14: model.int8.onnx (onnxruntime)" in scored.stdout and abs(int8 - fp32) < 0.5
    timed = convforge("profile", str(run_dir / "model.int8.onnx"), "--batch", "4")
    assert timed.returncode == 0, timed.stderr
    assert all(v in timed.stdout for v in ("FP32 PyTorch eager", "FP32 onnxruntime", "INT8 onnxruntime"))


def test_compare_prints_the_table_and_the_plot_path(tmp_path):
    run = convforge("compare", "simplenet_cifar_310k[width=0.25]", "resnet20[epochs=1]", "--data", "fashion-mnist",
                    "--train-subset", "256", "--val-subset", "128", "--epochs", "1", "--project", str(tmp_path),
                    "--quiet")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "test top-1" in run.stdout and "resnet20" in run.stdout and "simplenet_cifar_310k[width=0.25]" in run.stdout
    assert (tmp_path / "compare" / "fashion-mnist" / "accuracy_vs_macs.png").is_file()


def test_training_errors_are_one_sentence(tmp_path):
    line = _one_sentence_error(convforge("train", "resnet20", "--data", "imagenet-21k", "--project", str(tmp_path)))
    assert "imagenet-21k" in line and "fashion-mnist" in line
    line = _one_sentence_error(convforge("eval", str(tmp_path / "nothing")))
    assert "nothing" in line


def test_detection_train_eval_predict_and_export_from_the_command_line(tmp_path, shared_data):
    images = sorted((shared_data / "coco128" / "images" / "train2017").glob("*.jpg"))[:6]
    (tmp_path / "subset.txt").write_text("\n".join(str(p) for p in images) + "\n")
    names = (shared_data / "coco128" / "coco128.yaml").read_text().split("names:")[1]
    (tmp_path / "subset.yaml").write_text(f"train: subset.txt\nval: subset.txt\nnames:{names}")
    run = convforge("train", "leyolo_nano", "--task", "detect", "--data", str(tmp_path / "subset.yaml"), "--imgsz",
                    "96", "--epochs", "1", "--batch", "6", "--project", str(tmp_path))  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "best val map50_95" in run.stdout
    run_dir = tmp_path / "detect" / "leyolo_nano"

    evaluated = convforge("eval", str(run_dir), "--batch", "6", "--report")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "map50 " in evaluated.stdout and "(6 examples)" in evaluated.stdout and "AP50-95" in evaluated.stdout
    report = {p.name: p.stat().st_size for p in (run_dir / "val").iterdir()}
    assert set(report) == {"pr_curve.png", "confusion_matrix.png", "predictions.jpg"} and all(report.values())

    predicted = convforge("predict", str(run_dir), str(images[0]), "--conf", "0", "--out", str(tmp_path / "pred"))
    assert predicted.returncode == 0, predicted.stderr
    drawn = tmp_path / "pred" / f"{images[0].stem}.png"
    found = json.loads((tmp_path / "pred" / "detections.json").read_text())[str(images[0])]
    assert drawn.is_file() and len(found) > 0 and {"box", "score", "class_name"} <= set(found[0])

    exported = convforge("export", str(run_dir), "--format", "onnx")
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert "onnxruntime agrees with PyTorch" in exported.stdout
    assert (run_dir / "export" / "leyolo_nano.onnx").is_file()

    refused = convforge("export", str(run_dir), "--format", "onnx", "--imgsz", "100")
    assert refused.returncode == 1 and "multiple of 32" in refused.stderr


def test_search_prints_the_front_and_its_specs_train_from_the_command_line(tmp_path):
    space = tmp_path / "space.yaml"
    stage = "{width: [16, 24], depth: [0, 1], block: [ib, conv], layout: [sequential, parallel]}"
    space.write_text(f"name: tiny\nin_channels: 1\nnum_classes: 10\ninput_size: [1, 28, 28]\nstem: [8, 16]\n"
                     f"stages:\n  - {stage}\n")  # fmt: skip
    quick = ["--epochs", "1", "--train-subset", "256", "--val-subset", "256"]
    run = convforge("search", str(space), "--trials", "2", "--max-macs", "20M", "--sampler", "random",
                    "--project", str(tmp_path), "--quiet", *quick)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "study tiny-random: 2 trials" in run.stdout and "hypervolume" in run.stdout
    spec = next((tmp_path / "search" / "tiny-random" / "best").glob("trial_*.yaml"))
    assert f"spec: {spec}" in run.stdout
    trained = convforge("train", str(spec), "--data", "fashion-mnist", "--project", str(tmp_path), "--quiet",
                        "--epochs", "1", "--train-subset", "256", "--val-subset", "256")  # fmt: skip
    assert trained.returncode == 0, trained.stderr

    refused = convforge("search", str(space), "--max-macs", "lots", "--project", str(tmp_path))
    assert refused.returncode == 1 and "--max-macs 'lots' is not a positive count" in refused.stderr


def test_prune_writes_a_smaller_run_that_every_command_accepts(tmp_path, capsys):
    from convforge.cli import main

    project = str(tmp_path)
    trained = convforge("train", "simplenet_cifar_310k", "--set", "width=0.5", "--data", "fashion-mnist",
                        "--train-subset", "256", "--val-subset", "256", "--epochs", "1", "--batch", "128",
                        "--project", project, "--quiet")  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    dense = tmp_path / "classify" / "simplenet_cifar_310k"
    pruned = convforge("prune", str(dense), "--target", "macs=0.5", "--finetune-epochs", "1", "--kd", "--quiet")
    assert pruned.returncode == 0, pruned.stderr
    run = tmp_path / "classify" / "simplenet_cifar_310k-pruned"
    assert "fine-tuned" in pruned.stdout and "latency batch 64" in pruned.stdout
    for name in ("pruning.json", "layers.txt", "structure.json", "plots/pruning.png", "plots/curves.png",
                 "checkpoints/best.safetensors"):  # fmt: skip
        assert (run / name).is_file(), name
    report = json.loads((run / "pruning.json").read_text())
    assert abs(report["macs_after"] / report["macs_before"] - 0.5) <= 0.025
    assert set(report["scores"]) == {"dense", "pruned", "fine-tuned"}
    # the other commands take the pruned run like any other (run here in this process)
    assert main(["profile", str(run)]) == 0
    assert f"{report['macs_after']:,}" in capsys.readouterr().out
    resume = ["train", "--resume", str(run), "--epochs", "2", "--quiet"]
    for command in (["eval", str(run)], ["export", str(run)], resume):
        assert main(command) == 0, command
    assert "teacher" in (run / "config.yaml").read_text()  # fine-tuned with distillation from the dense run
    # without fine-tuning, the pruned run starts at epoch 0; resuming it fine-tunes and keeps its origin
    assert main(["prune", str(dense), "--name", "unfinetuned", "--quiet"]) == 0
    bare = tmp_path / "classify" / "unfinetuned"
    assert main(["train", "--resume", str(bare), "--epochs", "1", "--quiet"]) == 0
    assert (bare / "metrics.csv").is_file() and "pruned_from" in (bare / "config.yaml").read_text()


def test_prune_with_a_bad_target_is_one_sentence(tmp_path):
    run = convforge("prune", str(tmp_path), "--target", "flops=0.5")
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "'flops=0.5'" in run.stderr and "macs=R" in run.stderr
