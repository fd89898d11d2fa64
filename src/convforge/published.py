"""Figures as a paper prints them ("5,498,378", "0.27M", "1.34G"), and whether a measurement matches.

A figure written in full (digits and commas only) must be matched exactly. A rounded
figure ("0.27M") matches anything that rounds to it, or lies within ``rel_tol``
(1 % by default) of it, whichever is looser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SUFFIX = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_FIGURE = re.compile(r"^\s*(?P<number>[\d,]*\.?\d+)\s*(?P<suffix>[KMGT]?)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class PublishedFigure:
    """A published number with the tolerance its printed precision allows."""

    text: str
    value: float
    tolerance: float

    @classmethod
    def parse(cls, text: str, rel_tol: float = 0.01) -> PublishedFigure:
        match = _FIGURE.match(text)
        if match is None:
            raise ValueError(f"published figure {text!r} is not a number like 5,498,378, 0.27M or 1.34G")
        number, suffix = match["number"], match["suffix"].upper()
        scale = _SUFFIX[suffix]
        value = float(number.replace(",", "")) * scale
        if not suffix and "." not in number:
            return cls(text, value, 0.0)  # written in full: exact
        decimals = len(number.split(".")[1]) if "." in number else 0
        half_unit = 0.5 * 10**-decimals * scale
        return cls(text, value, max(half_unit, rel_tol * value))

    def matches(self, measured: float) -> bool:
        """True when ``measured`` agrees with the figure within its tolerance."""
        return abs(measured - self.value) <= self.tolerance
