"""``convforge explain``: the linear interpreter's pictures for an image file and a trained (or named) model."""

from __future__ import annotations

from pathlib import Path

from convforge.data.color import rgb_to_y
from convforge.data.image_file import read_image
from convforge.engine.loading import load_trained
from convforge.errors import ConvforgeError
from convforge.explain.pictures import Explanation, explain_image
from convforge.registry import create_model, default_input_size
from convforge.tasks.classification import prepare_image


def explain_file(
    model: str | Path, image: str | Path, out_dir: str | Path, target: int | str | None = None
) -> Explanation:
    """Explain ``image`` under ``model``: a run directory, a checkpoint, or a registered name (untrained).

    A super-resolution run explains the image's luma as it is (the LR input).
    ``target`` is a class index or name to explain besides the predicted class. The
    pictures go to ``out_dir`` (see :mod:`convforge.explain.pictures`).
    """
    if Path(model).exists():
        trained = load_trained(model)
        config = trained.config
        task = config["recipe"]["task"]
        if task == "sr":
            x0 = rgb_to_y(read_image(image))[None]
            return explain_image(trained.model.float().eval(), x0, out_dir)
        if task != "classify":
            raise ConvforgeError(f"{trained.checkpoint} is a {task} model; explain reads images for classifiers and "
                                 "super-resolution models")  # fmt: skip
        network, classes = trained.model, config.get("classes") or []
        channels = int((config.get("model_kwargs") or {}).get("in_chans", len(config["mean"])))
        size = (channels, *tuple(config.get("input_size") or (channels, 32, 32))[-2:])
        mean, std = tuple(config["mean"]), tuple(config["std"])
    else:
        network, classes = create_model(str(model)), []
        size = default_input_size(str(model))
        mean, std = (0.5,) * size[0], (0.5,) * size[0]
        print(f"note: {model} is not a checkpoint; explaining the untrained network")
    if isinstance(target, str) and not target.isdigit():
        if target not in classes:
            raise ConvforgeError(f"class {target!r} is not one of the model's classes: {', '.join(classes) or 'none'}")
        target = classes.index(target)
    x0 = prepare_image(read_image(image), size, mean, std)
    return explain_image(network.float().eval(), x0, out_dir, classes, None if target is None else int(target))
