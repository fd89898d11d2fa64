"""``convforge av-synth`` and ``convforge study av-pyramid`` end to end, at a size a test can afford."""

import json

import numpy as np
import pytest

from convforge.data.feature_scaling import FeatureScaling
from test_cli import convforge
from test_cli_everyday import one_sentence


def test_av_synth_writes_the_standard_ave_layout_from_the_command_line(shared_data, tmp_path):
    run = convforge("av-synth", "ave", str(shared_data / "ave"), str(tmp_path / "ave"), "--snr", "-5", "--videos", "4",
                    "--audio-only", "0.5", "--quiet")  # fmt: skip
    assert run.returncode == 0, run.stderr
    names = {p.name for p in (tmp_path / "ave").iterdir()}
    assert {"audio_feature.h5", "visual_feature.h5", "labels.h5", "mil_labels.h5", "train_order.h5", "val_order.h5",
            "test_order.h5", "Annotations.txt", "audio_feature_noisy.h5", "visual_feature_noisy.h5",
            "labels_noisy.h5", "SYNTHETIC.json"} <= names  # fmt: skip
    assert json.loads((tmp_path / "ave" / "SYNTHETIC.json").read_text())["snr_db"] == -5
    again = convforge("av-synth", "ave", str(shared_data / "ave"), str(tmp_path / "ave"), "--videos", "4", "--quiet")
    one_sentence(again, "not empty", "--overwrite")
    one_sentence(convforge("av-synth", "llp", str(shared_data / "llp"), str(tmp_path / "x"), "--visual-maps"),
                 "AVE only")  # fmt: skip
    one_sentence(convforge("av-synth", "ave", str(tmp_path / "nowhere"), str(tmp_path / "y")), "Annotations.txt")


@pytest.mark.slow  # 10 s: every model of the study; each trains alone in test_av_tasks and test_av_baselines
def test_the_study_trains_every_model_selects_on_validation_and_resumes_without_retraining(shared_data, tmp_path):
    args = [
        "study",
        "av-pyramid",
        "--data-root",
        str(shared_data),
        "--out",
        str(tmp_path / "study"),
        "--snrs",
        "-5",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--llp-epochs",
        "1",
        "--videos",
        "8",
        "--workers",
        "1",
        "--quiet",
    ]
    run = convforge(*args)
    assert run.returncode == 0, run.stderr
    assert "trials: 8 of 8 done" in run.stdout  # 4 models, 3 more pyramid depths, 1 LLP run
    for line in ("MM-Pyramid L=4", "HAN-style", "AVEL-style", "segment MLP", "MM-Pyramid L=1", "Type@AV"):
        assert line in run.stdout, line
    report = (tmp_path / "study" / "report" / "report.md").read_text()
    assert "not the published benchmark" in report and "17.8" in report and "82.2" in report
    assert (tmp_path / "study" / "report" / "accuracy_vs_snr.png").stat().st_size > 10_000
    checkpoints = sorted((tmp_path / "study" / "trials").rglob("last.safetensors"))
    stamps = [p.stat().st_mtime_ns for p in checkpoints]
    again = convforge(*args)
    assert again.returncode == 0 and "trials: 8 of 8 done" in again.stdout
    assert [p.stat().st_mtime_ns for p in checkpoints] == stamps  # nothing trained twice
    changed = convforge(*[a if a != "1" or i != args.index("--epochs") + 1 else "2" for i, a in enumerate(args)])
    one_sentence(changed, "other settings", "ave_epochs")


def test_features_are_standardised_with_the_training_statistics():
    rng = np.random.default_rng(0)
    train = np.maximum(rng.normal(-0.2, 0.5, (50, 10, 8)), 0).astype(np.float32)
    scaling = FeatureScaling.fit([train])
    scaled = scaling.apply(0, train).reshape(-1, 8)
    assert np.allclose(scaled.mean(0), 0, atol=1e-5) and np.allclose(scaled.std(0), 1, atol=1e-4)
    constant = FeatureScaling.fit([np.ones((4, 3), np.float32)])
    assert np.all(constant.apply(0, np.ones((2, 3), np.float32)) == 0)  # a dimension that never varies is centred
