"""Model-to-model transforms: residual stack layouts (deep ↔ shallow, Taylor truncation), collapsing linear blocks."""

from convforge.surgery.collapse import collapse, collapsible_blocks
from convforge.surgery.residual_layout import residual_stacks, taylor_truncate, to_parallel, to_sequential

__all__ = ["collapse", "collapsible_blocks", "residual_stacks", "taylor_truncate", "to_parallel", "to_sequential"]
