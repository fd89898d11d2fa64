"""Errors written for the person who gets them.

Every error convforge raises on purpose derives from :class:`ConvforgeError`. The
command line prints such an error as one sentence, without a traceback.
"""

from __future__ import annotations


class ConvforgeError(Exception):
    """A problem the user can fix: bad input, an unknown name, a missing file."""


class InvalidValueError(ConvforgeError, ValueError):
    """A value outside what is allowed; the message names the value and the allowed ones."""


class UnknownModelError(ConvforgeError, KeyError):
    """A model name that no registry knows."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ForwardError(ConvforgeError):
    """A model's forward pass failed; the message names the innermost module that was running."""

    def __init__(self, message: str, module_path: str = "", module_type: str = "") -> None:
        super().__init__(message)
        self.module_path = module_path
        self.module_type = module_type
