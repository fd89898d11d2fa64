"""Optimisers and learning-rate schedules built from a recipe.

Weight decay applies to weights only: biases and normalisation parameters (every
parameter with fewer than two dimensions) are exempt. Schedules are per step, with
a linear warm-up from 0 over ``warmup_epochs``, then:

- ``cosine``: cosine decay to 0 at the last step;
- ``step``: ×``gamma`` at each milestone epoch (default: 50 % and 75 % of the run);
- ``onecycle``: a linear rise to the peak at 25 % of the run (or the warm-up's end),
  then a linear fall to 0;
- ``constant``: the peak throughout.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from convforge.engine.recipe import Recipe


def build_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """The recipe's optimiser over the model's trainable parameters."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": recipe.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    lr = recipe.learning_rate
    if recipe.opt == "sgd":
        return torch.optim.SGD(
            groups, lr=lr, momentum=recipe.momentum, nesterov=recipe.nesterov and recipe.momentum > 0
        )
    if recipe.opt == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    return torch.optim.Adadelta(groups, lr=lr, rho=0.9, eps=1e-3)


def lr_factor(step: int, total_steps: int, steps_per_epoch: int, recipe: Recipe) -> float:
    """The multiplier of the peak learning rate at optimiser step ``step`` (0-based)."""
    warmup = int(round(recipe.warmup_epochs * steps_per_epoch))
    if recipe.sched == "onecycle":  # its rise is the warm-up: one ramp to the peak, then down
        peak = max(warmup, int(0.25 * total_steps), 1)
        if step < peak:
            return (step + 1) / peak
        return max(0.0, (total_steps - step) / max(total_steps - peak, 1))
    if step < warmup:
        return (step + 1) / warmup
    if recipe.sched == "constant":
        return 1.0
    if recipe.sched == "cosine":
        span = max(total_steps - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(step - warmup, span) / span))
    if recipe.sched == "step":
        milestones = recipe.milestones or [recipe.epochs // 2, (3 * recipe.epochs) // 4]
        epoch = step // steps_per_epoch
        return recipe.gamma ** sum(epoch >= m for m in milestones if m > 0)
    raise AssertionError(f"unhandled schedule {recipe.sched!r}")  # Recipe.validate admits only the above


def build_scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe, steps_per_epoch: int):
    """A per-step LambdaLR following :func:`lr_factor`; its state is just the step count."""
    total = recipe.epochs * steps_per_epoch
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total, steps_per_epoch, recipe))
