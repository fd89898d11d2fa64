"""What tasks on pre-extracted feature files (``av-event``, ``av-parse``) answer for the image-only commands.

``predict``, ``upscale`` and post-training quantisation read image files or image batches; these tasks read
feature files of whole videos, so those commands say so in one sentence and name what works instead.
"""

from __future__ import annotations

from typing import Any, NoReturn

from convforge.errors import ConvforgeError

SPLIT_NAMES = ("train", "val", "test")


def refuse_images(task: str, what: str, reads: str = "pre-extracted feature files of whole videos") -> NoReturn:
    """One sentence: ``task`` models read ``reads``, so ``what`` (a command on image files) does not apply."""
    raise ConvforgeError(f"{what} needs image files; {task} models read {reads}: score a split with "
                         "`convforge eval RUN --data test` instead")  # fmt: skip


class FeatureFileTask:
    """The image-file methods of the task protocol, refused by name."""

    name: str
    reads = "pre-extracted feature files of whole videos"  # what the task's models take, for the refusals

    def model_input(self, image: Any, config: dict[str, Any]) -> NoReturn:
        refuse_images(self.name, "this command", self.reads)

    def predict(self, trained: Any, image: Any, **options: Any) -> NoReturn:
        refuse_images(self.name, "predict", self.reads)

    def predict_files(self, trained: Any, paths: Any, out: Any = None, overwrite: bool = False,
                      **options: Any) -> NoReturn:  # fmt: skip
        refuse_images(self.name, "predict", self.reads)

    def calibration_inputs(self, recipe: Any, count: int, seed: int = 0) -> NoReturn:
        raise ConvforgeError(f"post-training quantisation calibrates on image batches; convforge does not quantise "
                             f"{self.name} models, which read {self.reads}, yet")  # fmt: skip
