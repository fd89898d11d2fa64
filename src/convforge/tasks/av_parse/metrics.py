"""LLP's segment-level and event-level F1, computed as the standard AVVP evaluation computes them.

Per video, predictions and ground truth are binary ``[classes, 10]`` matrices for audio (A) and
visual (V); audio-visual (AV) is their product.

- **Segment level.** Per class, true positives, false positives and false negatives are counted
  over the 10 segments; each class that is predicted or present gets F1 = 2TP / (2TP + FP + FN),
  and the video's score is their mean (1.0 when no class is predicted or present: all true
  negatives). "Event@AV" pools the A and V counts of each class before the F1.
- **Event level.** Per class, each run of consecutive positive segments is an event. A predicted
  event is a true positive if it overlaps some ground-truth event with IoU ≥ 0.5 (not one-to-one),
  otherwise a false positive; a ground-truth event that no prediction overlaps so is a false
  negative. F1 per class and the mean per video as above.
- The dataset's figure is the mean over videos, in %. Type@AV is the mean of the A, V and AV
  figures; Event@AV is the pooled one.
- Segment predictions are masked by the predicted video labels, both at the 0.5 threshold
  (:func:`mask_by_video_labels`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SEGMENTS = 10
THRESHOLD = 0.5


def mask_by_video_labels(segment_probs: np.ndarray, video_probs: np.ndarray) -> np.ndarray:
    """Binary ``[classes, segments]`` predictions: a segment probability ≥ 0.5 whose class the video-level
    probability (≥ 0.5) also predicts. ``segment_probs`` is ``[segments, classes]``, ``video_probs`` ``[classes]``."""
    kept = (np.asarray(segment_probs) >= THRESHOLD) & (np.asarray(video_probs)[None, :] >= THRESHOLD)
    return kept.T.astype(np.int64)


def _f1_mean(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> float:
    """Mean F1 over the classes that are predicted or present; 1.0 when there are none."""
    active = (tp + fp > 0) | (tp + fn > 0)
    if not active.any():
        return 1.0
    return float(np.mean(2 * tp[active] / (2 * tp[active] + fp[active] + fn[active])))


def _segment_counts(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (pred * truth).sum(1), (pred * (1 - truth)).sum(1), ((1 - pred) * truth).sum(1)


def _runs(sequence: np.ndarray) -> list[tuple[int, int]]:
    """The runs of consecutive 1s as (start, end) with end exclusive."""
    runs, start = [], None
    for t, value in enumerate(list(sequence) + [0]):
        if value == 1 and start is None:
            start = t
        elif value != 1 and start is not None:
            runs.append((start, t))
            start = None
    return runs


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """IoU of two segment runs ≥ 0.5."""
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter >= 0.5 * union


def _event_counts(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    classes = len(pred)
    tp, fp, fn = np.zeros(classes), np.zeros(classes), np.zeros(classes)
    for c in range(classes):
        predicted, actual = _runs(pred[c]), _runs(truth[c])
        for event in predicted:
            if any(_overlaps(event, other) for other in actual):
                tp[c] += 1
            else:
                fp[c] += 1
        fn[c] = sum(1 for event in actual if not any(_overlaps(event, other) for other in predicted))
    return tp, fp, fn


@dataclass
class VideoScores:
    """One video's F1s: A, V, AV and the pooled A+V ("event"), at segment and event level."""

    segment: tuple[float, float, float, float]
    event: tuple[float, float, float, float]


def video_scores(pred_audio: np.ndarray, pred_visual: np.ndarray, truth_audio: np.ndarray,
                 truth_visual: np.ndarray) -> VideoScores:  # fmt: skip
    """The F1s of one video from binary ``[classes, segments]`` matrices."""
    pred_av, truth_av = pred_audio * pred_visual, truth_audio * truth_visual
    scores = []
    for counts in (_segment_counts, _event_counts):
        a, v, av = counts(pred_audio, truth_audio), counts(pred_visual, truth_visual), counts(pred_av, truth_av)
        pooled = tuple(x + y for x, y in zip(a, v))
        scores.append((_f1_mean(*a), _f1_mean(*v), _f1_mean(*av), _f1_mean(*pooled)))
    return VideoScores(*scores)


def llp_summary(videos: list[VideoScores]) -> dict[str, float]:
    """The dataset's ten figures in %: segment and event level, each A, V, AV, Type@AV and Event@AV."""
    summary = {}
    for level in ("segment", "event"):
        a, v, av, pooled = (100 * float(np.mean([getattr(s, level)[i] for s in videos])) for i in range(4))
        summary.update({f"{level}_a": a, f"{level}_v": v, f"{level}_av": av,
                        f"{level}_type": (a + v + av) / 3, f"{level}_event": pooled})  # fmt: skip
    return summary


FIGURES = ("a", "v", "av", "event")  # the four F1s of each level kept per video; Type@AV is derived


def score_sums(videos: list[VideoScores]) -> dict[str, float]:
    """The per-video F1s summed over ``videos`` (fractions), with the count: what evaluation adds up across
    batches and ranks."""
    sums = {"videos": float(len(videos))}
    for level in ("segment", "event"):
        for i, figure in enumerate(FIGURES):
            sums[f"{level}_{figure}_sum"] = float(sum(getattr(s, level)[i] for s in videos))
    return sums


def figures_from_sums(sums: dict[str, float]) -> dict[str, float]:
    """The ten figures in % from :func:`score_sums` (the same as :func:`llp_summary` of the videos)."""
    n, out = max(sums["videos"], 1), {}
    for level in ("segment", "event"):
        a, v, av, pooled = (100 * sums[f"{level}_{figure}_sum"] / n for figure in FIGURES)
        out.update({f"{level}_a": a, f"{level}_v": v, f"{level}_av": av, f"{level}_type": (a + v + av) / 3,
                    f"{level}_event": pooled})  # fmt: skip
    return out
