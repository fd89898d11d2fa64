"""What tasks on pre-extracted feature files (``av-event``, ``av-parse``) answer for the image-only commands.

``predict``, ``upscale`` and post-training quantisation read image files or image batches; these tasks read
feature files of whole videos, so those commands say so in one sentence and name what works instead.
"""

from __future__ import annotations

from typing import Any, NoReturn

from convforge.errors import ConvforgeError

SPLIT_NAMES = ("train", "val", "test")


def refuse_images(task: str, what: str) -> NoReturn:
    """One sentence: ``task`` models read feature files, so ``what`` (a command on images) does not apply."""
    raise ConvforgeError(f"{what} needs image inputs; {task} models read pre-extracted feature files of whole "
                         "videos: score a split with `convforge eval RUN --data test` instead")  # fmt: skip


class FeatureFileTask:
    """The image-side methods of the task protocol, refused by name."""

    name: str

    def model_input(self, image: Any, config: dict[str, Any]) -> NoReturn:
        refuse_images(self.name, "this command")

    def predict(self, trained: Any, image: Any, **options: Any) -> NoReturn:
        refuse_images(self.name, "predict")

    def predict_files(self, trained: Any, paths: Any, out: Any = None, overwrite: bool = False,
                      **options: Any) -> NoReturn:  # fmt: skip
        refuse_images(self.name, "predict")

    def calibration_inputs(self, recipe: Any, count: int, seed: int = 0) -> NoReturn:
        raise ConvforgeError(f"post-training quantisation calibrates on image batches; {self.name} models take "
                             "several feature streams, which convforge does not quantise yet")  # fmt: skip
