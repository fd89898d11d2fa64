"""Declarative networks: rows ``[from, repeats, block, args]`` in YAML or Python, built into modules.

Importing this package registers the built-in blocks (:mod:`convforge.spec.builtin_blocks`);
user modules add their own with :func:`register_block`.
"""

from convforge.spec import builtin_blocks as _builtin_blocks  # noqa: F401 - registers the built-in blocks
from convforge.spec import zoo_blocks as _zoo_blocks  # noqa: F401 - registers the zoo's blocks
from convforge.spec.block_registry import BlockInfo, list_blocks, register_block
from convforge.spec.model import SPEC_SUFFIXES, Spec, SpecError, SpecModel, build_spec, is_spec_path, make_divisible

__all__ = [
    "SPEC_SUFFIXES",
    "BlockInfo",
    "Spec",
    "SpecError",
    "SpecModel",
    "build_spec",
    "is_spec_path",
    "list_blocks",
    "make_divisible",
    "register_block",
]
