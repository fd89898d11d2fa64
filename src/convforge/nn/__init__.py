"""Reusable building blocks, one concept per file."""

from convforge.nn.band_attention import BandMaskedAttention, band_mask
from convforge.nn.conv_norm_act import ConvNormAct
from convforge.nn.dilated_temporal import DilatedTemporalBlock
from convforge.nn.gated_fusion import GatedFusion
from convforge.nn.plain_stack import LayerSpec, PlainConvStack, parse_layers
from convforge.nn.residual_stack import (
    ParallelResidualStack,
    ResidualBranch,
    ResidualStack,
    SequentialResidualStack,
    TaylorResidualStack,
)
from convforge.nn.temporal_pyramid import LevelFusion, PyramidUnit

__all__ = [
    "BandMaskedAttention",
    "ConvNormAct",
    "DilatedTemporalBlock",
    "GatedFusion",
    "LevelFusion",
    "PyramidUnit",
    "LayerSpec",
    "ParallelResidualStack",
    "PlainConvStack",
    "ResidualBranch",
    "ResidualStack",
    "SequentialResidualStack",
    "TaylorResidualStack",
    "band_mask",
    "parse_layers",
]
