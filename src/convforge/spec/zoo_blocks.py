"""The block zoo: attention and convolution blocks of the efficient-CNN literature, as spec rows.

Each wraps the class timm (or torchvision) already has, so its weights and behaviour are theirs:

=============  ==============================  =====================================================
block          row arguments                   timm class (paper)
=============  ==============================  =====================================================
``SE``         ``[rd_ratio]``                  ``timm.layers.SEModule`` (squeeze-excitation)
``ECA``        ``[kernel]``                    ``timm.layers.EcaModule`` (efficient channel attention)
``CBAM``       ``[rd_ratio, spatial_kernel]``  ``timm.layers.CbamModule``
``CoordAttn``  ``[rd_ratio]``                  ``timm.layers.coord_attn.CoordAttn``
``Ghost``      ``[c_out, kernel, ratio, dw]``  ``timm.models.ghostnet.GhostModule`` (GhostNet)
``UIB``        ``[c_out, start_k, mid_k,       ``UniversalInvertedResidual`` (MobileNetV4)
               end_k, stride, expansion]``
``PConv``      ``[n_div, mlp_ratio]``          ``timm.models.fasternet.MLPBlock`` (FasterNet)
``Res2Net``    ``[c_out, stride, scale]``      ``timm.models.res2net.Bottle2neck``
``RepVGG``     ``[c_out, kernel, stride]``     ``timm.models.byobnet.RepVggBlock``
``MobileOne``  ``[c_out, kernel, stride,       ``timm.models.byobnet.MobileOneBlock``
               branches]``
``ASPP``       ``[c_out, rates]``              ``torchvision``'s ``ASPP`` (DeepLab v3)
``PPM``        ``[c_out, bins]``               :class:`~convforge.nn.pyramid_pooling.PyramidPooling` (PSPNet)
``FPN``        ``[c_out]``                     ``torchvision.ops.FeaturePyramidNetwork``
``PAN``        ``[c_out]``                     :class:`~convforge.nn.path_aggregation.PathAggregation` (PANet)
``BiFPN``      ``[c_out]``                     :class:`~convforge.nn.bifpn.BiFPN` (EfficientDet)
=============  ==============================  =====================================================

Attention blocks and ``PConv`` keep their input's channels; the others take the output channels first, scaled
by the spec's width like every ``Conv`` row. The necks (``FPN``, ``PAN``, ``BiFPN``) read several levels, finest
first, and give one output per level, each ``c_out`` channels at that level's size; a list of names in the row's
fifth field names them.
"""

from __future__ import annotations

from torch import nn

from convforge.errors import InvalidValueError
from convforge.spec.block_registry import register_block


@register_block("SE", channels="same")
def squeeze_excite(c_in: int, rd_ratio: float = 0.25) -> nn.Module:
    """Squeeze-excitation: global pooling, a bottleneck of ``rd_ratio`` × channels, a sigmoid gate per channel."""
    from timm.layers import SEModule

    return SEModule(c_in, rd_ratio=rd_ratio)


@register_block("ECA", channels="same")
def efficient_channel_attention(c_in: int, kernel: int = 3) -> nn.Module:
    """Efficient channel attention: a 1-D convolution of ``kernel`` across the pooled channels, then a gate."""
    from timm.layers import EcaModule

    return EcaModule(c_in, kernel_size=kernel)


@register_block("CBAM", channels="same")
def cbam(c_in: int, rd_ratio: float = 0.0625, spatial_kernel: int = 7) -> nn.Module:
    """CBAM: channel attention (average and max pooled) then spatial attention of ``spatial_kernel``."""
    from timm.layers.cbam import CbamModule

    return CbamModule(c_in, rd_ratio=rd_ratio, spatial_kernel_size=spatial_kernel)


@register_block("CoordAttn", channels="same")
def coordinate_attention(c_in: int, rd_ratio: float = 0.0625) -> nn.Module:
    """Coordinate attention: attention along height and along width from directionally pooled features."""
    from timm.layers.coord_attn import CoordAttn

    return CoordAttn(c_in, rd_ratio=rd_ratio)


@register_block("Ghost")
def ghost(c_in: int, c_out: int, kernel: int = 1, ratio: int = 2, dw: int = 3, stride: int = 1) -> nn.Module:
    """A Ghost module: a primary convolution makes c_out / ratio channels, cheap depthwise ones the rest."""
    from timm.models.ghostnet import GhostModule

    return GhostModule(c_in, c_out, kernel, ratio, dw, stride)


@register_block("UIB")
def universal_inverted_bottleneck(c_in: int, c_out: int, start_k: int = 0, mid_k: int = 3, end_k: int = 0,
                                  stride: int = 1, expansion: float = 4.0) -> nn.Module:  # fmt: skip
    """MobileNetV4's universal inverted bottleneck: optional depthwise convs before the expansion (``start_k``),
    in it (``mid_k``) and after the projection (``end_k``); 0 leaves one out."""
    from timm.models._efficientnet_blocks import UniversalInvertedResidual

    return UniversalInvertedResidual(c_in, c_out, start_k, mid_k, end_k, stride=stride, exp_ratio=expansion,
                                     layer_scale_init_value=None)  # fmt: skip


@register_block("PConv", channels="same")
def partial_conv_block(c_in: int, n_div: int = 4, mlp_ratio: float = 2.0) -> nn.Module:
    """FasterNet's block: a 3×3 convolution over 1 / ``n_div`` of the channels, then a pointwise MLP, residual."""
    from timm.models.fasternet import MLPBlock

    if c_in % n_div or c_in < n_div:
        raise InvalidValueError(f"PConv splits {c_in} channels into {n_div} parts; use a channel count divisible by "
                                f"n_div")  # fmt: skip
    return MLPBlock(c_in, n_div, mlp_ratio, drop_path=0.0, layer_scale_init_value=0.0)


@register_block("Res2Net")
def res2net(c_in: int, c_out: int, stride: int = 1, scale: int = 4) -> nn.Module:
    """Res2Net's bottleneck: hierarchical 3×3 convolutions over ``scale`` channel groups; out = 4 × its width."""
    from timm.models.res2net import Bottle2neck

    if c_out % 4:
        raise InvalidValueError(f"Res2Net's output is 4 × its width; use an output channel count divisible by 4, "
                                f"got {c_out}")  # fmt: skip
    downsample = None
    if stride != 1 or c_in != c_out:
        downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
    return Bottle2neck(c_in, c_out // 4, stride, downsample, scale=scale, base_width=26, norm_layer=nn.BatchNorm2d)


@register_block("RepVGG")
def repvgg(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> nn.Module:
    """A RepVGG block: k×k, 1×1 and identity branches in training, one k×k conv after re-parameterisation."""
    from timm.models.byobnet import RepVggBlock

    return RepVggBlock(c_in, c_out, kernel, stride)


@register_block("MobileOne")
def mobileone(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, branches: int = 1) -> nn.Module:
    """A MobileOne block: ``branches`` k×k branches, a 1×1 scale branch and identity, re-parameterisable."""
    from timm.models.byobnet import MobileOneBlock

    return MobileOneBlock(c_in, c_out, kernel, stride, num_conv_branches=branches)


@register_block("ASPP")
def aspp(c_in: int, c_out: int, rates: tuple[int, ...] | list[int] = (6, 12, 18)) -> nn.Module:
    """DeepLab v3's atrous spatial pyramid pooling (torchvision's ``ASPP``): a 1×1 conv, 3×3 convs at ``rates``
    and image pooling, concatenated and projected to ``c_out``."""
    from torchvision.models.segmentation.deeplabv3 import ASPP

    return ASPP(c_in, list(rates), c_out)


@register_block("PPM")
def pyramid_pooling(c_in: int, c_out: int, bins: tuple[int, ...] | list[int] = (1, 2, 3, 6)) -> nn.Module:
    """PSPNet's pyramid pooling module (:class:`~convforge.nn.pyramid_pooling.PyramidPooling`)."""
    from convforge.nn.pyramid_pooling import PyramidPooling

    return PyramidPooling(c_in, c_out, tuple(bins))


@register_block("FPN", channels="list", scaled=(0,))
def feature_pyramid(c_in: list[int], c_out: int) -> nn.Module:
    """The feature pyramid network (torchvision's): every level to ``c_out`` channels, top-down."""
    from convforge.nn.feature_pyramid import FeaturePyramid

    return FeaturePyramid(c_in, c_out)


@register_block("PAN", channels="list", scaled=(0,))
def path_aggregation(c_in: list[int], c_out: int) -> nn.Module:
    """The path-aggregation network: an FPN, then a bottom-up path of strided 3×3 convs."""
    from convforge.nn.path_aggregation import PathAggregation

    return PathAggregation(c_in, c_out)


@register_block("BiFPN", channels="list", scaled=(0,))
def bifpn(c_in: list[int], c_out: int) -> nn.Module:
    """One layer of EfficientDet's bidirectional feature pyramid with fast normalised fusion; repeat the row to
    stack layers."""
    from convforge.nn.bifpn import BiFPN

    return BiFPN(c_in, c_out)
