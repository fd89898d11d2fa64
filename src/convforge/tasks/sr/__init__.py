"""Single-image super-resolution of luma: L1 training on patches, PSNR/SSIM evaluation, upscaling of files."""

from convforge.tasks.sr.task import SRSettings, SuperResolutionTask
from convforge.tasks.sr.upscale import upscale, upscale_tensor

__all__ = ["SRSettings", "SuperResolutionTask", "upscale", "upscale_tensor"]
