"""``convforge study deep-vs-shallow|av-pyramid|fccov``: run a paper's study as a resumable sweep; print its report."""

from __future__ import annotations

import argparse
import shlex
import sys

from convforge.cli.arguments import existing_folder

NAME = "study"
MAX_SEEDS = 100  # seeds or replicates per configuration
HELP = "run a paper's study (a resumable sweep of trainings) and print its report"


def add_parser(subparsers) -> None:
    from convforge.experiments.deep_vs_shallow import GRIDS

    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Run a study's grid of trainings in worker processes, keeping every trial in a database so that "
        "an interrupted study resumes where it stopped, then print its tables and write its plots.",
    )
    studies = parser.add_subparsers(dest="study", metavar="STUDY", required=True)
    deep = studies.add_parser(
        "deep-vs-shallow",
        help="residual stacks against their parallel expansion (Make Deep Networks Shallow Again)",
        description="Train residual_stack_net in the sequential and the parallel layout over a grid and compare "
        "their training and validation loss per interval of Q = training samples × outputs / parameters.",
    )
    deep.add_argument("--grid", default="small", help=f"{', '.join(GRIDS)} or a YAML grid file (default: small)")
    deep.add_argument("--data", default=None, help="comma-separated dataset names (default: the grid's)")
    deep.add_argument("--data-root", type=existing_folder, default=None, help="where to look for the datasets first")
    deep.add_argument("--workers", type=int, default=2,
                      help="worker processes on this machine (default: 2; 1 trains in this process)")  # fmt: skip
    deep.add_argument("--out", default=None, help="study folder (default: runs/studies/deep-vs-shallow-GRID)")
    deep.add_argument("--storage", default=None,
                      help="Optuna storage URL shared by many machines, e.g. postgresql+psycopg://user@host/db "
                      "(default: OUT/trials.db, SQLite); start the study on one machine, then run the same command "
                      "on the others")  # fmt: skip
    deep.add_argument("--heartbeat", type=int, default=10, help="seconds between a worker's heartbeats (default 10)")
    deep.add_argument("--grace", type=int, default=30,
                      help="seconds of silence after which a worker counts as dead and its trial is queued again "
                      "(default 30)")  # fmt: skip
    deep.add_argument("--retry-failed", action="store_true", help="run failed trials again")
    deep.add_argument("--report-only", action="store_true", help="only rewrite the report from the stored trials")
    deep.add_argument("--quiet", action="store_true", help="no progress bar")
    av = studies.add_parser(
        "av-pyramid",
        help="MM-Pyramid against HAN-style, AVEL-style and per-segment baselines on semi-synthetic AVE and LLP",
        description="Write semi-synthetic features on the real AVE and LLP labels, train MM-Pyramid (width 128, 1-4 "
        "pyramid levels) and three baselines at several SNRs and seeds, select each on validation, and report test "
        "accuracy (AVE) and F1 (LLP). The figures measure temporal localisation on controlled data, not the "
        "published benchmark.",
    )
    av.add_argument("--ave", default="ave", help="the AVE label folder (Annotations.txt, split files; default: ave)")
    av.add_argument("--llp", default="llp", help="the LLP label folder (AVVP_*.csv; default: llp)")
    av.add_argument("--data-root", type=existing_folder, default=None, help="where to look for the folders first")
    _add_queue_options(av, "av-pyramid")
    av.add_argument("--snrs", default="-20,-15,-10", help="AVE-synth SNRs in dB, comma-separated (default -20,-15,-10)")
    av.add_argument("--seeds", type=int, default=3, help="seeds per configuration (default 3)")
    av.add_argument("--epochs", type=int, default=5, help="AVE training epochs (default 5)")
    av.add_argument("--llp-epochs", type=int, default=8, help="LLP training epochs (default 8)")
    av.add_argument(
        "--videos",
        type=int,
        default=None,
        help="keep N videos of each split, drawn at random (AVE and LLP; default: all of AVE, 2000 of LLP)",
    )
    fccov = studies.add_parser(
        "fccov",
        help="FCCov-Net against SIR, SAVE, WIRE, GSIR and deep dCov SDR on simulated designs, and on rotated images",
        description="Simulate the designs (Euclidean, Wasserstein, SPD and sphere responses, each also with 10 % "
        "outliers), fit every method to d dimensions, and report the distance correlation between each reduction "
        "of the test X and the true index; then train FCCov-Net and deep dCov on rotated images against PCA.",
    )
    fccov.add_argument("--reps", type=int, default=5, help="replicates per design (default 5)")
    fccov.add_argument("--designs", default=None, help="comma-separated designs (default: all eight)")
    fccov.add_argument("--epochs", type=int, default=50, help="training epochs of the networks, 10 passes each "
                       "(default 50)")  # fmt: skip
    fccov.add_argument("--image-epochs", type=int, default=20, help="epochs of the image application (default 20)")
    fccov.add_argument("--no-image", action="store_true", help="skip the rotated-image application")
    fccov.add_argument("--image-data", default="mnist", help="dataset to rotate (default mnist; fashion-mnist too)")
    fccov.add_argument("--data-root", type=existing_folder, default=None, help="where to look for the images first")
    _add_queue_options(fccov, "fccov")
    parser.set_defaults(run=run)


def _add_queue_options(parser: argparse.ArgumentParser, study: str) -> None:
    """The options every queued study takes: its folder, storage, workers, report-only and quiet."""
    out = f"runs/studies/{study}"
    parser.add_argument("--out", default=out, help=f"study folder (default: {out})")
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default: OUT/trials.db, SQLite)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2; 1 runs in this process)")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the report from the stored trials")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_fccov(args: argparse.Namespace, command: str) -> int:
    from convforge.errors import ConvforgeError
    from convforge.experiments.fccov_study import FccovPlan, run_fccov_study

    for option, value, high in (
        ("--reps", args.reps, MAX_SEEDS),
        ("--epochs", args.epochs, 100_000),
        ("--image-epochs", args.image_epochs, 100_000),
        ("--workers", args.workers, 64),
    ):
        if not 1 <= value <= high:
            raise ConvforgeError(f"{option} {value} is not allowed; use an integer from 1 to {high:,}")
    designs = tuple(d.strip() for d in args.designs.split(",") if d.strip()) if args.designs else None
    plan = FccovPlan(reps=args.reps, epochs=args.epochs, image_epochs=args.image_epochs,
                     **({"designs": designs} if designs else {}))  # fmt: skip
    result = run_fccov_study(plan, args.out, args.workers, args.storage, image=not args.no_image,
                             image_dataset=args.image_data, data_root=args.data_root, progress=not args.quiet,
                             report_only=args.report_only, command=command)  # fmt: skip
    print(f"\ntrials: {len(result.rows)} of {result.total} done\n")
    if result.rows:
        print(result.tables)
    if result.image:
        print("\nrotated images, dCor with (cos θ, sin θ): " + ", ".join(f"{k} {v:.3f}" for k, v in
                                                                       result.image["dcor"].items()))  # fmt: skip
    if result.rows:
        print(f"\nreport: {result.out / 'report' / 'report.md'}")
    return 0 if len(result.rows) == result.total or args.report_only else 1


def _snrs(text: str) -> tuple[float, ...]:
    from convforge.errors import ConvforgeError

    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values:
        raise ConvforgeError(f"--snrs {text!r} is not a list of numbers; write e.g. -20,-15,-10")
    return values


def run(args: argparse.Namespace) -> int:
    command = "convforge " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else ""
    if args.study == "av-pyramid":
        return _run_av_pyramid(args, command)
    if args.study == "fccov":
        return _run_fccov(args, command)
    return _run_deep_vs_shallow(args, command)


def _run_av_pyramid(args: argparse.Namespace, command: str) -> int:
    from convforge.experiments.av_pyramid import StudyPlan, run_study
    from convforge.field_checks import check_ints

    if not 1 <= args.seeds <= MAX_SEEDS or not 1 <= args.workers <= 64:
        from convforge.errors import ConvforgeError

        raise ConvforgeError(f"--seeds must be from 1 to {MAX_SEEDS} and --workers from 1 to 64, got {args.seeds} and "
                             f"{args.workers}")  # fmt: skip
    plan = StudyPlan(snrs=_snrs(args.snrs), seeds=tuple(range(args.seeds)) if args.seeds > 0 else (),
                     ave_epochs=args.epochs, llp_epochs=args.llp_epochs, ave_videos=args.videos,
                     llp_videos=args.videos or StudyPlan.llp_videos)  # fmt: skip
    check_ints(plan, "ave_epochs", "llp_epochs")
    if not plan.seeds:
        from convforge.errors import ConvforgeError

        raise ConvforgeError(f"--seeds {args.seeds} is not allowed; use a positive number of seeds")
    result = run_study(plan, args.out, args.ave, args.llp, args.data_root, args.workers, args.storage,
                       progress=not args.quiet, report_only=args.report_only, command=command)  # fmt: skip
    print(f"\ntrials: {result.done} of {result.total} done\n")
    if result.rows:
        print(result.tables)
        print(f"\nreport: {result.out / 'report' / 'report.md'}")
    return 0 if result.done == result.total or args.report_only else 1


def _run_deep_vs_shallow(args: argparse.Namespace, command: str) -> int:
    from convforge.experiments.deep_vs_shallow import run_study
    from convforge.experiments.deep_vs_shallow.report import paired_tables

    result = run_study(
        grid=args.grid,
        data=args.data,
        workers=args.workers,
        out=args.out,
        storage=args.storage,
        data_root=args.data_root,
        progress=not args.quiet,
        retry_failed=args.retry_failed,
        heartbeat_s=args.heartbeat,
        grace_s=args.grace,
        report_only=args.report_only,
        command=command,
    )
    counts = result.counts
    print(f"\ntrials: {counts['done']} done, {counts['failed']} failed, {counts['pending']} pending, "
          f"{counts['running']} running elsewhere")  # fmt: skip
    if not result.rows:
        print("no finished trials yet")
        return 1 if counts["failed"] else 0
    summary, detail = paired_tables(result.rows)
    print("\nMean cross-entropy per Q interval (train / validation):\n")
    print(result.table)
    print("\nParallel − sequential, paired by configuration and seed:\n")
    print(summary)
    print("\nPer configuration, over its seeds (95 % CI with two seeds or more):\n")
    print(detail)
    print(f"\nreport: {result.out / 'report' / 'report.md'}   plots: {result.out / 'report'}")
    return 0
