"""Semi-synthetic audio-visual features: the calibrated background, the SNR, and the standard layouts they are
written in, read back by the same readers the real files go through."""

import json

import numpy as np
import pytest

from convforge.data.av_synthetic import RectifiedGaussian, SyntheticStream, SynthSettings
from convforge.data.av_synthetic_files import write_ave_synthetic, write_llp_synthetic
from convforge.data.ave import (
    BACKGROUND,
    event_classes,
    load_ave_background,
    load_ave_split,
    read_annotations,
    segment_labels,
)
from convforge.data.llp import LLPVideos, read_dense_events, read_video_labels
from convforge.errors import ConvforgeError, InvalidValueError


def test_a_fitted_background_matches_each_dimensions_mean_and_fraction_of_zeros():
    rng = np.random.default_rng(0)
    truth = RectifiedGaussian(rng.normal(-0.5, 0.5, 16), rng.uniform(0.3, 1.2, 16))
    sample = np.maximum(truth.noise((200_000,), rng), 0)
    fitted = RectifiedGaussian.fit(sample)
    redrawn = np.maximum(fitted.noise((200_000,), rng), 0)
    assert np.allclose(redrawn.mean(0), sample.mean(0), rtol=0.05, atol=0.005)
    assert np.allclose((redrawn == 0).mean(0), (sample == 0).mean(0), atol=0.02)
    assert np.allclose(truth.variance(), sample.var(0, dtype=np.float64), rtol=0.1)  # the closed form


def test_the_real_ave_background_audio_is_matched(shared_data):
    from convforge.data.ave import read_h5

    real = read_h5(shared_data / "ave" / "audio_feature_noisy.h5")
    drawn = np.maximum(RectifiedGaussian.fit(real).noise((50_000,), np.random.default_rng(1)), 0)
    assert abs((drawn == 0).mean() - (real == 0).mean()) < 0.01  # about 65 % exact zeros
    assert drawn.mean() == pytest.approx(real.mean(), rel=0.03)


@pytest.mark.parametrize("snr_db", [-20.0, 0.0, 10.0])
def test_the_event_energy_over_the_background_variance_is_the_snr(snr_db):
    rng = np.random.default_rng(2)
    stream = SyntheticStream(RectifiedGaussian.generic(64, rng), 5, snr_db, rng)
    signal_energy = stream.gain**2 * float((stream.prototypes**2).sum(1).mean())
    assert 10 * np.log10(signal_energy / stream.background.variance().sum()) == pytest.approx(snr_db)
    assert np.all(stream.prototypes >= 0) and np.mean(stream.prototypes > 0) < 0.4  # sparse and non-negative


def test_settings_out_of_range_are_refused_by_name():
    for bad, name in ((dict(snr_db=float("nan")), "snr_db"), (dict(audio_only=1.5), "audio_only"),
                      (dict(audio_only=0.6, visual_only=0.6), "at most 1"), (dict(seed=-1), "seed")):  # fmt: skip
        with pytest.raises(InvalidValueError, match=name):
            SynthSettings(**bad)


@pytest.fixture(scope="module")
def ave_maps(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("maps") / "ave"
    settings = SynthSettings(snr_db=10, audio_only=0.5, seed=3)
    return write_ave_synthetic(shared_data / "ave", out, settings, videos=16, visual_maps=True, progress=False)


def test_ave_synth_is_the_standard_layout_on_the_real_labels(ave_maps, shared_data):
    train = load_ave_split(ave_maps, "train")
    assert train.audio.shape == (16, 10, 128) and train.visual.shape == (16, 10, 7, 7, 512)
    real = read_annotations(shared_data / "ave" / "Annotations.txt")
    from convforge.data.ave import read_h5

    written = read_annotations(ave_maps / "Annotations.txt")
    assert set(written) <= set(real) and len({video.event for video in written}) > 1  # real videos, drawn at random
    expected = segment_labels(written, event_classes(real))[read_h5(ave_maps / "train_order.h5", "order")]
    assert np.array_equal(train.segments, expected.argmax(-1))  # their real timings and classes, in split order
    background = load_ave_background(ave_maps, (7, 7, 512))
    assert len(background) == 178 and np.all(background.segments == BACKGROUND)
    assert np.array_equal(background.audio, read_h5(shared_data / "ave" / "audio_feature_noisy.h5"))  # real audio
    record = json.loads((ave_maps / "SYNTHETIC.json").read_text())
    assert record["audio_background"] == "fitted to the real background audio"


def test_an_event_heard_only_leaves_its_video_stream_at_background_level(ave_maps):
    train = load_ave_split(ave_maps, "train")
    record = json.loads((ave_maps / "SYNTHETIC.json").read_text())
    assert 0 < record["events_heard_only"] < 48  # about half of the 48 videos' events
    event = train.segments != BACKGROUND
    audio_rise = train.audio[event].mean() / train.audio[~event].mean()
    visual_means = train.visual.mean((2, 3, 4))[event]  # per event segment, over the map
    assert audio_rise > 2  # at +10 dB every event is loud in the audio
    silent = visual_means < np.median(visual_means)  # the heard-only videos' visual stream stays low
    assert silent.any() and visual_means[~silent].mean() > 1.5 * visual_means[silent].mean()


def test_llp_synth_follows_the_real_per_modality_events_of_val_and_test(shared_data, tmp_path):
    out = write_llp_synthetic(shared_data / "llp", tmp_path / "llp", SynthSettings(snr_db=10), videos=6,
                              progress=False)  # fmt: skip
    videos = LLPVideos(out, "test")
    assert len(videos) == 6 and list(read_video_labels(out / "AVVP_test_pd.csv")) == videos.names
    audio_events = read_dense_events(shared_data / "llp" / "AVVP_eval_audio.csv")
    name = next(n for n in videos.names if n in audio_events)
    audio, visual, visual_3d = videos.features(videos.names.index(name))
    assert audio.shape == (10, 128) and visual.shape == (80, 2048) and visual_3d.shape == (10, 512)
    on = audio_events[name].any(0)  # the seconds in which something sounds
    if on.any() and (~on).any():
        assert audio[on].mean() > audio[~on].mean()


def test_the_writers_never_mix_into_a_folder_with_files(shared_data, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConvforgeError, match="not empty"):
        write_ave_synthetic(shared_data / "ave", tmp_path, videos=2, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"
