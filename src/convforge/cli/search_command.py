"""``convforge search SPACE.yaml --data fashion-mnist``: architecture search under a budget."""

from __future__ import annotations

import argparse

from convforge.cli.arguments import existing_folder, parse_count
from convforge.tables import human_count

NAME = "search"
HELP = "search a space of architectures for accurate ones within a budget"


def add_parser(subparsers) -> None:
    from convforge.nas import SAMPLERS

    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Sample architectures from a search space (YAML), prune those over the budget before training, "
        "train the rest briefly, and report the Pareto front of accuracy against MACs. Studies resume by name.",
    )
    parser.add_argument("space", help="search space YAML (stem, stages with choices, head)")
    parser.add_argument("--data", default="fashion-mnist", help="dataset to train and validate on")
    parser.add_argument("--data-root", type=existing_folder, help="folder holding the dataset")
    parser.add_argument("--trials", type=int, default=40, help="finished trials (trained or pruned), default 40")
    parser.add_argument("--sampler", choices=SAMPLERS, default="nsga2",
                        help="nsga2 (accuracy and MACs), tpe (accuracy) or random (default nsga2)")  # fmt: skip
    parser.add_argument("--max-macs", help="budget in MACs at batch 1, e.g. 20M")
    parser.add_argument("--max-params", help="budget in parameters, e.g. 300k")
    parser.add_argument("--max-latency", type=float, help="budget in ms: median CPU latency, batch 1, one thread")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    parser.add_argument("--storage", help="Optuna storage URL (default: sqlite in the study folder)")
    parser.add_argument("--study", help="study name (default: <space name>-<sampler>); the same name resumes")
    parser.add_argument("--project", default="runs", help="output folder (default runs)")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs per trial (default 1)")
    parser.add_argument("--train-subset", type=int, help="train each trial on this many random examples")
    parser.add_argument("--val-subset", type=int, help="validate each trial on this many random test examples")
    parser.add_argument("--batch", type=int, help="batch size")
    parser.add_argument("--opt", help="optimiser (sgd, adamw, adadelta)")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from convforge.nas import front_table_text, search

    recipe = {"epochs": args.epochs, "train_subset": args.train_subset,
              "val_subset": args.val_subset, "batch_size": args.batch, "opt": args.opt,
              "lr": args.lr, "data_root": args.data_root}  # fmt: skip
    result = search(
        args.space, args.data, trials=args.trials, sampler=args.sampler,
        max_macs=parse_count(args.max_macs, "--max-macs") if args.max_macs else None,
        max_params=parse_count(args.max_params, "--max-params") if args.max_params else None,
        max_latency_ms=args.max_latency, workers=args.workers, storage=args.storage, study=args.study,
        project=args.project, seed=args.seed, progress=not args.quiet,
        **{k: v for k, v in recipe.items() if v is not None},
    )  # fmt: skip
    pruned = sum(r.state == "pruned" for r in result.rows)
    print(f"study {result.study}: {len(result.rows)} trials, {pruned} pruned before training by the budget")
    print(front_table_text(result))
    print(f"hypervolume {result.hypervolume:.4f} (accuracy × MACs / {human_count(result.reference_macs)}, "
          f"reference point (0, 1))")  # fmt: skip
    for path in result.spec_paths:
        print(f"spec: {path}")
    print(f"table: {result.table_path}  plot: {result.plot_path}")
    return 0
