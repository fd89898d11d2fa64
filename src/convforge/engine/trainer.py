"""The training loop: ``convforge.train`` and ``convforge.evaluate``.

The loop knows nothing of particular models or tasks: the task (see
:mod:`convforge.tasks`) builds the batches, computes the loss and scores the model.
Each epoch ends with an atomic checkpoint, so a run killed at any moment (SIGKILL
included) loses at most the epoch in progress and resumes exactly where it stopped.
"""

from __future__ import annotations

import copy
import math
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
from convforge.engine.device_choice import resolve_device
from convforge.engine.distributed import DistContext, broadcast_object, init_distributed, shutdown, sum_across_ranks
from convforge.engine.ema import build_ema
from convforge.engine.optim import build_optimizer, build_scheduler
from convforge.engine.recipe import TRAIN_LOSS_MIN_GAIN, Recipe
from convforge.errors import ConvforgeError
from convforge.model_origin import Origin, origin_of
from convforge.model_outputs import output_shapes
from convforge.models import ModelInfo, get_model_info, list_models, origin_info, rebuild
from convforge.profiler import profile
from convforge.progress_bars import hidden
from convforge.runs.checkpoint import Checkpoint, load_checkpoint, optimizer_state, save_checkpoint
from convforge.runs.loading import TrainedModel, build_model, load_trained, trained_model
from convforge.runs.onnx_model import is_onnx_path, load_onnx
from convforge.runs.recorded_model import recorded_origin
from convforge.runs.run_dir import RunDir
from convforge.runs.run_lock import RunLock
from convforge.runs.structure import Structure, structure_of
from convforge.runs.weights import load_weights
from convforge.spec import is_spec_path
from convforge.tables import format_metric
from convforge.tasks import DEFAULT_TASK, TASKS, get_task

# what a resume may change; the rest is the run's recipe
CHANGEABLE_ON_RESUME = ("epochs", "patience", "patience_on", "data_root", "device")
STRUCTURE_FILE = "structure.json"  # a pruned model's shapes and attributes (convforge.runs.structure)
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
    teacher: nn.Module | str | Path | TrainedModel | None = None,
    progress: bool = True,
    **overrides: Any,
) -> TrainResult:
    """Train ``model`` (a module or a registered name) on the dataset named ``data``.

    ``recipe`` is a :class:`Recipe` or a YAML file; keyword ``overrides`` replace its
    fields (``epochs=5, lr=0.1, opt="adamw"``). The run is written to
    ``<project>/<task>/<name>``. ``resume`` names an existing run directory, whose
    config and last checkpoint are used; it then continues to the recipe's last epoch.

    ``teacher`` (a run directory, a checkpoint or a module) distils into the student:
    the task's distillation loss, weighted by the recipe's ``kd_alpha``, joins its own
    loss (weighted 1 − ``kd_alpha``). A module that :mod:`convforge.compress` made (a
    pruned model) is recorded by its registered name and structure, so its run reloads.
    Returns the run directory, the per-epoch metrics and the trained model.
    """
    if resume is not None:
        return _resume(Path(resume), model if isinstance(model, nn.Module) else None, progress, overrides, teacher)
    if data is not None:
        overrides["data"] = data
    name = model if isinstance(model, str) else None
    origin = origin_of(model) if isinstance(model, nn.Module) else None
    if origin is not None and not _built_as_recorded(model, origin):
        origin = None  # a module as registered, or changed since: trained as a module
    if origin is not None:
        name, model_kwargs = origin.model, {**origin.model_kwargs, **(model_kwargs or {})}
    if name is not None and is_spec_path(name):
        name = str(Path(name).resolve())  # the run rebuilds its network from wherever it is used
    info = origin_info(origin) if origin is not None else get_model_info(name) if name is not None else None
    if isinstance(recipe, Recipe):
        recipe = recipe.with_overrides(**overrides)
    else:
        recipe = Recipe.from_sources(recipe, defaults=_model_defaults(info), **overrides)
    if info is not None and info.task != recipe.task and info.task not in getattr(get_task(recipe.task),
                                                                                  "trunk_tasks", ()):  # fmt: skip
        examples = ", ".join(list_models(task=recipe.task)[:3])
        raise ConvforgeError(f"{model} is a {info.task} model; the {recipe.task} task trains {recipe.task} models"
                             f"{f' such as {examples}' if examples else ''}")  # fmt: skip
    trainer = _Trainer(recipe, name, model if isinstance(model, nn.Module) else None, model_kwargs or {}, progress,
                       structure=origin.structure if origin else None, teacher=teacher,
                       spec=origin.spec if origin else None)  # fmt: skip
    return trainer.run()


def _model_defaults(info: ModelInfo | None) -> dict[str, Any]:
    """Recipe defaults a named model implies: its task, and what that task takes from the model."""
    if info is None:
        return {}
    if info.task not in TASKS:
        raise ConvforgeError(f"model {info.name!r} declares the task {info.task!r}, which convforge does not train; "
                             f"use one of {', '.join(TASKS)}")  # fmt: skip
    return {"task": info.task, **get_task(info.task).recipe_defaults(info)}


def _resume(path: Path, model: nn.Module | None, progress: bool, overrides: dict[str, Any],
            teacher: nn.Module | str | Path | TrainedModel | None) -> TrainResult:  # fmt: skip
    run = RunDir.open(path)
    config = run.read_config()
    given = {k: v for k, v in overrides.items() if v is not None}
    stored = Recipe.stored_values(config["recipe"])
    recipe = Recipe.from_values({**stored, **given})  # a field of another task, or a bad value, is named first
    changed = {k: v for k, v in given.items() if k not in CHANGEABLE_ON_RESUME and stored.get(k) != v}
    if changed:
        listed = ", ".join(f"{k} {stored.get(k)!r} → {v!r}" for k, v in changed.items())
        allowed = ", ".join(CHANGEABLE_ON_RESUME)
        raise ConvforgeError(f"{path} keeps the recipe it was started with; a resume may change only {allowed}, "
                             f"not {listed}: start a new run to change them")  # fmt: skip
    if config.get("model") is None and model is None:
        raise ConvforgeError(f"{path} was trained from a module, not a registered name: pass the model to resume it")
    recorded = recorded_origin(config, str(run.path / "config.yaml")) if model is None else None
    if teacher is None and config.get("teacher"):
        teacher = config["teacher"]
        if str(teacher).startswith("<"):
            raise ConvforgeError(f"{path} was distilled from a {teacher.strip('<>')} passed in Python; pass it again "
                                 "(teacher=...) to resume the run")  # fmt: skip
        if not Path(teacher).exists():
            raise ConvforgeError(f"{path} was distilled from the teacher {teacher}, which is gone; pass --teacher "
                                 "to resume it")  # fmt: skip
    structure = run.read_json(STRUCTURE_FILE) if config.get("structure") else None
    trainer = _Trainer(recipe, config.get("model"), model, config.get("model_kwargs") or {}, progress, run=run,
                       structure=structure, teacher=teacher, spec=_resumed_spec(recorded, model, config))  # fmt: skip
    return trainer.run()


def evaluate(
    model: nn.Module | str | Path,
    data: str | None = None,
    *,
    data_root: str | None = None,
    batch_size: int = 256,
    task: str | None = None,
    use_ema: bool = True,
    val_subset: int = 0,
    device: str | None = None,
    **settings: Any,
) -> dict[str, float]:
    """Score a model on the evaluation split of ``data`` (by default, the data its run validated on): the test split
    for the image tasks; the av-event, av-parse and sdr tasks score their validation split unless ``data`` is
    ``test`` (or another source).

    ``model`` is a module, a checkpoint file, a run directory (its best checkpoint,
    EMA weights when present) or an ONNX file convforge wrote (run by onnxruntime). A module
    is scored as a ``task`` model (default: classification), with that task's ``settings``
    (``scale=4`` for super-resolution). ``val_subset`` scores a seeded random subset of that
    many examples where the task draws subsets (classification). ``device`` (``cpu``, ``cuda``, ``auto``) moves
    the model there first; by default it is scored where it is (a loaded run: the CPU).
    Returns the task's metrics (classification: loss, top1, top5 in %) and the example count.
    """
    if not isinstance(model, nn.Module):
        loaded = load_onnx(model) if is_onnx_path(model) else load_trained(model, use_ema=use_ema)
        values = {**Recipe.stored_values(loaded.config["recipe"]), **settings}
        if task is not None and task != values["task"]:
            raise ConvforgeError(f"{loaded.checkpoint} is a {values['task']} model, not a {task} model")
        model = loaded.model
        data_root = data_root or values.get("data_root")
    elif data is None:
        raise ConvforgeError("name the dataset to evaluate on (data=...)")
    else:
        values = {"task": task or DEFAULT_TASK, **settings}
    recipe = eval_recipe(values, batch_size, data_root, val_subset)
    task_impl = get_task(recipe.task)
    batches = task_impl.build_eval_data(recipe, data)
    if device is not None and next(model.parameters(), None) is not None:
        model.to(resolve_device(device))
    first = next(model.parameters(), None)  # an ONNX model has none and runs on the CPU
    device = first.device if first is not None else torch.device("cpu")
    model.eval()
    sums = task_impl.evaluate(model, batches, device)
    return {**task_impl.summarise(sums), "count": int(sums["count"])}


def eval_recipe(values: dict[str, Any], batch_size: int, data_root: str | None, val_subset: int = 0) -> Recipe:
    """The recipe an evaluation reads data with: the run's, over the whole test split (or ``val_subset`` examples
    of it, drawn with the recipe's seed), whatever the run trained on."""
    return Recipe.from_values({**values, "batch_size": batch_size, "data_root": data_root, "val_subset": val_subset})


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
        structure: Structure | None = None,
        teacher: nn.Module | str | Path | TrainedModel | None = None,
        spec: dict[str, Any] | None = None,
    ) -> None:
        self.recipe = recipe
        self.spec = spec  # a spec file's network is rebuilt from the spec the run keeps
        self.structure = structure or None
        self.teacher_source = teacher
        self.model_name = model_name
        self.module = module
        self.model_kwargs = dict(model_kwargs)
        self.progress = progress
        self.run_dir = run
        self.lock: RunLock | None = None
        self.tensorboard: Any = None  # torch's SummaryWriter, made at the first epoch with --tensorboard
        self.resuming = run is not None

    # ------------------------------------------------------------ set-up

    def _setup(self) -> None:
        recipe = self.recipe
        device_type = resolve_device(recipe.device).type  # a GPU the machine lacks is refused here
        self.ctx = init_distributed(device_type)
        self.device = resolve_device(recipe.device, self.ctx.local_rank)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        seed_everything(recipe.seed)
        if recipe.tensorboard:
            _summary_writer()  # a missing package is named before any data is read
        self.task = get_task(recipe.task)

        self.channels_last = recipe.channels_last
        data = self.task.build_data(recipe, self.ctx.rank, self.ctx.world_size, channels_last=False)
        model = self.module
        if model is None:
            # the data decides classes and input channels unless the user said otherwise
            self.model_kwargs = {**data.model_kwargs, **self.model_kwargs}
            _check_classes(self.model_kwargs.get("num_classes"), data.model_kwargs.get("num_classes"), recipe.data)
            origin = Origin(self.model_name, self.model_kwargs, self.structure or {}, self.spec)
            model = build_model(origin, str(self.run_dir or "the run"))
            self.spec = origin_of(model).spec
        if self.channels_last is None:
            self.channels_last = self.device.type == "cpu" and _uses_convolutions(model)
        data.train.channels_last = data.val.channels_last = bool(self.channels_last)
        self.data = data
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = model
        self.teacher = self._build_teacher() if self.teacher_source is not None else None
        self.optimizer = build_optimizer(model, recipe)
        self.steps_per_epoch = len(data.train)
        if self.steps_per_epoch == 0:
            raise ConvforgeError(
                f"the batch size {recipe.batch_size} is larger than the training examples each process sees "
                f"({_example_count(data.train)}); lower --batch"
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
        if self.teacher is not None:
            self.train_model = _Recorder(self.train_model)  # the teacher reads the input the student saw

        self.rows: list[dict[str, Any]] = []
        self.start_epoch = 0
        if self.resuming and self.ctx.is_main:
            self.lock = RunLock(self.run_dir.path).acquire()  # before reading anything a second process might write
        if self.resuming and not self.run_dir.checkpoint("last").exists():
            if self.ctx.is_main:
                print(f"{self.run_dir.path} has no finished epoch yet; starting it from the beginning")
            self.resuming = False
        if self.resuming:
            self._load_state()
            if self.ctx.is_main:
                # the recipe as resumed (more epochs, say); what else the run recorded (pruned_from) is kept
                self.run_dir.write_config({**self.run_dir.read_config(), **self._config()})
        else:
            if self.run_dir is None:
                name = recipe.name or _run_name(self.model_name or type(model).__name__)
                path = str(RunDir.create(recipe.project, self.task.name, name).path) if self.ctx.is_main else None
                self.run_dir = RunDir(broadcast_object(path, self.ctx))
            if self.ctx.is_main and self.lock is None:
                self.lock = RunLock(self.run_dir.path).acquire()
            if self.ctx.is_main:
                if self.structure:
                    self.run_dir.write_json(STRUCTURE_FILE, self.structure)
                self.run_dir.write_config(self._config())
                with torch.random.fork_rng(devices=[]):  # profiling draws a random input: keep ranks in step
                    self._write_profile()

    def _config(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "model_kwargs": self.model_kwargs,
            **({"spec": self.spec} if self.spec is not None else {}),
            "recipe": self.recipe.to_dict(),
            "data": {k: list(v) if isinstance(v, tuple) else v for k, v in self.data.info.items() if k != "classes"},
            "classes": self.data.info.get("classes"),
            "input_size": list(self.data.input_size),
            "world_size": self.ctx.world_size,
            "channels_last": self.channels_last,
            "torch": str(torch.__version__),
            **({"structure": STRUCTURE_FILE} if self.structure else {}),
            **({"teacher": self.teacher_name} if self.teacher is not None else {}),
        }

    def _build_teacher(self) -> nn.Module:
        """The teacher on the student's device, in eval mode and frozen; its outputs must match the student's."""
        source = self.teacher_source
        if not hasattr(self.task, "distillation_loss"):
            raise ConvforgeError(f"the {self.task.name} task has no distillation loss; train without a teacher")
        if isinstance(source, nn.Module):  # a copy: the caller's module keeps its device, mode and gradients
            teacher, self.teacher_name = copy.deepcopy(source), f"<{type(source).__name__} module>"
        else:
            loaded = trained_model(source, task=self.task.name)
            teacher, self.teacher_name = loaded.model, str(loaded.run_dir.resolve())
        teacher = teacher.to(self.device).eval().requires_grad_(False)
        if self.channels_last:
            teacher.to(memory_format=torch.channels_last)
        example = torch.zeros(2, *self.data.input_size, device=self.device)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                student_shape = output_shapes(self.model(example))
                try:
                    teacher_shape = output_shapes(teacher(example))
                except RuntimeError as err:
                    raise ConvforgeError(f"the teacher {self.teacher_name} cannot read the student's input "
                                         f"{tuple(example.shape)}: {str(err).splitlines()[0]}") from err  # fmt: skip
        finally:
            self.model.train(was_training)
        if teacher_shape != student_shape:
            raise ConvforgeError(f"the teacher {self.teacher_name} gives outputs of shape {teacher_shape}, the student "
                                 f"{student_shape}; distillation needs the same shape")  # fmt: skip
        return teacher

    def _write_profile(self) -> None:
        result = profile(_unwrap(self.model), self.data.input_size, name=self.model_name or type(self.model).__name__)
        self.run_dir.write_json("profile.json", result.to_dict())
        self.profile = result

    def _load_state(self) -> None:
        ckpt = load_checkpoint(self.run_dir.checkpoint("last"))
        made_for = f"{ckpt.meta.get('model')} {ckpt.meta.get('model_kwargs') or {}}"
        load_weights(self.model, ckpt.tensors["model"], str(self.run_dir.checkpoint("last")), made_for)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if "optimizer" in ckpt.meta:  # a pruned model's checkpoint has weights only: fine-tuning starts afresh
            self._load_optimizer(ckpt, made_for)
        if self.ema is not None and ckpt.tensors["ema"]:
            self.ema.module.load_state_dict(ckpt.tensors["ema"])
            self.ema_updates = int(ckpt.meta.get("ema_updates", 0))
        elif self.ema is not None:  # a checkpoint without EMA weights (a pruned model's): the average starts here
            self.ema.module.load_state_dict(ckpt.tensors["model"])
        torch.set_rng_state(ckpt.tensors["rng"]["torch"])
        if self.device.type == "cuda" and "cuda" in ckpt.tensors["rng"]:
            torch.cuda.set_rng_state(ckpt.tensors["rng"]["cuda"], self.device)
        self.start_epoch = ckpt.epoch
        self.rows = list(ckpt.meta.get("rows") or self.run_dir.read_metrics()[: self.start_epoch])
        if self.start_epoch >= self.recipe.epochs and self.ctx.is_main:
            epochs = self.recipe.epochs
            print(f"{self.run_dir.path} already finished its {epochs} epoch{'s' if epochs != 1 else ''}")

    # ------------------------------------------------------------ the loop

    def run(self) -> TrainResult:
        failed = True
        try:
            self._setup()
            for epoch in range(self.start_epoch, self.recipe.epochs):
                if self._out_of_patience():
                    break
                self._epoch(epoch)
            failed = False
        finally:
            if self.tensorboard is not None:
                self.tensorboard.close()
            if self.lock is not None:
                self.lock.release()
            shutdown(getattr(self, "ctx", DistContext()), failed)
        return TrainResult(self.run_dir.path, self.rows, _unwrap(self.model), tuple(self.data.input_size),
                           self.ctx.rank, self.task.primary_metric)  # fmt: skip

    def _out_of_patience(self) -> bool:
        """Whether ``patience`` epochs have passed without a better watched score (said once, on rank 0): the
        validation score, or with ``patience_on="train_loss"`` a training loss at least 1 % below the best."""
        patience = self.recipe.patience
        if not patience or not self.rows:
            return False
        if self.recipe.patience_on == "train_loss":
            watched, best_epoch, lowest = "train loss", self.rows[0]["epoch"], math.inf
            for row in self.rows:
                if row["train_loss"] < lowest * (1 - TRAIN_LOSS_MIN_GAIN):
                    best_epoch, lowest = row["epoch"], row["train_loss"]
        else:
            primary = f"val_{self.task.primary_metric}"
            watched, best_epoch = primary[4:], max(self.rows, key=lambda row: row[primary])["epoch"]
        waited = self.rows[-1]["epoch"] - best_epoch
        if waited < patience:
            return False
        if self.ctx.is_main:
            last, plural = self.rows[-1]["epoch"], "s" if waited != 1 else ""
            print(f"no better {watched} for {waited} epoch{plural} (patience {patience}): stopping early after "
                  f"epoch {last}; the best was epoch {best_epoch}")  # fmt: skip
        return True

    def _epoch(self, epoch: int) -> None:
        recipe, loader = self.recipe, self.data.train
        loader.set_epoch(epoch)
        self.train_model.train()
        start = time.perf_counter()
        # the losses stay on the device: the host reads them once every FINITE_CHECK_STEPS steps, not twice a step
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        unchecked: list[torch.Tensor] = []
        seen = 0
        teacher_time = 0.0
        bar = tqdm(
            loader,
            total=self.steps_per_epoch,
            desc=f"epoch {epoch + 1}/{recipe.epochs}",
            unit="batch",
            leave=False,
            disable=hidden(self.progress and self.ctx.is_main),
        )
        for step, batch in enumerate(bar):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bool(self.amp)):
                loss, count = self.task.training_loss(self.train_model, batch, recipe, self.device)
                if self.teacher is not None:
                    loss, spent = self._distil(loss)
                    teacher_time += spent
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
            **({"teacher_time_s": teacher_time} if self.teacher is not None else {}),
        }
        self.rows.append(row)
        if self.ctx.is_main:
            self._save(epoch + 1, row)
            print(_epoch_line(row, recipe.epochs), flush=True)

    def _distil(self, loss: torch.Tensor) -> tuple[torch.Tensor, float]:
        """The task's loss mixed with its distillation loss against the teacher, and the teacher's time in s."""
        inputs, student_out = self.train_model.seen
        if self.recipe.kd_alpha == 0:
            return loss, 0.0
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # the student's queued work is not the teacher's time
        start = time.perf_counter()
        with torch.no_grad():
            teacher_out = self.teacher(inputs)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        spent = time.perf_counter() - start
        alpha = self.recipe.kd_alpha
        kd = self.task.distillation_loss(student_out, teacher_out, self.recipe)
        return (1 - alpha) * loss + alpha * kd, spent

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

    def _load_optimizer(self, ckpt: Checkpoint, made_for: str) -> None:
        """The optimiser and scheduler state of ``ckpt``, or one sentence when they do not fit this run's."""
        file = self.run_dir.checkpoint("last")
        saved = ckpt.meta["optimizer"]
        groups = saved.get("param_groups") if isinstance(saved, dict) else None
        ours = self.optimizer.state_dict()["param_groups"]
        fits = (isinstance(groups, list) and len(groups) == len(ours)
                and all(isinstance(g, dict) and set(g) <= set(o) and len(g.get("params", ())) == len(o["params"])
                        for g, o in zip(groups, ours)))  # fmt: skip
        if not fits:  # another optimiser's settings (a newer torch only adds names, which torch fills in)
            raise ConvforgeError(f"the optimiser state in {file} does not fit the {type(self.optimizer).__name__} "
                                 f"optimiser of {self.run_dir.path / 'config.yaml'} (it was made for {made_for} "
                                 f"with other settings); restore the run's config.yaml or start a new run")  # fmt: skip
        try:
            self.optimizer.load_state_dict(optimizer_state(ckpt.tensors["optim"], saved))
            self.scheduler.load_state_dict(ckpt.meta["scheduler"])
        except (ValueError, KeyError, TypeError, RuntimeError) as err:
            raise ConvforgeError(f"the optimiser state in {file} does not fit this run's optimiser "
                                 f"({' '.join(str(err).split())}); it was made for {made_for}; restore the run's "
                                 "config.yaml or start a new run") from err  # fmt: skip

    def _log_tensorboard(self, row: dict[str, Any]) -> None:
        """The epoch's figures as TensorBoard scalars (``train/loss``, ``val/top1``, ``lr``, ...)."""
        if self.tensorboard is None:
            self.tensorboard = _summary_writer()(str(self.run_dir.path / "tensorboard"))
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                tag = key.replace("train_", "train/", 1).replace("val_", "val/", 1)
                self.tensorboard.add_scalar(tag, value, row["epoch"])
        self.tensorboard.flush()

    def _save(self, epoch: int, row: dict[str, Any]) -> None:
        primary = f"val_{self.task.primary_metric}"
        best = max(self.rows, key=lambda r: r[primary])
        meta = {
            "epoch": epoch,
            "metrics": row,
            "rows": self.rows,
            "ema_updates": self.ema_updates,
            "best": {"epoch": best["epoch"], primary: best[primary]},
            **({"structure": self.structure} if self.structure else {}),
            "scheduler": self.scheduler.state_dict(),
            "model": self.model_name,
            "model_kwargs": self.model_kwargs,
            **({"spec": self.spec} if self.spec is not None else {}),
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
        if self.recipe.tensorboard:
            self._log_tensorboard(row)
        plot_curves(
            self.rows,
            self.run_dir.plots / "curves.png",
            title=f"{self.model_name or ''} on {self.recipe.data}",
            primary=primary,
        )


def _example_count(loader: Any) -> str:
    """How many examples ``loader`` holds, before whole batches are counted."""
    for name in ("dataset", "images", "data"):
        held = getattr(loader, name, None)
        if held is not None and hasattr(held, "__len__"):
            return f"{len(held):,}"
    return "fewer than one batch"


def _summary_writer() -> Any:
    """torch's TensorBoard ``SummaryWriter``; without the tensorboard package, the error names it."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("tensorboard is not installed", name="tensorboard") from err
    return SummaryWriter


def _resumed_spec(recorded: Origin | None, model: nn.Module | None, config: dict[str, Any]) -> dict[str, Any] | None:
    """The spec a resumed run keeps recording: the checked record's, else the given module's, else the run's."""
    if recorded is not None:
        return recorded.spec
    origin = origin_of(model) if model is not None else None
    spec = origin.spec if origin is not None else config.get("spec")
    return spec if isinstance(spec, dict) else None


def _check_classes(given: Any, needed: Any, data: str | None) -> None:
    """A classifier or detector needs an output for every class its data's labels name."""
    if needed is None or given is None:
        return
    if isinstance(given, bool) or not isinstance(given, int) or given < needed:
        raise ConvforgeError(f"num_classes={given!r} is too few for {data}, whose labels name {needed} classes: leave "
                             f"num_classes out (the data sets it) or use at least {needed}")  # fmt: skip


def _built_as_recorded(model: nn.Module, origin: Origin) -> bool:
    """Whether ``origin`` (a registered name, settings and a pruned structure) builds ``model`` as it is now."""
    if not origin.structure:
        return False  # as registered: the user may have changed it since, so it trains as a module
    try:
        fresh = rebuild(origin)
        return structure_of(model, fresh) == origin.structure
    except ConvforgeError:
        return False


class _Recorder(nn.Module):
    """Calls the model and keeps the last input and output, for the teacher to read."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.seen: tuple[torch.Tensor, Any] | None = None

    def forward(self, x: torch.Tensor) -> Any:
        out = self.model(x)
        self.seen = (x, out)
        return out


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
        + (f" (teacher {row['teacher_time_s']:.1f} s)" if "teacher_time_s" in row else "")
    )
