"""LLP's real label files, read as the standard code reads them."""

import numpy as np
import pytest

from convforge.data.llp import LLP_CLASSES, ground_truth, read_dense_events, read_video_labels
from convforge.errors import ConvforgeError


@pytest.fixture(scope="module")
def llp(shared_data):
    return shared_data / "llp"


def test_the_splits_hold_10000_649_and_1200_videos_with_25_classes(llp):
    sizes = [len(read_video_labels(llp / f"AVVP_{name}.csv")) for name in ("train", "val_pd", "test_pd")]
    assert sizes == [10000, 649, 1200] and len(LLP_CLASSES) == 25
    train = read_video_labels(llp / "AVVP_train.csv")
    first = train["BjCEufrlXm4_20_30"]
    assert [LLP_CLASSES[k] for k in np.flatnonzero(first)] == ["Speech", "Dog"]


def test_every_val_and_test_video_has_dense_events_in_some_modality(llp):
    audio = read_dense_events(llp / "AVVP_eval_audio.csv")
    visual = read_dense_events(llp / "AVVP_eval_visual.csv")
    for split in ("val_pd", "test_pd"):
        for video in read_video_labels(llp / f"AVVP_{split}.csv"):
            heard, seen = ground_truth(video, audio, visual)
            assert heard.shape == seen.shape == (25, 10) and heard.sum() + seen.sum() > 0


def test_an_event_is_on_from_its_onset_to_before_its_offset(tmp_path):
    (tmp_path / "audio.csv").write_text("filename\tonset\toffset\tevent_labels\nv1\t2\t5\tDog\nv1\t8\t10\tSpeech\n")
    matrix = read_dense_events(tmp_path / "audio.csv")["v1"]
    assert matrix[LLP_CLASSES.index("Dog")].tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 0, 0]
    assert matrix[LLP_CLASSES.index("Speech")].tolist() == [0] * 8 + [1, 1] and matrix.sum() == 5


def test_an_unknown_class_or_a_missing_column_is_one_sentence(tmp_path):
    (tmp_path / "labels.csv").write_text("filename\tevent_labels\nv1\tSpeech,Kazoo\n")
    with pytest.raises(ConvforgeError, match=r"labels\.csv:2: 'Kazoo' is not one of LLP's 25 classes"):
        read_video_labels(tmp_path / "labels.csv")
    (tmp_path / "bad.csv").write_text("name\tlabels\nv1\tSpeech\n")
    with pytest.raises(ConvforgeError, match="no column filename, event_labels"):
        read_video_labels(tmp_path / "bad.csv")
