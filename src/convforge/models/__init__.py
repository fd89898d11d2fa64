"""Model families, one file each; importing this package registers their named variants."""

from convforge.models import cifar_resnet, cifar_vgg, espcn, residual_stack, simplenet
from convforge.models.cifar_resnet import CifarResNet
from convforge.models.cifar_vgg import CifarVGG
from convforge.models.espcn import ESPCN
from convforge.models.residual_stack import ResidualStackNet
from convforge.models.simplenet import SimpleNet

__all__ = [
    "CifarResNet",
    "CifarVGG",
    "ESPCN",
    "ResidualStackNet",
    "SimpleNet",
    "cifar_resnet",
    "cifar_vgg",
    "espcn",
    "residual_stack",
    "simplenet",
]
