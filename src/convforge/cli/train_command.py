"""``convforge train MODEL --data NAME``: train a model and write a run directory."""

from __future__ import annotations

import argparse

from convforge.cli.arguments import existing_folder, parse_overrides
from convforge.errors import ConvforgeError
from convforge.tables import format_metric

# command-line option -> recipe field
RECIPE_OPTIONS = {
    "data": "data", "data_root": "data_root", "epochs": "epochs", "batch": "batch_size", "lr": "lr", "opt": "opt",
    "sched": "sched", "warmup": "warmup_epochs", "wd": "weight_decay", "label_smoothing": "label_smoothing",
    "ema": "ema_decay", "grad_clip": "grad_clip", "seed": "seed", "name": "name", "project": "project",
    "train_subset": "train_subset", "val_subset": "val_subset", "crop_padding": "crop_padding", "cutout": "cutout",
    "flip": "flip", "image_size": "image_size", "workers": "workers", "channels_last": "channels_last",
    "compile": "compile", "device": "device", "task": "task", "scale": "scale", "patch_size": "patch_size",
    "val_data": "val_data", "patience": "patience", "patience_on": "patience_on", "tensorboard": "tensorboard",
    "supervision": "supervision",
    "visual_label_smoothing": "visual_label_smoothing", "dim": "dim", "mu": "mu", "metric": "metric",
    "objective": "objective", "passes": "passes",
}  # fmt: skip


NAME = "train"
HELP = "train a model on a dataset"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Train a registered model (or timm:<name>) and write runs/<task>/<name>: config.yaml, "
        "metrics.csv, checkpoints/, plots/curves.png and profile.json.",
    )
    parser.add_argument("model", nargs="?", help="model name; omit with --resume")
    parser.add_argument("--resume", metavar="RUN", help="continue the run in this directory from its last checkpoint")
    add_recipe_options(parser)
    parser.add_argument("--teacher", metavar="RUN", help="distil from this trained run (or checkpoint)")
    parser.add_argument("--kd-alpha", type=float, help="weight of the distillation loss (default 0.5)")
    parser.add_argument("--kd-temperature", type=float, help="temperature of Hinton's loss (default 4)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="model override, e.g. --set width=0.5")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def add_recipe_options(parser: argparse.ArgumentParser) -> None:
    """The recipe options shared by ``train`` and ``compare``."""
    from convforge.engine.recipe import OPTIMIZERS, SCHEDULES
    from convforge.task_names import TASK_NAMES

    parser.add_argument(
        "--data",
        help="dataset: mnist, fashion-mnist, cifar10, cifar100, svhn, digits, or an ImageFolder directory; "
        "sr: t91, set5, set14 or a folder of images; detect: a dataset YAML (e.g. coco128.yaml); av-event: an AVE "
        "folder; av-parse: an LLP folder; sdr: sim:<design>, rotated:<dataset> or a .npz of x and y",
    )
    parser.add_argument(
        "--data-root", type=existing_folder, help="folder holding the dataset (else $CONVFORGE_DATA, system locations)"
    )
    parser.add_argument(
        "--task",
        choices=list(TASK_NAMES),
        help="classify, sr (super-resolution of luma), detect, av-event (AVE event localisation), av-parse "
        "(LLP video parsing) or sdr (sufficient dimension reduction) (default: the model's)",
    )
    parser.add_argument("--dim", type=int, help="sdr: the reduced dimension d (default 2)")
    parser.add_argument("--mu", type=float, help="sdr: weight of the whitening penalty (default 1)")
    parser.add_argument("--metric", help="sdr: response metric: auto (the data's), euclidean, wasserstein, "
                        "wasserstein_gaussian, log_euclidean, affine_invariant, geodesic")  # fmt: skip
    parser.add_argument("--objective", choices=("fccov", "dcov"),
                        help="sdr: FCCov-Net's objective (default) or the distance-covariance baseline")  # fmt: skip
    parser.add_argument("--passes", type=int, help="sdr: passes over the training sample per epoch (default 10)")
    parser.add_argument("--supervision", choices=("full", "weak"),
                        help="av-event: segment labels (full, default) or video labels only (weak)")  # fmt: skip
    parser.add_argument("--visual-label-smoothing", type=float,
                        help="av-parse: label smoothing of the visual branch's targets (default 0.1)")  # fmt: skip
    parser.add_argument("--scale", type=int, help="sr: upscaling factor (default 2)")
    parser.add_argument("--patch-size", type=int, help="sr: LR training patch side in pixels (default 32)")
    parser.add_argument("--val-data", help="sr: images to validate on (default set5)")
    parser.add_argument("--recipe", help="YAML file of recipe fields; options given here override it")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch", type=int, help="batch size per process")
    parser.add_argument("--lr", type=float, help="peak learning rate (default depends on --opt)")
    parser.add_argument("--opt", choices=OPTIMIZERS)
    parser.add_argument("--sched", choices=SCHEDULES)
    parser.add_argument("--warmup", type=float, help="warm-up epochs")
    parser.add_argument("--wd", type=float, help="weight decay")
    parser.add_argument("--label-smoothing", type=float)
    parser.add_argument(
        "--tensorboard",
        action="store_true",
        default=None,
        help="also log each epoch for TensorBoard, in <run>/tensorboard (pip install tensorboard)",
    )
    parser.add_argument("--patience", type=int, help="stop after this many epochs without a better validation score "
                        "(default 0: train every epoch)")  # fmt: skip
    parser.add_argument("--patience-on", choices=["val", "train_loss"], help="what --patience watches: the validation "
                        "score (default) or the training loss, which must fall by 1 %% to count (train to "
                        "convergence)")  # fmt: skip
    parser.add_argument("--ema", type=float, help="EMA decay of weights, e.g. 0.999 (0 = off)")
    parser.add_argument("--grad-clip", type=float, help="max global gradient norm (0 = off)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--name", help="run name (default: the model name)")
    parser.add_argument("--project", help="folder of run directories (default: runs)")
    parser.add_argument("--train-subset", type=int, help="train on this many random examples (0 = all)")
    parser.add_argument("--val-subset", type=int, help="validate on this many random examples (0 = all)")
    parser.add_argument("--crop-padding", type=int, help="random translation in pixels (0 = off)")
    parser.add_argument("--cutout", type=int, help="cutout square size in pixels (0 = off)")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None, help="random horizontal flips")
    parser.add_argument("--image-size", "--imgsz", type=int, dest="image_size",
                        help="ImageFolder data: crop and evaluation size (default 224); "
                        "detect: square input side (default: the model's)")  # fmt: skip
    parser.add_argument("--workers", type=int, help="ImageFolder data: DataLoader workers (default 2)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    parser.add_argument("--device", help="auto, cpu or cuda[:N]")


def run(args: argparse.Namespace) -> int:
    from convforge.engine.trainer import train

    overrides = {field: getattr(args, option) for option, field in RECIPE_OPTIONS.items()}
    overrides.update(kd_alpha=args.kd_alpha, kd_temperature=args.kd_temperature)
    if args.resume:
        extra = [name for name, given in (("a model name", args.model), ("--recipe", args.recipe),
                                          ("--set", args.set)) if given]  # fmt: skip
        if extra:
            raise ConvforgeError(f"--resume continues the run as it was built; drop {', '.join(extra)}")
        result = train(None, resume=args.resume, progress=not args.quiet, teacher=args.teacher, **overrides)
    else:
        if not args.model:
            raise ConvforgeError("name a model to train, e.g. convforge train resnet20 --data fashion-mnist")
        result = train(args.model, recipe=args.recipe, model_kwargs=parse_overrides(args.set), teacher=args.teacher,
                       progress=not args.quiet, **overrides)  # fmt: skip
    if result.metrics and result.rank == 0:
        best, metric = result.best(), result.primary_metric
        value = format_metric(metric, best[f"val_{metric}"])
        print(f"best val {metric} {value} at epoch {best['epoch']}; run directory: {result.run_dir}")
    return 0
