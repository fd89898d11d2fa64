"""Model-to-model transforms: residual stack layouts (deep ↔ shallow, Taylor truncation), collapsing linear
blocks, folding BatchNorm into convolutions, and all of these at once for shipping."""

from convforge.surgery.collapse import collapse, collapsible_blocks
from convforge.surgery.fuse_bn import fold_batch_norm, fuse_bn
from convforge.surgery.inference_form import inference_form, reparameterize
from convforge.surgery.residual_layout import residual_stacks, taylor_truncate, to_parallel, to_sequential

__all__ = [
    "collapse",
    "collapsible_blocks",
    "fold_batch_norm",
    "fuse_bn",
    "inference_form",
    "reparameterize",
    "residual_stacks",
    "taylor_truncate",
    "to_parallel",
    "to_sequential",
]
