"""LLP's F1s on hand-made predictions: events that overlap, are missed or split, and empty videos.

The expected figures are worked out by hand below; the standard AVVP evaluation code
(YapengTian/AVVP-ECCV20, utils/eval_metrics.py) gives the same on these videos, and agreed with
convforge's to 1e-16 on 400 random videos when run beside it.
"""

import numpy as np
import pytest

from convforge.tasks.av_parse.metrics import llp_summary, mask_by_video_labels, video_scores


def empty() -> np.ndarray:
    return np.zeros((25, 10), dtype=np.int64)


@pytest.fixture
def parsed():
    """Audio only: class 0 overlaps (IoU 3/5), class 1 is missed, class 2 is split in two (IoU 2/6 and 3/6)."""
    pred, truth = empty(), empty()
    truth[0, 2:6], pred[0, 3:7] = 1, 1
    truth[1, 0:4] = 1
    truth[2, 2:8], pred[2, 2:4], pred[2, 5:8] = 1, 1, 1
    return pred, truth


def test_segment_level_f1_per_class_averaged_over_active_classes(parsed):
    pred, truth = parsed
    scores = video_scores(pred, empty(), truth, empty())
    audio = (6 / 8 + 0 + 10 / 11) / 3  # class 0: TP 3, FP 1, FN 1; class 1: FN 4; class 2: TP 5, FN 1
    assert scores.segment == pytest.approx((audio, 1.0, 1.0, audio))  # nothing visual: all true negatives


def test_event_level_matches_at_iou_one_half_and_not_one_to_one(parsed):
    pred, truth = parsed
    scores = video_scores(pred, empty(), truth, empty())
    audio = (1.0 + 0 + 2 / 3) / 3  # class 0: TP; class 1: FN; class 2: IoU 2/6 is an FP, 3/6 a TP, no FN
    assert scores.event == pytest.approx((audio, 1.0, 1.0, audio))


def test_an_empty_video_scores_one_and_the_dataset_figures_are_means_in_percent(parsed):
    pred, truth = parsed
    assert video_scores(empty(), empty(), empty(), empty()).segment == (1.0, 1.0, 1.0, 1.0)
    summary = llp_summary([video_scores(pred, empty(), truth, empty()), video_scores(empty(), empty(), empty(),
                                                                                       empty())])  # fmt: skip
    assert summary["segment_a"] == pytest.approx(77.6515, abs=1e-4)
    assert summary["event_a"] == pytest.approx(77.7778, abs=1e-4)
    assert summary["segment_type"] == pytest.approx((77.65151515 + 100 + 100) / 3)


def test_audio_visual_is_the_product_and_event_at_av_pools_the_counts():
    pred_a, pred_v, truth_a, truth_v = empty(), empty(), empty(), empty()
    truth_a[3, 0:5], truth_v[3, 3:8] = 1, 1  # heard 0–5 s, seen 3–8 s: audible and visible 3–5 s
    pred_a[3, 0:5], pred_v[3, 0:5] = 1, 1
    scores = video_scores(pred_a, pred_v, truth_a, truth_v)
    assert scores.segment[0] == 1.0 and scores.segment[1] == pytest.approx(2 * 2 / (2 * 2 + 3 + 3))
    assert scores.segment[2] == pytest.approx(2 * 2 / (2 * 2 + 3 + 0))  # AV: predicted 0–5, true 3–5
    assert scores.segment[3] == pytest.approx(2 * 7 / (2 * 7 + 3 + 3))  # A and V counts pooled


def test_segment_predictions_are_masked_by_the_predicted_video_labels():
    segment_probs = np.full((10, 25), 0.9)
    video_probs = np.zeros(25)
    video_probs[4] = 0.7
    masked = mask_by_video_labels(segment_probs, video_probs)
    assert masked.shape == (25, 10) and masked[4].all() and masked.sum() == 10
