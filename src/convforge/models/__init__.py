"""Model families, one file each; importing this package registers their named variants."""

from convforge.models import cifar_resnet, cifar_vgg, espcn, fsrcnn, leyolo, residual_stack, sesr, simplenet
from convforge.models.cifar_resnet import CifarResNet
from convforge.models.cifar_vgg import CifarVGG
from convforge.models.espcn import ESPCN
from convforge.models.fsrcnn import FSRCNN
from convforge.models.residual_stack import ResidualStackNet
from convforge.models.sesr import SESR
from convforge.models.simplenet import SimpleNet

__all__ = [
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
