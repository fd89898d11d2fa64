"""Single-image super-resolution on luma: L1 loss on random patches; PSNR and SSIM on whole images.

Training batches are aligned (LR, HR) patches with flips and rotations; validation
runs every whole image of ``recipe.val_data`` (Set5 by default) and scores the
prediction, clipped and rounded to 8-bit levels, on Y with ``scale`` pixels shaved
from every border, as the SR literature does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from convforge.data.super_resolution import PatchLoader, WholeImageLoader, load_sr_images
from convforge.errors import ConvforgeError
from convforge.tasks.base import TaskData
from convforge.tasks.image_quality import psnr, ssim, to_levels


class SuperResolutionTask:
    """Super-resolution by ``recipe.scale`` of the Y channel, trained on ``recipe.data``."""

    name = "sr"
    primary_metric = "psnr"

    def __init__(self) -> None:
        self.scale = 2

    def build_data(self, recipe: Any, rank: int = 0, world_size: int = 1, channels_last: bool = False) -> TaskData:
        self.scale = recipe.scale
        train = load_sr_images(recipe.data, recipe.scale, root=recipe.data_root)
        val = load_sr_images(recipe.val_data, recipe.scale, root=recipe.data_root)
        loader = PatchLoader(train, recipe.patch_size, recipe.batch_size, recipe.patches_per_image,
                             augment=recipe.flip, seed=recipe.seed, rank=rank, world_size=world_size)  # fmt: skip
        return TaskData(
            train=loader,
            val=WholeImageLoader(val, rank, world_size),
            model_kwargs={"scale": recipe.scale, "in_chans": 1},
            input_size=(1, recipe.patch_size, recipe.patch_size),
            info={
                "scale": recipe.scale,
                "train_images": len(train),
                "val_images": len(val),
                "source": recipe.data,
                "val_source": recipe.val_data,
            },  # fmt: skip
        )

    def build_eval_data(self, recipe: Any, data: str | None = None) -> Iterable:
        """Whole images of ``data`` (e.g. set5, set14), by default of ``recipe.val_data``, at ``recipe.scale``."""
        self.scale = recipe.scale
        return WholeImageLoader(load_sr_images(data or recipe.val_data, recipe.scale, root=recipe.data_root))

    def training_loss(
        self, model: nn.Module, batch: Any, recipe: Any, device: torch.device
    ) -> tuple[torch.Tensor, int]:
        lr, hr = (t.to(device, non_blocking=True) for t in batch)
        return F.l1_loss(model(lr), hr), len(lr)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: Iterable, device: torch.device) -> dict[str, float]:
        """Sums over images of L1 loss, PSNR (dB) and SSIM, and the image count."""
        sums = {"loss_sum": 0.0, "psnr_sum": 0.0, "ssim_sum": 0.0, "count": 0.0}
        for lr, hr in batches:
            prediction = model(lr.to(device)).float().cpu()
            if prediction.shape != hr.shape:
                raise ConvforgeError(
                    f"the model maps {tuple(lr.shape)} to {tuple(prediction.shape)}, not {tuple(hr.shape)}: "
                    f"is it a ×{self.scale} super-resolution model for one channel?"
                )
            sums["loss_sum"] += F.l1_loss(prediction, hr).item()
            levels, target = to_levels(prediction), to_levels(hr)
            sums["psnr_sum"] += psnr(levels, target, border=self.scale)
            sums["ssim_sum"] += ssim(levels, target, border=self.scale)
            sums["count"] += 1
        return sums

    @staticmethod
    def summarise(sums: dict[str, float]) -> dict[str, float]:
        """Mean L1 loss, PSNR (dB) and SSIM over images."""
        n = max(sums["count"], 1)
        return {"loss": sums["loss_sum"] / n, "psnr": sums["psnr_sum"] / n, "ssim": sums["ssim_sum"] / n}
