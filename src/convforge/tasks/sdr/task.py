"""Sufficient dimension reduction: train f so that a d-dimensional f(X) carries what X says about Y.

- **Data** (:mod:`convforge.tasks.sdr.sources`): a simulation design (``sim:sphere``), rotated images
  (``rotated:mnist``), or a ``.npz`` of x and y.
- **Loss**: FCCov-Net's −FCCov_n(f(X), Y) + μ‖Ĉov(f(X)) − I_d‖²_F (``objective: fccov``), or the deep
  distance-covariance baseline −dCov²_n(f(X), Y) + the same penalty (``objective: dcov``). Each batch's response
  distance matrix is computed once, under the recipe's ``metric`` (``auto``: the one the data implies).
- **Metrics**: ``dcor``, the distance correlation between f(X) and the true index where it is known (else the
  responses, under the metric); ``dcor_response``, with the responses; ``fccov`` on the validation sample.
  Validation runs in batches of up to 2,000 examples, the figures averaged over batches by size.

Models: ``sdr_mlp`` for vector X, or any registered classifier trunk whose ``num_classes`` is set to d (the
task passes ``num_classes = dim``), e.g. ``resnet20`` for images.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from convforge.data.example_batches import ExampleBatches
from convforge.errors import ConvforgeError, InvalidValueError
from convforge.field_checks import check_ints, check_numbers, rejected
from convforge.sdr.distance_correlation import distance_correlation, distance_covariance_sq
from convforge.sdr.fccov import fccov
from convforge.sdr.objective import whitening_penalty
from convforge.sdr.response_metrics import METRICS, get_metric
from convforge.tasks.base import TaskData, TaskSettings
from convforge.tasks.feature_tasks import FeatureFileTask
from convforge.tasks.sdr.sources import SdrSplit, load_sdr_data

OBJECTIVES = ("fccov", "dcov")
EVAL_BATCH = 2000
MAX_BATCH = 8192  # a batch's n × n distances: 256 MiB in float32
MAX_PAIR_VALUES = 2**27  # batch² × dim: the sorted prefix sums kept for the backward pass (512 MiB in float32)


@dataclass
class SdrSettings(TaskSettings):
    """SDR's own recipe fields: the reduced dimension, the penalty, the response metric, the objective and the
    simulated sample sizes."""

    dim: int = 2
    mu: float = 1.0
    metric: str = "auto"
    objective: str = "fccov"
    train_size: int = 1000  # simulations: training sample size
    val_size: int = 1000  # simulations: validation sample size
    passes: int = 10  # shuffled passes over the training sample per epoch (small samples: fewer checkpoints)

    def validate(self, epochs: int) -> None:
        check_ints(self, "dim", "train_size", "val_size", "passes")
        if self.passes > 10_000:
            raise rejected("passes", self.passes, "use from 1 to 10,000")
        if self.dim > 1024:
            raise rejected("dim", self.dim, "use a reduced dimension from 1 to 1024")
        check_numbers(self, "mu")
        if self.mu < 0:
            raise rejected("mu", self.mu, "use a penalty weight >= 0")
        if self.metric != "auto" and self.metric not in METRICS:
            raise rejected("metric", self.metric, f"use auto or one of {', '.join(METRICS)}")
        if self.objective not in OBJECTIVES:
            raise rejected("objective", self.objective, f"use one of {', '.join(OBJECTIVES)}")
        if max(self.train_size, self.val_size) > 10**6:
            raise rejected("train_size", max(self.train_size, self.val_size), "use at most 1,000,000")


def _smooth_distances(features: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between feature rows with a gradient at zero distance."""
    diff = features[:, None, :] - features[None, :, :]
    return torch.sqrt((diff**2).sum(-1) + 1e-12)


def _batches(split: SdrSplit, batch_size: int, train: bool, seed: int = 0, rank: int = 0, world_size: int = 1,
             passes: int = 1) -> ExampleBatches:  # fmt: skip
    truth = split.truth if split.truth is not None else split.y

    def fetch(index: list[int]) -> tuple[torch.Tensor, ...]:
        return split.x[index], split.y[index], truth[index]

    return ExampleBatches(len(split), fetch, batch_size, train, seed, rank, world_size, passes)


class SdrTask(FeatureFileTask):
    """Sufficient dimension reduction with FCCov-Net's objective (or the distance-covariance baseline)."""

    name = "sdr"
    primary_metric = "dcor"
    default_data = "sim:euclidean"
    settings_class = SdrSettings
    any_input_size = False
    trunk_tasks = ("classify",)  # a classifier with num_classes = d serves as the network f
    reads = "the predictors of an SDR source (sim:<design>, rotated:<dataset> or a .npz of x and y)"

    def __init__(self) -> None:
        self.metric_name = "euclidean"
        self.truth_known = True

    def recipe_defaults(self, info: Any) -> dict[str, Any]:
        """Adam at 3e-3 without weight decay, batches of 500, 50 epochs of 10 passes (1,000 steps on 1,000
        examples; convforge's choice: the paper's recipe is not available)."""
        return {"opt": "adamw", "lr": 3e-3, "weight_decay": 0.0, "batch_size": 500, "epochs": 50}

    def _data(self, recipe: Any) -> Any:
        settings = recipe.task_settings
        data = load_sdr_data(recipe.data, recipe, settings.train_size, settings.val_size)
        self.metric_name = settings.metric if settings.metric != "auto" else (data.metric or "euclidean")
        try:  # the metric must read these responses: say so before any training
            get_metric(self.metric_name)(data.train.y[:2])
        except InvalidValueError as err:
            raise InvalidValueError(f"the {self.metric_name} metric cannot read the responses of {data.source}: "
                                    f"{err}") from err  # fmt: skip
        self.truth_known = data.val.truth is not None
        return data

    def build_data(self, recipe: Any, rank: int = 0, world_size: int = 1, channels_last: bool = False) -> TaskData:
        dim = recipe.task_settings.dim
        if recipe.batch_size > MAX_BATCH or recipe.batch_size**2 * dim > MAX_PAIR_VALUES:
            largest = min(MAX_BATCH, int((MAX_PAIR_VALUES / dim) ** 0.5))
            raise rejected("batch_size", recipe.batch_size, "the sdr task keeps a value per pair of a batch and "
                           f"per reduced dimension; at dim = {dim} use a batch of at most {largest:,}")  # fmt: skip
        data = self._data(recipe)
        x = data.train.x
        return TaskData(
            train=_batches(data.train, recipe.batch_size, True, recipe.seed, rank, world_size,
                           recipe.task_settings.passes),
            val=_batches(data.val, EVAL_BATCH, False, rank=rank, world_size=world_size),
            model_kwargs={"num_classes": recipe.task_settings.dim, "in_chans": x.shape[1]},
            input_size=tuple(x.shape[1:]),
            info={"train_examples": len(data.train), "val_examples": len(data.val), "source": data.source,
                  "metric": self.metric_name, "truth_known": self.truth_known},
        )  # fmt: skip

    def build_eval_data(self, recipe: Any, data: str | None = None) -> Iterable:
        """The validation sample of the recipe's data (``data`` None or ``val``), its test sample (``test``:
        simulations and rotated images have one), or the validation sample of another source."""
        if data not in (None, "val", "test"):
            return _batches(self._data(replace(recipe, data=data)).val, EVAL_BATCH, False)
        source = self._data(recipe)
        if data == "test" and source.test is None:
            raise ConvforgeError(f"{source.source} has no test split (a .npz source validates on a fifth of its "
                                 "rows); use --data val")  # fmt: skip
        return _batches(source.test if data == "test" else source.val, EVAL_BATCH, False)

    def training_loss(
        self, model: nn.Module, batch: Any, recipe: Any, device: torch.device
    ) -> tuple[torch.Tensor, int]:
        x, y = batch[0].to(device, non_blocking=True), batch[1].to(device)
        settings = recipe.task_settings
        features = model(x).float()
        distances = get_metric(self.metric_name)(y).to(features.dtype)  # once per batch
        if settings.objective == "dcov":
            dependence = distance_covariance_sq(_smooth_distances(features), distances)
        else:
            dependence = fccov(features, distances)
        return -dependence + settings.mu * whitening_penalty(features), len(x)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: Iterable, device: torch.device) -> dict[str, float]:
        """Sums over batches (weighted by size) of dCor with the truth and with the responses, and FCCov."""
        sums = dict.fromkeys(("dcor_sum", "dcor_response_sum", "fccov_sum", "loss_sum", "count"), 0.0)
        metric = get_metric(self.metric_name)
        for x, y, truth in batches:
            features = model(x.to(device)).double().cpu()
            distances = metric(y)
            n = len(x)
            value = float(fccov(features, distances))
            response = float(distance_correlation(features, distances, b_is_distances=True))
            with_truth = float(distance_correlation(features, truth)) if self.truth_known else response
            sums["dcor_sum"] += with_truth * n
            sums["dcor_response_sum"] += response * n
            sums["fccov_sum"] += value * n
            sums["loss_sum"] += (-value + float(whitening_penalty(features))) * n
            sums["count"] += n
        return sums

    @staticmethod
    def summarise(sums: dict[str, float]) -> dict[str, float]:
        """Mean FCCov-Net loss at μ = 1 (whatever the objective trained), dCor with the truth, dCor with the
        responses, and FCCov."""
        n = max(sums["count"], 1)
        return {"loss": sums["loss_sum"] / n, "dcor": sums["dcor_sum"] / n,
                "dcor_response": sums["dcor_response_sum"] / n, "fccov": sums["fccov_sum"] / n}  # fmt: skip
