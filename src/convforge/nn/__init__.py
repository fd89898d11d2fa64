"""Reusable building blocks, one concept per file."""

from convforge.nn.conv_norm_act import ConvNormAct
from convforge.nn.plain_stack import LayerSpec, PlainConvStack, parse_layers

__all__ = ["ConvNormAct", "LayerSpec", "PlainConvStack", "parse_layers"]
