"""The av-event and av-parse tasks end to end through the CLI, on small semi-synthetic files laid on the real
AVE and LLP labels; and the sentences a user gets for missing features and for image-only commands."""

import json

import numpy as np
import pytest
import torch

from convforge.data.av_synthetic import SynthSettings
from convforge.data.av_synthetic_files import write_ave_synthetic, write_llp_synthetic
from convforge.tasks.av_parse.task import han_loss
from test_cli import convforge
from test_cli_everyday import one_sentence

SMALL = ["--set", "width=16", "--set", "heads=4", "--epochs", "1", "--quiet"]


@pytest.fixture(scope="module")
def ave_synth(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ave") / "ave-synth"
    return write_ave_synthetic(shared_data / "ave", out, SynthSettings(snr_db=0), videos=24, progress=False)


@pytest.fixture(scope="module")
def llp_synth(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("llp") / "llp-synth"
    return write_llp_synthetic(shared_data / "llp", out, SynthSettings(snr_db=0), videos=12, progress=False)


@pytest.mark.parametrize("supervision", ["full", "weak"])
def test_one_epoch_of_av_event_trains_evaluates_and_profiles_through_the_cli(ave_synth, tmp_path, supervision):
    run = convforge("train", "mm_pyramid_ave", "--data", str(ave_synth), *SMALL, "--project", str(tmp_path),
                    "--supervision", supervision)  # fmt: skip
    assert run.returncode == 0, run.stderr
    folder = tmp_path / "av-event" / "mm_pyramid_ave"
    rows = (folder / "metrics.csv").read_text().splitlines()
    assert "val_accuracy" in rows[0] and len(rows) == 2
    config = (folder / "config.yaml").read_text()
    assert f"supervision: {supervision}" in config
    if supervision == "weak":  # the 178 background videos with their real audio join training
        assert "background_videos: 178" in config
    scored = convforge("eval", str(folder), "--data", "test")
    assert scored.returncode == 0, scored.stderr
    assert "accuracy" in scored.stdout and "(24 examples)" in scored.stdout
    profiled = convforge("profile", str(folder))
    assert profiled.returncode == 0 and "1x10x128, 1x10x512" in profiled.stdout, profiled.stderr


def test_one_epoch_of_av_parse_reports_the_ten_llp_figures(llp_synth, tmp_path):
    run = convforge("train", "mm_pyramid_llp", "--data", str(llp_synth), *SMALL, "--project", str(tmp_path))
    assert run.returncode == 0, run.stderr
    header = (tmp_path / "av-parse" / "mm_pyramid_llp" / "metrics.csv").read_text().splitlines()[0]
    for level in ("segment", "event"):
        for figure in ("a", "v", "av", "type", "event"):
            assert f"val_{level}_{figure}" in header
    scored = convforge("eval", str(tmp_path / "av-parse" / "mm_pyramid_llp"), "--data", "test")
    assert scored.returncode == 0 and "segment_type" in scored.stdout and "(12 examples)" in scored.stdout


def test_each_baseline_trains_on_the_same_engine(ave_synth, tmp_path):
    for name in ("han_ave", "avel", "av_segment_mlp"):
        run = convforge("train", name, "--data", str(ave_synth), "--set", "width=16", "--epochs", "1", "--quiet",
                        "--project", str(tmp_path))  # fmt: skip
        assert run.returncode == 0, (name, run.stderr)
        assert (tmp_path / "av-event" / name / "checkpoints" / "best.safetensors").is_file()


def test_a_missing_ave_feature_file_is_one_sentence_naming_it_and_where_features_come_from(shared_data, tmp_path):
    run = convforge("train", "mm_pyramid_ave", "--data", str(shared_data / "ave"), *SMALL, "--project", str(tmp_path))
    line = one_sentence(run, "audio_feature.h5", str(shared_data / "ave"), "original dataset release")
    assert "convforge av-synth ave" in line


def test_a_missing_llp_feature_file_is_one_sentence_naming_the_file_and_folder(llp_synth, tmp_path):
    broken = tmp_path / "llp"
    broken.mkdir()
    for csv in llp_synth.glob("*.csv"):
        (broken / csv.name).write_bytes(csv.read_bytes())
    (broken / "feats").symlink_to(llp_synth / "feats")
    first = (broken / "AVVP_train.csv").read_text().splitlines()[1].split("\t")[0]
    (broken / "AVVP_train.csv").write_text((broken / "AVVP_train.csv").read_text().replace(first, "not_a_video_0_10"))
    run = convforge("train", "mm_pyramid_llp", "--data", str(broken), *SMALL, "--project", str(tmp_path / "runs"))
    one_sentence(run, "not_a_video_0_10.npy", "vggish", "original dataset release")


def test_image_commands_on_feature_models_say_what_works_instead(ave_synth, tmp_path):
    run = convforge("train", "av_segment_mlp", "--data", str(ave_synth), "--epochs", "1", "--quiet", "--project",
                    str(tmp_path))  # fmt: skip
    assert run.returncode == 0, run.stderr
    folder = tmp_path / "av-event" / "av_segment_mlp"
    image = tmp_path / "frame.png"
    from torchvision.io import write_png

    write_png(torch.zeros((3, 8, 8), dtype=torch.uint8), str(image))
    one_sentence(convforge("predict", str(folder), str(image)), "needs image files", "convforge eval")
    one_sentence(convforge("export", str(folder)), "2 input streams")


def test_the_written_folders_say_they_are_not_the_benchmark(ave_synth, llp_synth):
    for folder in (ave_synth, llp_synth):
        record = json.loads((folder / "SYNTHETIC.json").read_text())
        assert "not the published benchmark" in record["note"]


def test_the_llp_loss_is_hans_with_the_visual_labels_smoothed():
    labels = torch.tensor([[1.0, 0.0, 1.0]])
    probs = (torch.tensor([[0.9, 0.2, 0.6]]), torch.tensor([[0.8, 0.1, 0.7]]), torch.tensor([[0.6, 0.3, 0.4]]))

    def bce(p, y):
        return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())

    y = labels.numpy()
    expected = bce(probs[0].numpy(), y) + bce(probs[1].numpy(), y) + bce(probs[2].numpy(), 0.9 * y + 0.05)
    assert float(han_loss(probs, labels, 0.1)) == pytest.approx(expected, rel=1e-6)


def test_profile_counts_mm_pyramids_masked_attention_from_the_command_line():
    run = convforge("profile", "mm_pyramid_llp")
    assert run.returncode == 0, run.stderr
    assert "1x10x128, 1x80x2048, 1x10x512" in run.stdout and "40,827,469" in run.stdout
    assert "attention        1.97 MMACs" in run.stdout and "no formula for" not in run.stdout
    given = convforge("profile", "mm_pyramid_llp", "--set", "width=64", "--input", "20x128,160x2048,20x512")
    assert given.returncode == 0 and "1x20x128, 1x160x2048, 1x20x512" in given.stdout, given.stderr


def test_pruning_and_quantising_a_feature_model_are_refused_by_name(ave_synth, tmp_path):
    run = convforge("train", "av_segment_mlp", "--data", str(ave_synth), "--epochs", "1", "--quiet", "--project",
                    str(tmp_path))  # fmt: skip
    assert run.returncode == 0, run.stderr
    folder = str(tmp_path / "av-event" / "av_segment_mlp")
    one_sentence(convforge("prune", folder, "--target", "macs=0.5"), "several input streams", "prunes")
    one_sentence(convforge("quantize", folder), "does not quantise")
    one_sentence(convforge("eval", folder, "--report"), "no per-class report")
