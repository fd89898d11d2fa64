"""The training loop: ``convforge.train`` and ``convforge.evaluate``.

The loop knows nothing of particular models or tasks: the task (see
:mod:`convforge.tasks`) builds the batches, computes the loss and scores the model.
Each epoch ends with an atomic checkpoint, so a run killed at any moment (SIGKILL
included) loses at most the epoch in progress and resumes exactly where it stopped.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from convforge.atomic import write_atomic
from convforge.engine.curves import plot_curves
from convforge.engine.distributed import DistContext, broadcast_object, init_distributed, shutdown, sum_across_ranks
from convforge.engine.ema import build_ema
from convforge.engine.optim import build_optimizer, build_scheduler
from convforge.engine.recipe import Recipe
from convforge.errors import ConvforgeError
from convforge.models import ModelInfo, create_model, get_model_info, list_models
from convforge.profiler import profile
from convforge.runs.checkpoint import load_checkpoint, optimizer_state, save_checkpoint
from convforge.runs.loading import load_trained
from convforge.runs.run_dir import RunDir
from convforge.spec import is_spec_path
from convforge.tables import format_metric
from convforge.tasks import DEFAULT_TASK, TASKS, get_task

FINITE_CHECK_STEPS = 10  # a NaN or infinite loss stops the run at most this many steps after it appears


class NonFiniteLossError(ConvforgeError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    """What a finished run produced."""

    run_dir: Path
    metrics: list[dict[str, Any]]
    model: nn.Module = field(repr=False)
    input_size: tuple[int, ...] = ()
    rank: int = 0  # this process's rank in a distributed run; only rank 0 writes and reports
    primary_metric: str = "top1"  # the task's score that picks the best epoch (higher is better)

    @property
    def last(self) -> dict[str, Any]:
        return self.metrics[-1]

    def best(self, key: str | None = None) -> dict[str, Any]:
        """The epoch's row with the highest ``key`` (default: ``val_<primary metric>``)."""
        key = key or f"val_{self.primary_metric}"
        return max(self.metrics, key=lambda r: r[key])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _device(recipe: Recipe, ctx: DistContext | None = None) -> torch.device:
    if recipe.device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", ctx.local_rank if ctx else 0)
        return torch.device("cpu")
    return torch.device(recipe.device)


def _uses_convolutions(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def _unwrap(model: nn.Module) -> nn.Module:
    model = getattr(model, "_orig_mod", model)  # torch.compile
    return getattr(model, "module", model)  # DistributedDataParallel


def train(
    model: nn.Module | str,
    data: str | None = None,
    *,
    recipe: Recipe | str | Path | None = None,
    resume: str | Path | None = None,
    model_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
    **overrides: Any,
) -> TrainResult:
    """Train ``model`` (a module or a registered name) on the dataset named ``data``.

    ``recipe`` is a :class:`Recipe` or a YAML file; keyword ``overrides`` replace its
    fields (``epochs=5, lr=0.1, opt="adamw"``). The run is written to
    ``<project>/<task>/<name>``. ``resume`` names an existing run directory, whose
    config and last checkpoint are used; it then continues to the recipe's last epoch.
    Returns the run directory, the per-epoch metrics and the trained model.
    """
    if resume is not None:
        return _resume(Path(resume), model if isinstance(model, nn.Module) else None, progress, overrides)
    if data is not None:
        overrides["data"] = data
    name = model if isinstance(model, str) else None
    if name is not None and is_spec_path(name):
        name = str(Path(name).resolve())  # the run rebuilds its network from wherever it is used
    info = get_model_info(name) if name is not None else None
    if isinstance(recipe, Recipe):
        recipe = recipe.with_overrides(**overrides)
    else:
        recipe = Recipe.from_sources(recipe, defaults=_model_defaults(info), **overrides)
    if info is not None and info.task != recipe.task:
        examples = ", ".join(list_models(task=recipe.task)[:3])
        raise ConvforgeError(f"{model} is a {info.task} model; the {recipe.task} task trains {recipe.task} models"
                             f"{f' such as {examples}' if examples else ''}")  # fmt: skip
    trainer = _Trainer(recipe, name, model if isinstance(model, nn.Module) else None, model_kwargs or {}, progress)
    return trainer.run()


def _model_defaults(info: ModelInfo | None) -> dict[str, Any]:
    """Recipe defaults a named model implies: its task, and what that task takes from the model."""
    if info is None:
        return {}
    if info.task not in TASKS:
        raise ConvforgeError(f"model {info.name!r} declares the task {info.task!r}, which convforge does not train; "
                             f"use one of {', '.join(TASKS)}")  # fmt: skip
    return {"task": info.task, **get_task(info.task).recipe_defaults(info)}


def _resume(path: Path, model: nn.Module | None, progress: bool, overrides: dict[str, Any]) -> TrainResult:
    run = RunDir.open(path)
    config = run.read_config()
    given = {k: v for k, v in overrides.items() if v is not None}
    recipe = Recipe.from_values({**Recipe.stored_values(config["recipe"]), **given})
    if config.get("model") is None and model is None:
        raise ConvforgeError(f"{path} was trained from a module, not a registered name: pass the model to resume it")
    trainer = _Trainer(recipe, config.get("model"), model, config.get("model_kwargs") or {}, progress, run=run)
    return trainer.run()


def evaluate(
    model: nn.Module | str | Path,
    data: str | None = None,
    *,
    data_root: str | None = None,
    batch_size: int = 256,
    task: str | None = None,
    use_ema: bool = True,
    **settings: Any,
) -> dict[str, float]:
    """Score a model on the test split of ``data`` (by default, the data its run validated on).

    ``model`` is a module, a checkpoint file or a run directory (its best checkpoint,
    EMA weights when present). A module is scored as a ``task`` model (default:
    classification), with that task's ``settings`` (``scale=4`` for super-resolution).
    Returns the task's metrics (classification: loss, top1, top5 in %) and the example count.
    """
    if not isinstance(model, nn.Module):
        loaded = load_trained(model, use_ema=use_ema)
        values = {**Recipe.stored_values(loaded.config["recipe"]), **settings}
        if task is not None and task != values["task"]:
            raise ConvforgeError(f"{loaded.checkpoint} is a {values['task']} model, not a {task} model")
        model = loaded.model
        data_root = data_root or values.get("data_root")
    elif data is None:
        raise ConvforgeError("name the dataset to evaluate on (data=...)")
    else:
        values = {"task": task or DEFAULT_TASK, **settings}
    # the whole test split, whatever subset the run validated on
    recipe = Recipe.from_values({**values, "batch_size": batch_size, "data_root": data_root, "val_subset": 0})
    task_impl = get_task(recipe.task)
    batches = task_impl.build_eval_data(recipe, data)
    device = next(model.parameters()).device
    model.eval()
    sums = task_impl.evaluate(model, batches, device)
    return {**task_impl.summarise(sums), "count": int(sums["count"])}


class _Trainer:
    """One run, from the first epoch (or the resumed one) to the last."""

    def __init__(
        self,
        recipe: Recipe,
        model_name: str | None,
        module: nn.Module | None,
        model_kwargs: dict[str, Any],
        progress: bool,
        run: RunDir | None = None,
    ) -> None:
        self.recipe = recipe
        self.model_name = model_name
        self.module = module
        self.model_kwargs = dict(model_kwargs)
        self.progress = progress
        self.run_dir = run
        self.resuming = run is not None

    # ------------------------------------------------------------ set-up

    def _setup(self) -> None:
        recipe = self.recipe
        device_type = (
            "cuda"
            if recipe.device.startswith("cuda") or (recipe.device == "auto" and torch.cuda.is_available())
            else "cpu"
        )
        self.ctx = init_distributed(device_type)
        self.device = _device(recipe, self.ctx)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        seed_everything(recipe.seed)
        self.task = get_task(recipe.task)

        self.channels_last = recipe.channels_last
        data = self.task.build_data(recipe, self.ctx.rank, self.ctx.world_size, channels_last=False)
        model = self.module
        if model is None:
            # the data decides classes and input channels unless the user said otherwise
            self.model_kwargs = {**data.model_kwargs, **self.model_kwargs}
            model = create_model(self.model_name, **self.model_kwargs)
        if self.channels_last is None:
            self.channels_last = self.device.type == "cpu" and _uses_convolutions(model)
        data.train.channels_last = data.val.channels_last = bool(self.channels_last)
        self.data = data
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = model
        self.optimizer = build_optimizer(model, recipe)
        self.steps_per_epoch = len(data.train)
        if self.steps_per_epoch == 0:
            raise ConvforgeError(
                f"the batch size {recipe.batch_size} is larger than the {data.train.num_examples} training examples "
                f"each process sees; lower --batch"
            )
        self.scheduler = build_scheduler(self.optimizer, recipe, self.steps_per_epoch)
        self.ema = build_ema(model, recipe.ema_decay) if recipe.ema_decay else None
        self.ema_updates = 0
        self.amp = recipe.amp if recipe.amp is not None else self.device.type == "cuda"
        self.train_model: nn.Module = model
        if self.ctx.enabled:
            self.train_model = nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        if recipe.compile:
            self.train_model = torch.compile(self.train_model)

        self.rows: list[dict[str, Any]] = []
        self.start_epoch = 0
        if self.resuming and not self.run_dir.checkpoint("last").exists():
            if self.ctx.is_main:
                print(f"{self.run_dir.path} has no finished epoch yet; starting it from the beginning")
            self.resuming = False
        if self.resuming:
            self._load_state()
            if self.ctx.is_main:
                self.run_dir.write_config(self._config())  # the recipe as resumed: more epochs, say
        else:
            if self.run_dir is None:
                name = recipe.name or _run_name(self.model_name or type(model).__name__)
                path = str(RunDir.create(recipe.project, self.task.name, name).path) if self.ctx.is_main else None
                self.run_dir = RunDir(broadcast_object(path, self.ctx))
            if self.ctx.is_main:
                self.run_dir.write_config(self._config())
                with torch.random.fork_rng(devices=[]):  # profiling draws a random input: keep ranks in step
                    self._write_profile()

    def _config(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "model_kwargs": self.model_kwargs,
            "recipe": self.recipe.to_dict(),
            "data": {k: list(v) if isinstance(v, tuple) else v for k, v in self.data.info.items() if k != "classes"},
            "classes": self.data.info.get("classes"),
            "input_size": list(self.data.input_size),
            "world_size": self.ctx.world_size,
            "channels_last": self.channels_last,
            "torch": str(torch.__version__),
        }

    def _write_profile(self) -> None:
        result = profile(_unwrap(self.model), self.data.input_size, name=self.model_name or type(self.model).__name__)
        self.run_dir.write_json("profile.json", result.to_dict())
        self.profile = result

    def _load_state(self) -> None:
        ckpt = load_checkpoint(self.run_dir.checkpoint("last"))
        self.model.load_state_dict(ckpt.tensors["model"])
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer.load_state_dict(optimizer_state(ckpt.tensors["optim"], ckpt.meta["optimizer"]))
        self.scheduler.load_state_dict(ckpt.meta["scheduler"])
        if self.ema is not None and ckpt.tensors["ema"]:
            self.ema.module.load_state_dict(ckpt.tensors["ema"])
            self.ema_updates = int(ckpt.meta.get("ema_updates", 0))
        torch.set_rng_state(ckpt.tensors["rng"]["torch"])
        if self.device.type == "cuda" and "cuda" in ckpt.tensors["rng"]:
            torch.cuda.set_rng_state(ckpt.tensors["rng"]["cuda"], self.device)
        self.start_epoch = ckpt.epoch
        self.rows = list(ckpt.meta.get("rows") or self.run_dir.read_metrics()[: self.start_epoch])
        if self.start_epoch >= self.recipe.epochs and self.ctx.is_main:
            print(f"{self.run_dir.path} already finished its {self.recipe.epochs} epochs")

    # ------------------------------------------------------------ the loop

    def run(self) -> TrainResult:
        failed = True
        try:
            self._setup()
            for epoch in range(self.start_epoch, self.recipe.epochs):
                self._epoch(epoch)
            failed = False
        finally:
            shutdown(getattr(self, "ctx", DistContext()), failed)
        return TrainResult(self.run_dir.path, self.rows, _unwrap(self.model), tuple(self.data.input_size),
                           self.ctx.rank, self.task.primary_metric)  # fmt: skip

    def _epoch(self, epoch: int) -> None:
        recipe, loader = self.recipe, self.data.train
        loader.set_epoch(epoch)
        self.train_model.train()
        start = time.perf_counter()
        # the losses stay on the device: the host reads them once every FINITE_CHECK_STEPS steps, not twice a step
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        unchecked: list[torch.Tensor] = []
        seen = 0
        bar = tqdm(
            loader,
            total=self.steps_per_epoch,
            desc=f"epoch {epoch + 1}/{recipe.epochs}",
            unit="batch",
            leave=False,
            disable=not (self.progress and self.ctx.is_main),
        )
        for step, batch in enumerate(bar):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bool(self.amp)):
                loss, count = self.task.training_loss(self.train_model, batch, recipe, self.device)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), recipe.grad_clip)
            self.optimizer.step()
            lr = self.optimizer.param_groups[0]["lr"]  # the rate this step used
            self.scheduler.step()
            if self.ema is not None:
                self.ema_updates += 1
                self.ema.update(_unwrap(self.model), step=self.ema_updates)
            unchecked.append(loss.detach())
            loss_sum += loss.detach().double() * count
            seen += count
            if len(unchecked) == FINITE_CHECK_STEPS or step + 1 == self.steps_per_epoch:
                self._check_finite(unchecked, epoch, step + 1 - len(unchecked))
                unchecked.clear()
                rate = seen * self.ctx.world_size / max(time.perf_counter() - start, 1e-9)
                bar.set_postfix(loss=f"{loss_sum.item() / seen:.4f}", img_s=f"{rate:.0f}")
        train_time = time.perf_counter() - start
        train_sums = sum_across_ranks({"loss_sum": loss_sum.item(), "count": seen}, self.ctx, self.device)
        metrics = self._validate()
        row = {
            "epoch": epoch + 1,
            "train_loss": train_sums["loss_sum"] / max(train_sums["count"], 1),
            **{f"val_{k}": v for k, v in metrics.items()},
            "lr": lr,
            "images_per_s": train_sums["count"] / train_time,
            "epoch_time_s": time.perf_counter() - start,
        }
        self.rows.append(row)
        if self.ctx.is_main:
            self._save(epoch + 1, row)
            print(_epoch_line(row, recipe.epochs), flush=True)

    def _check_finite(self, losses: list[torch.Tensor], epoch: int, first_step: int) -> None:
        """Stop the run, keeping the last checkpoint, when one of ``losses`` (steps ``first_step`` + 1, ...) is
        NaN or infinite on any rank (so that all ranks stop together)."""
        values = torch.stack(losses).float()
        finite = torch.isfinite(values)
        flag = finite.all().to(torch.float32).reshape(1)
        if self.ctx.enabled:
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
        if bool(flag.item()):
            return
        bad = int((~finite).nonzero()[0, 0]) if not finite.all() else 0
        last = self.run_dir.checkpoint("last")
        kept = f"the last good checkpoint is {last} (epoch {epoch})" if last.exists() else "no epoch finished"
        raise NonFiniteLossError(
            f"the training loss became {values[bad].item()} at epoch {epoch + 1}, step {first_step + bad + 1}; "
            f"training stopped and {kept}. Lower the learning rate (now {self.recipe.learning_rate}) or set grad_clip"
        )

    def _validate(self) -> dict[str, float]:
        model = self.ema.module if self.ema is not None else self.model
        model.eval()
        sums = self.task.evaluate(model, self.data.val, self.device)
        return self.task.summarise(sum_across_ranks(sums, self.ctx, self.device))

    def _save(self, epoch: int, row: dict[str, Any]) -> None:
        primary = f"val_{self.task.primary_metric}"
        best = max(self.rows, key=lambda r: r[primary])
        meta = {
            "epoch": epoch,
            "metrics": row,
            "rows": self.rows,
            "ema_updates": self.ema_updates,
            "best": {"epoch": best["epoch"], primary: best[primary]},
            "scheduler": self.scheduler.state_dict(),
            "model": self.model_name,
            "model_kwargs": self.model_kwargs,
            "recipe": self.recipe.to_dict(),
            "classes": self.data.info.get("classes"),
            "input_size": list(self.data.input_size),
            "mean": self.data.info.get("mean"),
            "std": self.data.info.get("std"),
        }
        ema_state = self.ema.module.state_dict() if self.ema is not None else None
        state = _unwrap(self.model).state_dict()
        last = save_checkpoint(self.run_dir.checkpoints / "last", state, meta, self.optimizer, ema_state)
        if best["epoch"] == epoch:
            for suffix in (".safetensors", ".json"):
                target = self.run_dir.checkpoint("best").with_suffix(suffix)
                _copy_atomic(last.with_suffix(suffix), target)
        self.run_dir.write_metrics(self.rows)
        plot_curves(
            self.rows,
            self.run_dir.plots / "curves.png",
            title=f"{self.model_name or ''} on {self.recipe.data}",
            primary=primary,
        )


def _run_name(model_name: str) -> str:
    """A run's default name: a spec file's stem, or the model name with ``:`` and ``/`` made plain."""
    if is_spec_path(model_name):
        return Path(model_name).stem
    return model_name.replace(":", "_").replace("/", "_")


def _copy_atomic(source: Path, target: Path) -> None:
    write_atomic(target, lambda tmp: tmp.write_bytes(source.read_bytes()))


def _epoch_line(row: dict[str, Any], epochs: int) -> str:
    metrics = "  ".join(f"{k[4:]} {format_metric(k[4:], v)}" for k, v in row.items()
                        if k.startswith("val_") and k != "val_loss")  # fmt: skip
    return (
        f"epoch {row['epoch']:>3}/{epochs}  train loss {row['train_loss']:.4f}  val loss {row['val_loss']:.4f}  "
        f"{metrics}  lr {row['lr']:.3g}  {row['images_per_s']:.0f} img/s  {row['epoch_time_s']:.1f} s"
    )
