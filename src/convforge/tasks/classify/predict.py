"""Classification inference: an image prepared as the model was trained on, and its most probable classes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convforge.data.image_file import drop_alpha


def prepare_image(image: torch.Tensor, input_size: tuple[int, ...], mean: tuple[float, ...], std: tuple[float, ...]):
    """A uint8 C×H×W image → a normalised 1×C×H×W batch at the model's input size and channel count."""
    channels, height, width = input_size
    image = drop_alpha(image)
    if image.shape[0] != channels:
        if channels == 1:  # ITU-R BT.601 luma
            weights = torch.tensor([0.299, 0.587, 0.114])[: image.shape[0]]
            image = (image.float() * weights.view(-1, 1, 1) / weights.sum()).sum(0, keepdim=True)
        else:
            image = image.expand(channels, -1, -1)
    x = image.float().unsqueeze(0) / 255.0
    if x.shape[-2:] != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - mean_t) / std_t


@torch.no_grad()
def top_classes(model: nn.Module, batch: torch.Tensor, classes: list[str], k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` most probable classes of the first image in ``batch``, with probabilities (0–1)."""
    first = next(model.parameters(), None)
    probs = model(batch.to(first.device) if first is not None else batch).float().softmax(dim=1)[0]
    values, indices = probs.topk(min(k, probs.numel()))
    return [(classes[i] if i < len(classes) else str(i), float(v)) for v, i in zip(values.tolist(), indices.tolist())]
