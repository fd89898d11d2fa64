"""``convforge prune RUN``: prune a trained run, optionally fine-tune (with distillation), write a new run.

The new run directory is an ordinary run (``eval``, ``predict``, ``export``, ``profile``
and ``train --resume`` take it) plus what the pruning did:

- ``pruning.json``: target, importance, per-layer channels, MACs, parameters and latency
  before and after, and the task's score for the dense, pruned and fine-tuned models;
- ``layers.txt``: the per-layer table;
- ``plots/pruning.png``: channels per layer, and the score against MACs;
- ``structure.json``: the pruned shapes, from which the model is rebuilt without pickle.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from convforge.atomic import write_json_atomic, write_text_atomic
from convforge.compress.importance import check_importance
from convforge.compress.plots import plot_pruning, plot_sensitivity
from convforge.compress.pruning import PruneResult, prune
from convforge.compress.pruning_target import PruneTarget
from convforge.compress.sensitivity import RATIOS, layer_sensitivity
from convforge.engine.recipe import Recipe
from convforge.engine.trainer import STRUCTURE_FILE, train
from convforge.errors import ConvforgeError, InvalidValueError
from convforge.input_shapes import is_multi_input, shape_text
from convforge.model_origin import origin_of
from convforge.profiler import measure_latency, profile
from convforge.runs.checkpoint import save_checkpoint
from convforge.runs.loading import TrainedModel, load_trained, trained_model
from convforge.runs.run_dir import RunDir
from convforge.tables import format_metric, human_count, text_table
from convforge.tasks import get_task

TAYLOR_BATCHES = 4  # real training batches whose gradients score channels for Taylor importance
FINETUNE_LR_FACTOR = 0.1  # fine-tuning starts at this fraction of the dense run's learning rate


@dataclass
class PruneRunResult:
    """The new run directory, the pruning record and the scores of the dense, pruned and fine-tuned models."""

    run_dir: Path
    pruning: PruneResult
    scores: dict[str, dict[str, float]]  # "dense", "pruned", "fine-tuned" -> the task's metrics
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # "dense"/"pruned" -> {"batch N": ms}
    metric: str = "top1"


def _latencies(model: nn.Module, input_size: tuple[int, ...], batches: tuple[int, ...]) -> dict[str, float]:
    return {f"batch {b}": measure_latency(model, (torch.randn(b, *input_size),), runs=20, warmup=3).median_ms
            for b in batches}  # fmt: skip


def _latency_batches(input_size: tuple[int, ...]) -> tuple[int, ...]:
    pixels = input_size[-1] * input_size[-2]
    return (1, 64) if pixels <= 64 * 64 else (1, 8)


def prune_run(
    source: str | Path | TrainedModel,
    target: str = "macs=0.5",
    importance: str = "l2",
    *,
    scope: str = "global",
    steps: int = 1,
    round_to: int | None = 8,
    finetune_epochs: int = 0,
    kd: bool = False,
    project: str | None = None,
    name: str | None = None,
    data_root: str | None = None,
    progress: bool = True,
    **finetune_overrides: Any,
) -> PruneRunResult:
    """Prune the trained model of ``source`` (a run directory or checkpoint) to ``target`` and write a new run.

    ``finetune_epochs`` > 0 fine-tunes the pruned model with the dense run's recipe (learning
    rate × 0.1 unless ``lr`` is given in ``finetune_overrides``), distilling from the dense model
    when ``kd`` is set. With ``steps`` > 1 the pruning is iterative, with an equal share of
    the fine-tuning epochs after each step.
    """
    PruneTarget.parse(target)  # a bad target or criterion is refused before any model or data is read
    check_importance(importance)
    trained = trained_model(source)
    dense = trained.model
    if origin_of(dense) is None:
        raise ConvforgeError(f"{trained.checkpoint} was not built from a registered name, so its pruned form "
                             "could not be rebuilt; train a registered model to prune it")  # fmt: skip
    values = Recipe.stored_values(trained.config["recipe"])
    if data_root:
        values["data_root"] = data_root
    recipe = Recipe.from_values(values)
    if isinstance(finetune_epochs, bool) or not isinstance(finetune_epochs, int) or finetune_epochs < 0:
        raise InvalidValueError(f"finetune_epochs must be an integer >= 0, got {finetune_epochs!r}")
    if kd and finetune_epochs == 0:
        raise InvalidValueError("kd distils while fine-tuning: give finetune_epochs > 0 too")
    task = get_task(recipe.task)
    if is_multi_input(trained.config.get("input_size")):
        raise ConvforgeError(f"{trained.checkpoint} holds a model of several input streams "
                             f"({shape_text(trained.config['input_size'])}); convforge prunes models of one image "
                             "input")  # fmt: skip
    data = task.build_data(recipe)
    input_size = tuple(data.input_size)
    example = torch.randn(1, *input_size)
    taylor_loss = _taylor_loss(task, data, recipe) if importance == "taylor" else None
    epochs_per_step = finetune_epochs // steps if steps > 1 else 0
    run_name = name or f"{trained.run_dir.name}-pruned"
    # beside the source run unless --project says otherwise: never where the checkpoint's record points
    project = project or str(trained.run_dir.parent.parent)
    ft_recipe = _finetune_recipe(recipe, max(finetune_epochs, 1), project, run_name, finetune_overrides)

    teacher = trained.run_dir if kd else None

    def between_steps(model: nn.Module, step: int) -> None:
        train(model, recipe=ft_recipe.with_overrides(epochs=epochs_per_step, name=f"{run_name}-step{step}"),
              teacher=teacher, progress=progress)  # fmt: skip

    result = prune(dense, example, target, importance, scope=scope, steps=steps, round_to=round_to,
                   finetune=between_steps if epochs_per_step else None, taylor_loss=taylor_loss,
                   progress=progress)  # fmt: skip
    score = _scorer(task, task.build_eval_data(recipe.with_overrides(val_subset=0)))  # the whole test split, once
    scores = {"dense": score(dense), "pruned": score(result.model)}
    batches = _latency_batches(input_size)
    latency = {"dense": _latencies(dense, input_size, batches), "pruned": _latencies(result.model, input_size, batches)}
    remaining = finetune_epochs - epochs_per_step * (steps - 1)
    if finetune_epochs:
        run = train(result.model, recipe=ft_recipe.with_overrides(epochs=remaining), teacher=teacher,
                    progress=progress)  # fmt: skip
        run_dir = RunDir(run.run_dir)
        scores["fine-tuned"] = score(load_trained(run.run_dir).model)  # its best checkpoint, EMA weights when kept
    else:
        run_dir = _write_pruned_run(result, trained, ft_recipe, data.info, input_size)
    outcome = PruneRunResult(run_dir.path, result, scores, latency, task.primary_metric)
    _write_report(outcome, run_dir, trained)
    return outcome


def _taylor_loss(task: Any, data: Any, recipe: Recipe) -> Callable[[nn.Module], torch.Tensor]:
    """The task's training loss over the first few real training batches, for Taylor importance."""
    batches = list(itertools.islice(iter(data.train), TAYLOR_BATCHES))
    cpu = torch.device("cpu")

    def loss(model: nn.Module) -> torch.Tensor:
        return sum(task.training_loss(model, b, recipe, cpu)[0] for b in batches) / len(batches)

    return loss


def _finetune_recipe(recipe: Recipe, epochs: int, project: str | None, name: str,
                     overrides: dict[str, Any]) -> Recipe:  # fmt: skip
    given = {k: v for k, v in overrides.items() if v is not None}
    values = {
        "epochs": epochs,
        "warmup_epochs": 0,
        "milestones": [],
        "name": name,
        "lr": recipe.learning_rate * FINETUNE_LR_FACTOR,
        **({"project": project} if project else {}),
        **given,
    }
    return recipe.with_overrides(**values)


def _scorer(task: Any, batches: Any) -> Callable[[nn.Module], dict[str, float]]:
    """A function giving a model's task metrics (and the example count) on ``batches``, on the CPU."""
    cpu = torch.device("cpu")

    def score(model: nn.Module) -> dict[str, float]:
        sums = task.evaluate(model.eval(), batches, cpu)
        return {**task.summarise(sums), "count": int(sums["count"])}

    return score


def _write_pruned_run(result: PruneResult, trained: TrainedModel, recipe: Recipe, info: dict[str, Any],
                      input_size: tuple[int, ...]) -> RunDir:  # fmt: skip
    """A run holding the pruned model as its checkpoint (epoch 0): ``train --resume`` fine-tunes it."""
    origin = origin_of(result.model)
    assert origin is not None
    run = RunDir.create(recipe.project, recipe.task, recipe.name or "pruned")
    meta = {
        "epoch": 0,
        "rows": [],
        **origin.record(),
        "structure": origin.structure,
        "recipe": recipe.to_dict(),
        **{k: trained.config.get(k) for k in ("classes", "mean", "std")},
        "input_size": list(input_size),
    }
    state = result.model.state_dict()
    save_checkpoint(run.checkpoints / "last", state, meta)
    save_checkpoint(run.checkpoints / "best", state, meta)
    run.write_json(STRUCTURE_FILE, origin.structure)
    run.write_config({
        **origin.record(),
        "recipe": recipe.to_dict(),
        "data": {k: list(v) if isinstance(v, tuple) else v for k, v in info.items() if k != "classes"},
        "classes": info.get("classes"),
        "input_size": list(input_size),
        "structure": STRUCTURE_FILE,
        "pruned_from": str(trained.checkpoint.resolve()),
        "torch": str(torch.__version__),
    })  # fmt: skip
    run.write_json("profile.json", profile(result.model, input_size, name=origin.model).to_dict())
    return run


def _write_report(outcome: PruneRunResult, run: RunDir, trained: TrainedModel) -> None:
    result, metric = outcome.pruning, outcome.metric
    report = {
        "source": str(trained.checkpoint.resolve()),
        **result.to_dict(),
        "scores": outcome.scores,
        "latency_ms": outcome.latency_ms,
    }
    report.pop("structure")
    run.write_json("pruning.json", report)
    write_text_atomic(run.path / "layers.txt", result.layer_table() + "\n")
    macs = {"dense": result.macs_before, "pruned": result.macs_after, "fine-tuned": result.macs_after}
    points = [(label, macs[label], scores[metric]) for label, scores in outcome.scores.items()]
    plot_pruning(result.layers, points, metric, run.plots / "pruning.png",
                 title=f"{trained.config.get('model')}: {result.target}, {result.importance} importance")  # fmt: skip


def summary_table(outcome: PruneRunResult) -> str:
    """Dense against pruned (and fine-tuned): MACs, parameters, latency and the task's score."""
    result, metric = outcome.pruning, outcome.metric
    batches = list(outcome.latency_ms.get("dense", {}))
    headers = ["model", "MACs", "params", *(f"latency {b} (ms)" for b in batches), metric]
    rows = []
    for label, scores in outcome.scores.items():
        macs = result.macs_before if label == "dense" else result.macs_after
        params = result.params_before if label == "dense" else result.params_after
        timing = outcome.latency_ms.get("dense" if label == "dense" else "pruned", {})
        rows.append((label, human_count(macs), human_count(params), *(f"{timing[b]:.2f}" for b in batches),
                     format_metric(metric, scores[metric])))  # fmt: skip
    return text_table(headers, rows)


def sensitivity_run(source: str | Path | TrainedModel, importance: str = "l2", ratios: tuple[float, ...] = RATIOS,
                    val_subset: int = 1000, data_root: str | None = None, out: str | Path | None = None,
                    progress: bool = True) -> tuple[dict[str, list[tuple[float, float]]], Path]:  # fmt: skip
    """Each channel group of a trained run pruned alone at ``ratios``, scored on ``val_subset`` test examples
    (0 = all); writes ``plots/sensitivity.png`` (and ``sensitivity.json``) into the run, or into ``out``."""
    trained = trained_model(source)
    values = Recipe.stored_values(trained.config["recipe"])
    values.update(val_subset=val_subset, **({"data_root": data_root} if data_root else {}))
    recipe = Recipe.from_values(values)
    task = get_task(recipe.task)
    data = task.build_data(recipe)
    metrics = _scorer(task, list(data.val))

    def score(model: nn.Module) -> float:
        return metrics(model)[task.primary_metric]

    taylor_loss = _taylor_loss(task, data, recipe) if importance == "taylor" else None
    example = torch.randn(1, *data.input_size)
    curves = layer_sensitivity(trained.model, example, score, ratios, importance, taylor_loss, progress)
    folder = Path(out) if out else trained.run_dir
    path = plot_sensitivity(curves, score(trained.model), task.primary_metric, folder / "plots" / "sensitivity.png",
                            title=f"{trained.config.get('model')}: each layer pruned alone ({importance})")  # fmt: skip
    write_json_atomic(folder / "sensitivity.json", {name: [[r, s] for r, s in pts] for name, pts in curves.items()})
    return curves, path
