"""Model families, one file each; importing this package registers their named variants.

The registry's queries (``create_model``, ``list_models``, ``get_model_info``) are
taken from here, so that every built-in family is registered before they run.
"""

from convforge.models import cifar_resnet, cifar_vgg, espcn, fsrcnn, leyolo, residual_stack, sesr, simplenet
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
    "cifar_resnet",
    "cifar_vgg",
    "espcn",
    "fsrcnn",
    "leyolo",
    "residual_stack",
    "sesr",
    "simplenet",
]
