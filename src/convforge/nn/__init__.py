"""Reusable building blocks, one concept per file."""

from convforge.nn.conv_norm_act import ConvNormAct
from convforge.nn.plain_stack import LayerSpec, PlainConvStack, parse_layers
from convforge.nn.residual_stack import (
    ParallelResidualStack,
    ResidualBranch,
    ResidualStack,
    SequentialResidualStack,
    TaylorResidualStack,
)

__all__ = [
    "ConvNormAct",
    "LayerSpec",
    "ParallelResidualStack",
    "PlainConvStack",
    "ResidualBranch",
    "ResidualStack",
    "SequentialResidualStack",
    "TaylorResidualStack",
    "parse_layers",
]
