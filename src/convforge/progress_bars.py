"""When convforge draws progress bars: wherever a caller asks for them, except that on the command line they are
drawn only on a terminal, so a log redirected to a file gets no carriage-return lines."""

from __future__ import annotations

import sys

_terminal_only = False


def draw_only_on_a_terminal() -> None:
    """From now on, hide every progress bar unless standard error is a terminal (the command line calls this)."""
    global _terminal_only
    _terminal_only = True


def hidden(requested: bool) -> bool:
    """tqdm's ``disable``: True when no bar was asked for, or when bars are for terminals and this is not one."""
    return not requested or (_terminal_only and not sys.stderr.isatty())
