"""Model families, one file each; importing this package registers their named variants.

The registry's queries (``create_model``, ``list_models``, ``get_model_info``) are
taken from here, so that every built-in family is registered before they run.
"""

from convforge.models import (
    av_segment_mlp,
    avel,
    cifar_resnet,
    cifar_vgg,
    espcn,
    fsrcnn,
    han,
    leyolo,
    mm_pyramid,
    residual_stack,
    sdr_mlp,
    sesr,
    simplenet,
)
from convforge.models.cifar_resnet import CifarResNet
from convforge.models.cifar_vgg import CifarVGG
from convforge.models.espcn import ESPCN
from convforge.models.fsrcnn import FSRCNN
from convforge.models.residual_stack import ResidualStackNet
from convforge.models.sesr import SESR
from convforge.models.simplenet import SimpleNet
from convforge.registry import (
    ModelInfo,
    create_model,
    default_input_size,
    get_model_info,
    list_models,
    origin_info,
    rebuild,
    register_model,
)

__all__ = [
    "ModelInfo",
    "create_model",
    "default_input_size",
    "get_model_info",
    "list_models",
    "origin_info",
    "rebuild",
    "register_model",
    "CifarResNet",
    "CifarVGG",
    "ESPCN",
    "FSRCNN",
    "ResidualStackNet",
    "SESR",
    "SimpleNet",
    "av_segment_mlp",
    "avel",
    "cifar_resnet",
    "cifar_vgg",
    "espcn",
    "fsrcnn",
    "han",
    "leyolo",
    "mm_pyramid",
    "residual_stack",
    "sdr_mlp",
    "sesr",
    "simplenet",
]
