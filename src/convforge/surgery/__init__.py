"""Model-to-model transforms: residual stack layouts (deep ↔ shallow, Taylor truncation)."""

from convforge.surgery.residual_layout import residual_stacks, taylor_truncate, to_parallel, to_sequential

__all__ = ["residual_stacks", "taylor_truncate", "to_parallel", "to_sequential"]
