"""Single-image super-resolution on luma: L1 loss on random patches; PSNR and SSIM on whole images.

Training batches are aligned (LR, HR) patches with flips and rotations; validation
runs every whole image of ``recipe.val_data`` (Set5 by default) and scores the
prediction, clipped and rounded to 8-bit levels, on Y with ``scale`` pixels shaved
from every border, as the SR literature does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from convforge.compress.distillation import output_distillation_loss
from convforge.data.color import rgb_to_y
from convforge.data.image_file import read_image
from convforge.data.super_resolution import PatchLoader, WholeImageLoader, load_sr_images
from convforge.errors import ConvforgeError
from convforge.field_checks import check_bools, check_ints, is_int, rejected
from convforge.output_files import check_output_files, fresh_folder, remove_if_empty
from convforge.tables import text_table
from convforge.tasks.base import Predictions, TaskData, TaskSettings, first_examples, output_names
from convforge.tasks.sr.image_quality import psnr, ssim, to_levels
from convforge.tasks.sr.upscale import TASK, upscale_tensor, write_image


@dataclass
class SRSettings(TaskSettings):
    """Super-resolution's own recipe fields: the scale, the training patches and the validation images."""

    scale: int = 2
    patch_size: int = 32  # LR pixels a side; HR patches are scale times larger
    patches_per_image: int = 32  # random patches drawn from every training image per epoch
    val_data: str = "set5"
    flip: bool = True  # random flips and rotations of the patches

    def validate(self, epochs: int) -> None:
        if not is_int(self.scale) or not 2 <= self.scale <= 8:
            raise rejected("scale", self.scale, "use an integer from 2 to 8")
        check_ints(self, "patch_size", "patches_per_image")
        check_bools(self, "flip")
        if not isinstance(self.val_data, str) or not self.val_data:
            raise rejected("val_data", self.val_data, "name the images to validate on, e.g. set5")


class SuperResolutionTask:
    """Super-resolution by ``scale`` of the Y channel, trained on ``recipe.data``."""

    name = TASK
    primary_metric = "psnr"
    default_data = "t91"
    settings_class = SRSettings
    any_input_size = True

    def __init__(self) -> None:
        self.scale = 2

    def recipe_defaults(self, info: Any) -> dict[str, Any]:
        return {}

    def build_data(self, recipe: Any, rank: int = 0, world_size: int = 1, channels_last: bool = False) -> TaskData:
        settings = recipe.task_settings
        self.scale = settings.scale
        train = load_sr_images(recipe.data, settings.scale, root=recipe.data_root)
        val = load_sr_images(settings.val_data, settings.scale, root=recipe.data_root)
        train, val = train.subset(recipe.train_subset, recipe.seed), val.subset(recipe.val_subset, recipe.seed)
        loader = PatchLoader(train, settings.patch_size, recipe.batch_size, settings.patches_per_image,
                             augment=settings.flip, seed=recipe.seed, rank=rank, world_size=world_size)  # fmt: skip
        return TaskData(
            train=loader,
            val=WholeImageLoader(val, rank, world_size),
            model_kwargs={"scale": settings.scale, "in_chans": 1},
            input_size=(1, settings.patch_size, settings.patch_size),
            info={
                "scale": settings.scale,
                "train_images": len(train),
                "val_images": len(val),
                "source": recipe.data,
                "val_source": settings.val_data,
            },  # fmt: skip
        )

    def build_eval_data(self, recipe: Any, data: str | None = None) -> Iterable:
        """Whole images of ``data`` (e.g. set5, set14), by default of ``val_data``, at ``scale``."""
        settings = recipe.task_settings
        self.scale = settings.scale
        images = load_sr_images(data or settings.val_data, settings.scale, root=recipe.data_root)
        return WholeImageLoader(images.subset(recipe.val_subset, recipe.seed))

    def calibration_inputs(self, recipe: Any, count: int, seed: int = 0) -> Iterator[torch.Tensor]:
        """``count`` low-resolution training patches drawn with ``seed``, without flips or rotations."""
        settings = recipe.task_settings
        train = load_sr_images(recipe.data, settings.scale, root=recipe.data_root)
        per_image = max(1, -(-count // len(train)))
        loader = PatchLoader(train, settings.patch_size, min(count, 64), per_image, augment=False, seed=seed)
        yield from first_examples((lr for lr, _ in loader), count)

    def training_loss(
        self, model: nn.Module, batch: Any, recipe: Any, device: torch.device
    ) -> tuple[torch.Tensor, int]:
        lr, hr = (t.to(device, non_blocking=True) for t in batch)
        return F.l1_loss(model(lr), hr), len(lr)

    def distillation_loss(
        self, student_output: torch.Tensor, teacher_output: torch.Tensor, recipe: Any
    ) -> torch.Tensor:
        """L1 between the student's and the teacher's super-resolved images."""
        return output_distillation_loss(student_output, teacher_output)

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

    # ------------------------------------------------------------ inference

    def model_input(self, image: torch.Tensor, config: dict[str, Any]) -> torch.Tensor:
        """The image's luma (BT.601 Y, 0–1) as it is: the low-resolution input."""
        return rgb_to_y(image)[None]

    def predict(self, trained: Any, image: torch.Tensor) -> torch.Tensor:
        """``image`` enlarged by the run's scale: luma by the model, chroma bicubic; float 0–1, C×H×W."""
        return upscale_tensor(trained.model.float().eval(), image, int(trained.config["recipe"]["scale"]))

    def predict_files(self, trained: Any, paths: list[Path], out: Path | None = None,
                      overwrite: bool = False) -> Predictions:  # fmt: skip
        """Enlarge every image into ``out`` (default: a fresh ``<run>/predict`` folder) as ``<name>.png``; an
        existing file there is replaced only with ``overwrite``."""
        fresh = out is None
        out = Path(out) if out is not None else fresh_folder(trained.run_dir / "predict")
        names = output_names([str(p) for p in paths], ".png")
        results: dict[str, Any] = {}
        try:
            check_output_files(out, names.values(), overwrite)
            for path, name in names.items():
                results[path] = write_image(self.predict(trained, read_image(path)), out / name)
        except BaseException:
            if fresh:
                remove_if_empty(out)
            raise
        rows = [(path, str(target)) for path, target in results.items()]
        return Predictions(results, text_table(["image", "enlarged"], rows), list(results.values()))
