"""AVE's labels and files as the standard code reads them, rebuilt from the real annotations."""

import numpy as np
import pytest

from convforge.data.ave import (
    BACKGROUND,
    event_classes,
    load_segment_labels,
    read_annotations,
    read_h5,
    segment_labels,
    video_labels,
)
from convforge.errors import ConvforgeError


@pytest.fixture(scope="module")
def ave(shared_data):
    return shared_data / "ave"


def test_labels_rebuilt_from_the_annotations_equal_the_released_label_files_on_all_4143_videos(ave):
    videos = read_annotations(ave / "Annotations.txt")
    classes = event_classes(videos)
    assert len(videos) == 4143 and len(classes) == 28
    assert (classes[0], classes[-1], BACKGROUND) == ("Church bell", "Mandolin", 28)
    segments = load_segment_labels(ave)  # no labels.h5 here: rebuilt
    assert segments.shape == (4143, 10, 29) and np.all(segments.sum(-1) == 1)
    assert np.array_equal(video_labels(videos), read_h5(ave / "mil_labels.h5"))
    assert np.array_equal((segments[:, :, BACKGROUND] == 0).astype(np.float32), read_h5(ave / "labels_closs.h5"))
    empty = [i for i, video in enumerate(videos) if video.start == video.end]
    assert len(empty) == 1 and segments[empty[0], :, BACKGROUND].all()  # start = end = 0: all background


def test_the_splits_hold_3339_402_and_402_distinct_videos(ave):
    orders = [read_h5(ave / f"{split}_order.h5", key="order") for split in ("train", "val", "test")]
    assert [len(o) for o in orders] == [3339, 402, 402]
    assert len(set(np.concatenate(orders).tolist())) == 4143


def test_background_is_about_18_percent_of_test_segments(ave):
    segments = segment_labels(read_annotations(ave / "Annotations.txt"))
    test = read_h5(ave / "test_order.h5", key="order")
    assert segments[test][:, :, BACKGROUND].mean() == pytest.approx(0.178, abs=0.001)


def test_a_labels_file_present_is_read_as_it_is(tmp_path):
    import h5py

    labels = np.zeros((2, 10, 29), dtype=np.float32)
    labels[:, :, 3] = 1
    with h5py.File(tmp_path / "labels.h5", "w") as f:
        f["avadataset"] = labels
    assert np.array_equal(load_segment_labels(tmp_path), labels)


def test_a_missing_feature_file_is_one_sentence_naming_it_and_where_features_come_from(tmp_path):
    with pytest.raises(ConvforgeError, match=r"audio_feature\.h5 is not in .*original dataset release .*av-synth"):
        read_h5(tmp_path / "audio_feature.h5", what="AVE audio feature file")


def test_a_malformed_annotation_line_names_file_and_line(tmp_path):
    (tmp_path / "Annotations.txt").write_text("Church bell&abc&good&0&10\nBark&xyz&good&zero&3\n")
    with pytest.raises(ConvforgeError, match=r"Annotations\.txt:2: expected"):
        read_annotations(tmp_path / "Annotations.txt")


def test_hostile_feature_files_are_one_sentence_before_any_large_read(tmp_path):
    import h5py

    with h5py.File(tmp_path / "huge.h5", "w") as f:  # declares ~1 TB; nothing is written until read
        f.create_dataset("avadataset", shape=(10**6, 10, 7, 7, 512), dtype="f4")
    with pytest.raises(ConvforgeError, match="GiB, over the 32 GiB convforge reads"):
        read_h5(tmp_path / "huge.h5")
    (tmp_path / "text.h5").write_text("not HDF5")
    with pytest.raises(ConvforgeError, match="not a readable HDF5 file"):
        read_h5(tmp_path / "text.h5")


def test_llp_feature_files_of_the_wrong_shape_or_kind_name_the_file(shared_data, tmp_path):
    from convforge.data.llp import FEATURE_FOLDERS, SPLIT_FILES, LLPVideos

    name = (shared_data / "llp" / SPLIT_FILES["val"]).read_text().splitlines()[1].split("\t")[0]
    (tmp_path / SPLIT_FILES["val"]).write_text(f"filename\tevent_labels\n{name}\tSpeech\n")
    for stream, shape in FEATURE_FOLDERS:
        (tmp_path / "feats" / stream).mkdir(parents=True)
        np.save(tmp_path / "feats" / stream / f"{name}.npy", np.zeros(shape, np.float32))
    videos = LLPVideos(tmp_path, "val")
    assert [a.shape for a in videos.features(0)] == [shape for _, shape in FEATURE_FOLDERS]
    np.save(tmp_path / "feats" / "vggish" / f"{name}.npy", np.zeros((10, 64), np.float32))
    with pytest.raises(ConvforgeError, match=r"vggish features of shape \(10, 64\)"):
        videos.features(0)
    np.save(tmp_path / "feats" / "vggish" / f"{name}.npy", np.array([{"a": 1}] * 10, dtype=object))
    with pytest.raises(ConvforgeError, match="not a readable .npy"):
        videos.features(0)


def test_an_llp_file_name_that_holds_a_path_or_a_short_row_is_one_sentence(tmp_path):
    from convforge.data.llp import read_video_labels

    (tmp_path / "AVVP_train.csv").write_text("filename\tevent_labels\n../../escape\tSpeech\n")
    with pytest.raises(ConvforgeError, match="not a video file name"):
        read_video_labels(tmp_path / "AVVP_train.csv")
    (tmp_path / "AVVP_train.csv").write_text("filename\tevent_labels\nabc_0_10\n")
    with pytest.raises(ConvforgeError, match=":2: the row has fewer"):
        read_video_labels(tmp_path / "AVVP_train.csv")
