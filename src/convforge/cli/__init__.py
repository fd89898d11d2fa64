"""The ``convforge`` command: thin wrappers over the library, one file per command."""

from __future__ import annotations

import argparse
import errno
import os
import sys

from convforge import __version__
from convforge.cli import (
    av_synth_command,
    compare_command,
    eval_command,
    explain_command,
    export_command,
    models_command,
    predict_command,
    profile_command,
    prune_command,
    quantize_command,
    runs_command,
    search_command,
    study_command,
    train_command,
    upscale_command,
)
from convforge.errors import ConvforgeError
from convforge.progress_bars import draw_only_on_a_terminal
from convforge.warning_lines import show_warnings_as_lines

COMMANDS = (
    models_command,
    profile_command,
    train_command,
    eval_command,
    predict_command,
    runs_command,
    compare_command,
    study_command,
    explain_command,
    upscale_command,
    export_command,
    prune_command,
    quantize_command,
    search_command,
    av_synth_command,
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``convforge`` parser with every command's options, or, given ``command``, with that one's only (the
    others listed by name): a command's options may need torch to describe, and ``--help`` should not wait for it."""
    parser = argparse.ArgumentParser(
        prog="convforge",
        description="Build, measure, train, transform, search and explain efficient convolutional networks.",
    )
    parser.add_argument("--version", action="version", version=f"convforge {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (also CONVFORGE_DEBUG=1)")  # fmt: skip
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        if command is None or module.NAME == command:
            module.add_parser(subparsers)
        else:
            subparsers.add_parser(module.NAME, help=module.HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 on success)."""
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), "")  # the only top-level options are flags
    debug = "--debug" in argv or os.environ.get("CONVFORGE_DEBUG", "") not in ("", "0")
    draw_only_on_a_terminal()
    show_warnings_as_lines()
    try:
        args = build_parser(command).parse_args(argv)
    except ConvforgeError as err:  # an option's value refused while parsing (--data-root that does not exist)
        if debug:
            raise
        print(f"convforge {command}: error: {error_sentence(err)}".replace("  ", " "), file=sys.stderr)
        return 2
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print(f"convforge {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ConvforgeError, OSError, ModuleNotFoundError) as err:
        if debug:
            raise
        print(f"convforge {args.command}: error: {error_sentence(err)}", file=sys.stderr)
        return 1


OS_ERROR_FIXES = {
    **dict.fromkeys((errno.ENOSPC, errno.EFBIG, errno.EDQUOT), "; free some disk space (or raise the file-size "
                    "limit) and run again"),
    **dict.fromkeys((errno.EACCES, errno.EPERM, errno.EROFS), "; choose a folder you may write to (--project, --out)"),
}  # fmt: skip


def error_sentence(err: BaseException) -> str:
    """One line for a foreseeable failure: convforge's own message, a file the system could not read or write (disk
    full, read-only, permission), or a missing optional package."""
    if isinstance(err, ConvforgeError):
        return str(err)
    if isinstance(err, ModuleNotFoundError):
        return f"this needs the {err.name} package, which is not installed (pip install {err.name})"
    where = f"{err.filename}: " if getattr(err, "filename", None) else ""
    reason = err.strerror or str(err) or type(err).__name__
    fix = OS_ERROR_FIXES.get(getattr(err, "errno", None) or 0, "")
    return f"{where}{reason}{fix} (run with --debug for the traceback)".replace("\n", " ")


if __name__ == "__main__":
    sys.exit(main())
