"""Semi-synthetic audio-visual features laid on real labels and timings, for AVE and LLP.

The real pre-extracted features of AVE and LLP are large downloads; their labels and event timings are small.
This module makes per-second features for those real timings, so that the standard readers and tasks can be
run and compared on controlled data:

- **Background** (no event): non-negative, sparse values like post-ReLU CNN features, drawn per dimension
  from a rectified Gaussian ``max(0, loc + scale·z)``. :meth:`RectifiedGaussian.fit` calibrates it to real
  features: it matches each dimension's mean and fraction of exact zeros (AVE's real background audio has
  about 65 % zeros). Without real features a generic one is used.
- **Events.** Each class has a sparse non-negative unit prototype per modality; a video varies it a little
  (a log-normal factor per dimension), and each second of its event adds ``gain × prototype`` to the
  background draw before the rectification. ``gain`` is set by the signal-to-noise ratio:
  ``SNR = gain² / Σ_k Var(background_k)`` (in dB), so at 0 dB the event adds as much energy as the background
  varies, and at −20 dB a hundredth of it.
- **Modalities.** An event may be made only audible or only visible (``audio_only``, ``visual_only``
  fractions); LLP's val and test videos use their real per-modality annotations instead.

Results on these features measure how well a model localises events in time on controlled data. They are
**not** results on the AVE or LLP benchmarks, whose real features carry real sounds and images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from convforge.errors import InvalidValueError

_NORMAL = NormalDist()
PROTOTYPE_DENSITY = 0.25  # the fraction of dimensions a class prototype is non-zero in
VIDEO_VARIATION = 0.25  # the log-normal spread of a video's prototype around its class's, per dimension


def _phi(t: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * t**2) / math.sqrt(2 * math.pi)


def _cdf(t: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.vectorize(math.erf)(t / math.sqrt(2)))


@dataclass(frozen=True)
class SynthSettings:
    """How hard the features are: the SNR in dB, the fractions of events heard only or seen only, the seed."""

    snr_db: float = -10.0
    audio_only: float = 0.0
    visual_only: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.snr_db, bool) or not isinstance(self.snr_db, (int, float)) or not -60 <= self.snr_db <= 60:
            raise InvalidValueError(f"snr_db must be a number of dB from -60 to 60, got {self.snr_db!r}")
        for name in ("audio_only", "visual_only"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise InvalidValueError(f"{name} must be a fraction from 0 to 1, got {value!r}")
        if self.audio_only + self.visual_only > 1:
            raise InvalidValueError(f"audio_only + visual_only must be at most 1, got {self.audio_only} + "
                                    f"{self.visual_only}")  # fmt: skip
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InvalidValueError(f"seed must be a non-negative integer, got {self.seed!r}")

    def modalities(self, rng: np.random.Generator) -> tuple[bool, bool]:
        """Whether one event is heard and whether it is seen."""
        draw = rng.random()
        if draw < self.audio_only:
            return True, False
        if draw < self.audio_only + self.visual_only:
            return False, True
        return True, True


class RectifiedGaussian:
    """Per-dimension ``max(0, loc + scale·z)``: the background of one feature stream."""

    def __init__(self, loc: np.ndarray, scale: np.ndarray) -> None:
        self.loc, self.scale = np.asarray(loc, np.float64), np.asarray(scale, np.float64)

    @classmethod
    def fit(cls, features: np.ndarray) -> RectifiedGaussian:
        """Match each dimension's mean and fraction of zeros of real non-negative ``features`` ``[..., dims]``."""
        flat = np.asarray(features, np.float64).reshape(-1, np.shape(features)[-1])
        if not np.isfinite(flat).all() or (flat < 0).any():
            raise InvalidValueError("background features must be finite and non-negative (post-ReLU)")
        positive = np.clip(1 - (flat == 0).mean(0), 1e-3, 1 - 1e-3)
        t = np.array([_NORMAL.inv_cdf(p) for p in positive])
        scale = np.maximum(flat.mean(0), 1e-6) / (t * _cdf(t) + _phi(t))
        return cls(t * scale, scale)

    @classmethod
    def generic(cls, dims: int, rng: np.random.Generator) -> RectifiedGaussian:
        """A background about 60 % zeros with dimension-to-dimension spread, for streams with no real features."""
        scale = rng.uniform(0.5, 1.5, dims)
        return cls(rng.normal(-0.3, 0.3, dims) * scale, scale)

    @property
    def dims(self) -> int:
        return len(self.loc)

    def variance(self) -> np.ndarray:
        """Each dimension's variance (closed form of the rectified Gaussian)."""
        t = self.loc / self.scale
        first = self.scale * (t * _cdf(t) + _phi(t))
        second = self.scale**2 * ((t**2 + 1) * _cdf(t) + t * _phi(t))
        return np.maximum(second - first**2, 0.0)

    def noise(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """``loc + scale·z`` before rectification, ``shape + (dims,)``, float32."""
        z = rng.standard_normal((*shape, self.dims), dtype=np.float32)
        return z * self.scale.astype(np.float32) + self.loc.astype(np.float32)


class SyntheticStream:
    """One feature stream (audio, visual, ...): its background, its class prototypes and the event gain."""

    def __init__(self, background: RectifiedGaussian, classes: int, snr_db: float, rng: np.random.Generator) -> None:
        self.background = background
        active = rng.random((classes, background.dims)) < PROTOTYPE_DENSITY
        active[np.arange(classes), rng.integers(0, background.dims, classes)] = True  # never an empty prototype
        prototypes = np.abs(rng.standard_normal((classes, background.dims))) * active
        self.prototypes = prototypes / np.linalg.norm(prototypes, axis=1, keepdims=True)
        self.gain = math.sqrt(10 ** (snr_db / 10) * float(self.background.variance().sum()))

    def video_prototypes(self, rng: np.random.Generator) -> np.ndarray:
        """This video's version of every class prototype ``[classes, dims]``."""
        return self.prototypes * np.exp(VIDEO_VARIATION * rng.standard_normal(self.prototypes.shape))

    def features(self, events: np.ndarray, rng: np.random.Generator, weights: np.ndarray | None = None) -> np.ndarray:
        """Features ``[steps, (regions,) dims]`` for ``events`` ``[steps, classes]`` (0/1: which classes sound or
        show at each step), float32. ``weights`` ``[regions]`` spreads the event over image regions."""
        signal = (events.astype(np.float64) @ self.video_prototypes(rng)) * self.gain  # [steps, dims]
        if weights is None:
            return np.maximum(self.background.noise((len(events),), rng) + signal.astype(np.float32), 0)
        noise = self.background.noise((len(events), len(weights)), rng)
        return np.maximum(noise + (weights[None, :, None] * signal[:, None, :]).astype(np.float32), 0)


def region_weights(rng: np.random.Generator, side: int = 7) -> np.ndarray:
    """Where an event sits in a ``side × side`` map: a Gaussian blob at a random place, mean weight 1."""
    y, x = np.mgrid[0:side, 0:side]
    cy, cx = rng.uniform(1, side - 2, 2)
    blob = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * 1.2**2)).ravel()
    return blob / blob.mean()
