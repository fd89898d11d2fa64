"""``convforge explain``: the linear interpreter's pictures for an image file and a trained (or named) model."""

from __future__ import annotations

from pathlib import Path

from convforge.data.image_file import read_image
from convforge.errors import ConvforgeError
from convforge.explain.pictures import Explanation, explain_image
from convforge.models import create_model, default_input_size, get_model_info
from convforge.output_files import check_output_files
from convforge.runs.loading import load_trained
from convforge.tasks import get_task


def explain_file(
    model: str | Path, image: str | Path, out_dir: str | Path, target: int | str | None = None
) -> Explanation:
    """Explain ``image`` under ``model``: a run directory, a checkpoint, or a registered name (untrained).

    The image is prepared by the model's task as in training (a super-resolution model
    reads the luma as it is, the LR input). ``target`` is a class index or name to explain
    besides the predicted class. The pictures go to ``out_dir`` (see
    :mod:`convforge.explain.pictures`).
    """
    check_output_files(Path(out_dir), (), overwrite=True)  # a folder to write into, not a file
    if Path(model).exists():
        trained = load_trained(model)
        network, config, task_name = trained.model, trained.config, trained.task
    else:
        size = default_input_size(str(model))
        task_name = get_model_info(str(model)).task
        network = create_model(str(model))
        config = {"input_size": list(size), "mean": [0.5] * size[0], "std": [0.5] * size[0], "classes": [],
                  "recipe": {"task": task_name}}  # fmt: skip
        print(f"note: {model} is not a checkpoint; explaining the untrained network")
    classes = config.get("classes") or []
    if isinstance(target, str) and not target.isdigit():
        if target not in classes:
            raise ConvforgeError(f"class {target!r} is not one of the model's classes: {', '.join(classes) or 'none'}")
        target = classes.index(target)
    x0 = get_task(task_name).model_input(read_image(image), config)
    return explain_image(network.float().eval(), x0, out_dir, classes, None if target is None else int(target))
