"""The av-pyramid study's trials: MM-Pyramid at width 128 against three baselines and over 1–4 pyramid levels on
AVE-synth at three SNRs and three seeds, plus one MM-Pyramid run on LLP-synth.

Every trial has a key, e.g. ``ave-snr-15-mm_pyramid_ave-L4-s0``, and a configuration: the dataset and its SNR, the
model and its settings, the seed and the training settings. The training settings are one :class:`StudyPlan`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

WIDTH = 128  # the CPU-sized width of the study
AVE_MODELS = (  # (label, registered name, settings)
    ("MM-Pyramid", "mm_pyramid_ave", {"width": WIDTH, "levels": 4}),
    ("HAN-style", "han_ave", {"width": WIDTH}),
    ("AVEL-style", "avel", {"width": WIDTH}),
    ("segment MLP", "av_segment_mlp", {"width": 2 * WIDTH}),
)
ABLATION_LEVELS = (1, 2, 3)  # MM-Pyramid at these levels too (4 is the main model)


@dataclass(frozen=True)
class StudyPlan:
    """What the study trains: SNRs (dB), seeds, epochs and the optimiser's rate for AVE-synth and LLP-synth."""

    snrs: tuple[float, ...] = (-20.0, -15.0, -10.0)
    seeds: tuple[int, ...] = (0, 1, 2)
    ave_epochs: int = 5
    ave_lr: float = 1e-3
    ave_batch: int = 32
    ave_videos: int | None = None  # N videos of each AVE split, drawn at random (None: all 3,339 / 402 / 402)
    llp_snr: float = -10.0
    llp_videos: int = 2000  # N videos of each LLP split get features (val 649 and test 1,200 stay whole)
    llp_epochs: int = 8
    llp_lr: float = 1e-3
    llp_batch: int = 16

    def training(self) -> dict[str, Any]:
        """The settings a resumed study must share with the one that started it."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def snr_label(snr: float) -> str:
    return f"snr{snr:+g}"


def configurations(plan: StudyPlan) -> dict[str, dict[str, Any]]:
    """Every trial of the plan by key."""
    configs: dict[str, dict[str, Any]] = {}
    for snr in plan.snrs:
        models = list(AVE_MODELS) + [("MM-Pyramid", "mm_pyramid_ave", {"width": WIDTH, "levels": lv})
                                     for lv in ABLATION_LEVELS]  # fmt: skip
        for label, name, settings in models:
            for seed in plan.seeds:
                variant = f"L{settings['levels']}" if "levels" in settings else f"w{settings['width']}"
                key = f"ave-{snr_label(snr)}-{name}-{variant}-s{seed}"
                configs[key] = {"key": key, "dataset": "ave", "snr": snr, "label": label, "model": name,
                                "settings": settings, "seed": seed, "epochs": plan.ave_epochs, "lr": plan.ave_lr,
                                "batch_size": plan.ave_batch}  # fmt: skip
    key = f"llp-{snr_label(plan.llp_snr)}-mm_pyramid_llp-L4-s0"
    configs[key] = {
        "key": key, "dataset": "llp", "snr": plan.llp_snr, "label": "MM-Pyramid", "model": "mm_pyramid_llp",
        "settings": {"width": WIDTH, "levels": 4}, "seed": 0, "epochs": plan.llp_epochs, "lr": plan.llp_lr,
        "batch_size": plan.llp_batch,
    }  # fmt: skip
    return configs
