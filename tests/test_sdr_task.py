"""The sdr task on the engine, through the command line: simulated designs, a user's .npz, rotated images with a
classifier trunk, and the fccov study at a size a test affords."""

import numpy as np
import pytest

from test_cli import convforge
from test_cli_everyday import one_sentence


def test_fccov_net_and_the_dcov_baseline_train_end_to_end(tmp_path):
    for objective in ("fccov", "dcov"):
        run = convforge(
            "train",
            "sdr_mlp",
            "--data",
            "sim:spd-outliers",
            "--epochs",
            "2",
            "--passes",
            "2",
            "--objective",
            objective,
            "--quiet",
            "--project",
            str(tmp_path),
            "--name",
            objective,
        )
        assert run.returncode == 0, run.stderr
        header, *rows = (tmp_path / "sdr" / objective / "metrics.csv").read_text().splitlines()
        assert "val_dcor" in header and "val_fccov" in header and len(rows) == 2
    config = (tmp_path / "sdr" / "fccov" / "config.yaml").read_text()
    assert "metric: log_euclidean" in config  # the design's metric, chosen by metric: auto
    scored = convforge("eval", str(tmp_path / "sdr" / "fccov"))
    assert scored.returncode == 0 and "dcor" in scored.stdout, scored.stderr


def test_a_users_npz_trains_with_a_chosen_metric(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    angle = x[:, 0]
    np.savez(tmp_path / "mine.npz", x=x, y=np.stack([np.cos(angle), np.sin(angle)], 1))
    run = convforge("train", "sdr_mlp", "--data", str(tmp_path / "mine.npz"), "--metric", "geodesic", "--dim", "1",
                    "--epochs", "1", "--quiet", "--project", str(tmp_path))  # fmt: skip
    assert run.returncode == 0, run.stderr
    np.savez(tmp_path / "bad.npz", inputs=x)
    one_sentence(convforge("train", "sdr_mlp", "--data", str(tmp_path / "bad.npz"), "--epochs", "1", "--project",
                           str(tmp_path)), "arrays named x and y")  # fmt: skip
    one_sentence(convforge("train", "sdr_mlp", "--data", "sim:nowhere", "--project", str(tmp_path)),
                 "unknown simulation design")  # fmt: skip
    one_sentence(convforge("train", "sdr_mlp", "--data", "sim:euclidean", "--metric", "cosine", "--project",
                           str(tmp_path)), "metric")  # fmt: skip


def test_a_classifier_trunk_reduces_rotated_images(shared_data, tmp_path):
    run = convforge("train", "resnet20", "--task", "sdr", "--data", "rotated:mnist", "--data-root",
                    str(shared_data), "--train-subset", "64", "--val-subset", "64", "--batch", "32", "--epochs", "1",
                    "--passes", "1", "--quiet", "--project", str(tmp_path))  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "num_classes: 2" in (tmp_path / "sdr" / "resnet20" / "config.yaml").read_text()


def test_the_fccov_study_reports_every_method_and_resumes(tmp_path):
    args = [
        "study",
        "fccov",
        "--reps",
        "2",
        "--designs",
        "euclidean,sphere",
        "--epochs",
        "1",
        "--no-image",
        "--workers",
        "1",
        "--quiet",
        "--out",
        str(tmp_path / "study"),
    ]
    run = convforge(*args)
    assert run.returncode == 0, run.stderr
    assert "trials: 4 of 4 done" in run.stdout
    for method in ("FCCov-Net", "deep dCov", "GSIR", "WIRE", "SIR", "SAVE"):
        assert method in run.stdout, method
    assert (tmp_path / "study" / "report" / "dcor_by_design.png").is_file()
    again = convforge(*args)
    assert again.returncode == 0 and "trials: 4 of 4 done" in again.stdout


def test_a_metric_that_cannot_read_the_responses_or_a_huge_batch_is_refused_before_training(tmp_path):
    one_sentence(convforge("train", "sdr_mlp", "--data", "sim:euclidean", "--metric", "log_euclidean", "--project",
                           str(tmp_path)), "cannot read the responses", "SPD")  # fmt: skip
    one_sentence(convforge("train", "sdr_mlp", "--data", "sim:euclidean", "--batch", "100000", "--project",
                           str(tmp_path)), "batch_size", "at most")  # fmt: skip
    assert not (tmp_path / "sdr").exists()


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["fccov", "dcov"])
def test_the_networks_recover_a_single_index_that_the_raw_predictors_hide(tmp_path, objective):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1000, 10))
    index = (x[:, 0] + x[:, 3]) / np.sqrt(2)
    y = np.exp(index / 2) + 0.1 * rng.normal(size=1000)
    np.savez(tmp_path / "single.npz", x=x, y=y[:, None], truth=index[:, None])
    run = convforge("train", "sdr_mlp", "--data", str(tmp_path / "single.npz"), "--dim", "1", "--objective",
                    objective, "--epochs", "15", "--passes", "10", "--batch", "400", "--quiet", "--project",
                    str(tmp_path))  # fmt: skip
    assert run.returncode == 0, run.stderr
    best = max(float(row.split(",")[3]) for row in (tmp_path / "sdr" / "sdr_mlp" / "metrics.csv").read_text()
               .splitlines()[1:])  # fmt: skip
    assert best > 0.9  # dCor with the true index on the held-out fifth (the raw 10-d predictors: 0.54)


def test_npz_sources_take_vectors_and_name_what_does_not_fit(tmp_path):
    from convforge.errors import ConvforgeError
    from convforge.tasks.sdr.sources import load_sdr_data

    rng = np.random.default_rng(2)
    np.savez(tmp_path / "vector.npz", x=rng.normal(size=50), y=rng.normal(size=50))
    data = load_sdr_data(str(tmp_path / "vector.npz"), None, 0, 0)
    assert data.train.x.shape == (40, 1) and data.val.x.shape == (10, 1) and data.test is None
    for name, arrays, words in (
        ("short.npz", dict(x=rng.normal(size=(50, 2)), y=rng.normal(size=50), truth=rng.normal(size=49)), "49 rows"),
        ("text.npz", dict(x=np.array(["a"] * 50), y=rng.normal(size=50)), "real numbers"),
        ("nan.npz", dict(x=np.full((50, 2), np.nan), y=rng.normal(size=50)), "not finite"),
    ):
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(ConvforgeError, match=words):
            load_sdr_data(str(tmp_path / name), None, 0, 0)
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ConvforgeError, match="not a readable .npz"):
        load_sdr_data(str(tmp_path / "broken.npz"), None, 0, 0)
