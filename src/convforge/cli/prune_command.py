"""``convforge prune RUN --target macs=0.5``: prune a trained run into a new, smaller run."""

from __future__ import annotations

import argparse

from convforge.cli.arguments import existing_folder
from convforge.errors import ConvforgeError

NAME = "prune"
HELP = "prune a trained run (structured channels) and fine-tune it"


def add_parser(subparsers) -> None:
    from convforge.compress.importance import IMPORTANCES
    from convforge.compress.pruning import SCOPES

    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Remove whole channels from a trained run's model until the target holds, optionally "
        "fine-tune (and distil from the dense model), and write a new run directory with the pruned model, "
        "pruning.json, layers.txt and plots/pruning.png. With --sensitivity, prune each layer alone at "
        "several ratios instead and plot the score against the ratio.",
    )
    parser.add_argument("source", metavar="RUN", help="run directory or checkpoint of the trained (dense) model")
    parser.add_argument("--target", default="macs=0.5",
                        help="macs=R, params=R or latency=R (a ratio of the dense model), or latency=Nms "
                        "(default macs=0.5)")  # fmt: skip
    parser.add_argument("--importance", default="l2", choices=list(IMPORTANCES),
                        help="how channels are ranked (default l2)")  # fmt: skip
    parser.add_argument(
        "--scope",
        default="global",
        choices=list(SCOPES),
        help="one ranking over all layers (global, default) or the same ratio per layer (local)",
    )
    parser.add_argument("--iterative", type=int, default=1, metavar="N", help="prune in N steps (default 1)")
    parser.add_argument("--round-to", type=int, default=8,
                        help="keep channel counts multiples of this (default 8; 1 for any)")  # fmt: skip
    parser.add_argument(
        "--finetune-epochs",
        type=int,
        default=0,
        metavar="N",
        help="fine-tune the pruned model for N epochs (shared between iterative steps)",
    )
    parser.add_argument("--kd", action="store_true", help="distil from the dense model while fine-tuning")
    parser.add_argument("--kd-alpha", type=float, help="weight of the distillation loss (default 0.5)")
    parser.add_argument("--kd-temperature", type=float, help="temperature of Hinton's loss (default 4)")
    parser.add_argument("--lr", type=float, help="fine-tuning learning rate (default: the run's × 0.1)")
    parser.add_argument("--batch", type=int, help="fine-tuning batch size (default: the run's)")
    parser.add_argument(
        "--sensitivity",
        action="store_true",
        help="prune each layer alone at several ratios, without fine-tuning, and plot the score",
    )
    parser.add_argument(
        "--val-subset",
        type=int,
        default=1000,
        help="--sensitivity: score on this many test examples (0 = all; default 1000)",
    )
    parser.add_argument("--data-root", type=existing_folder, help="folder holding the run's dataset")
    parser.add_argument("--name", help="name of the new run (default: <run>-pruned)")
    parser.add_argument("--project", help="folder of run directories (default: the run's)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from convforge.compress.prune_run import prune_run, sensitivity_run, summary_table

    if args.sensitivity:
        curves, path = sensitivity_run(args.source, args.importance, val_subset=args.val_subset,
                                       data_root=args.data_root, progress=not args.quiet)  # fmt: skip
        worst = sorted(curves.items(), key=lambda item: min(s for _, s in item[1]))[:5]
        print("most sensitive layers: " + ", ".join(name for name, _ in worst))
        print(f"plot: {path}")
        return 0
    if not args.kd and (args.kd_alpha is not None or args.kd_temperature is not None):
        raise ConvforgeError("--kd-alpha and --kd-temperature set the distillation that --kd turns on; add --kd")
    outcome = prune_run(
        args.source, args.target, args.importance, scope=args.scope, steps=args.iterative,
        round_to=None if args.round_to == 1 else args.round_to, finetune_epochs=args.finetune_epochs, kd=args.kd,
        project=args.project, name=args.name, data_root=args.data_root, progress=not args.quiet,
        kd_alpha=args.kd_alpha, kd_temperature=args.kd_temperature, lr=args.lr, batch_size=args.batch,
    )  # fmt: skip
    print(outcome.pruning.summary())
    print(summary_table(outcome))
    print(f"run directory: {outcome.run_dir}  (layers.txt, pruning.json, plots/pruning.png)")
    return 0
