"""``convforge compare MODEL [MODEL ...] --data NAME``: train models on one recipe and compare them."""

from __future__ import annotations

import argparse

from convforge.cli.train_command import RECIPE_OPTIONS, add_recipe_options

NAME = "compare"
HELP = "train several models with one recipe and compare them"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Train each model with the same recipe, then print params, MACs, CPU latency, test accuracy and "
        "training time, and plot accuracy against MACs. A model may carry overrides: name[key=value,...].",
    )
    parser.add_argument("models", nargs="+", help="e.g. resnet20 'simplenet_cifar_310k[width=0.5]'")
    add_recipe_options(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from convforge.experiments import compare_models, comparison_table

    recipe = {field: getattr(args, option) for option, field in RECIPE_OPTIONS.items() if option != "data"}
    rows, folder = compare_models(args.models, args.data or "fashion-mnist", progress=not args.quiet,
                                  recipe=args.recipe, **recipe)  # fmt: skip
    print()
    print(comparison_table(rows))
    print(f"\nplot: {folder / 'accuracy_vs_macs.png'}   table: {folder / 'comparison.csv'}")
    print("runs: " + "  ".join(row.run_dir for row in rows))
    return 0
