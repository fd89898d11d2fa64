"""Per-dimension standardisation of feature streams, fitted on training features.

Pre-extracted CNN features (VGGish, VGG-19 pool5, ...) are post-ReLU: sparse, non-negative and small. Standardised
to zero mean and unit variance per dimension, with the training split's statistics, they train the temporal
models many times faster (MM-Pyramid at width 128 on AVE-synth: 18 % → 82 % validation accuracy in two epochs
at the same learning rate). The same statistics are applied to every split.
"""

from __future__ import annotations

import numpy as np

MIN_STD = 1e-6  # a dimension that never varies is centred, not scaled
CHUNK_ROWS = 65_536  # rows summed at once


class FeatureScaling:
    """``(x − mean) / std`` per last-axis dimension, one pair per stream."""

    def __init__(self, means: list[np.ndarray], stds: list[np.ndarray]) -> None:
        self.means = [m.astype(np.float32) for m in means]
        self.stds = [np.maximum(s, MIN_STD).astype(np.float32) for s in stds]

    @classmethod
    def fit(cls, streams: list[np.ndarray]) -> FeatureScaling:
        """The mean and std of each stream over every axis but the last, summed in float64 a chunk of rows at a
        time (AVE's 7×7×512 visual maps are 3.4 GB in float32)."""
        means, stds = [], []
        for stream in streams:
            flat = np.asarray(stream).reshape(-1, np.shape(stream)[-1])
            total, squares = np.zeros(flat.shape[1]), np.zeros(flat.shape[1])
            for start in range(0, len(flat), CHUNK_ROWS):
                part = flat[start : start + CHUNK_ROWS].astype(np.float64)
                total += part.sum(0)
                squares += (part**2).sum(0)
            mean = total / max(len(flat), 1)
            means.append(mean)
            stds.append(np.sqrt(np.maximum(squares / max(len(flat), 1) - mean**2, 0)))
        return cls(means, stds)

    def apply(self, index: int, features: np.ndarray) -> np.ndarray:
        """Stream ``index``'s ``features`` standardised, float32."""
        return (features - self.means[index]) / self.stds[index]
