"""Task names as earlier convforge versions wrote them in specs and model registrations, and the names they are now.

There is one vocabulary of task names (``classify``, ``detect``, ``sr``, ...: see
:data:`convforge.tasks.TASKS`); a spec file or a registration that still says
``classification`` means ``classify``.
"""

from __future__ import annotations

TASK_NAMES = (
    "classify",
    "sr",
    "detect",
    "av-event",
    "av-parse",
    "sdr",
)  # the tasks convforge trains, as :data:`convforge.tasks.TASKS` names them
EARLIER_NAMES = {"classification": "classify", "detection": "detect", "super_resolution": "sr"}


def current_task_name(name: str) -> str:
    """``name``, or the current name of a task an earlier version called ``name``."""
    return EARLIER_NAMES.get(name, name) if isinstance(name, str) else name
