"""Pure PyTorch building blocks: backbones, memory bank, losses, augmentation.

Nothing here imports scikit-learn; the estimators in :mod:`sklaudio.embedders`
wrap these modules.
"""

from sklaudio.nn.augment import SpectrogramAugment
from sklaudio.nn.esresnet import BACKBONES, Attention2d, ESResNet, build_backbone
from sklaudio.nn.npid import (
    MemoryBank,
    NPIDLoss,
    SpectrogramEncoder,
    estimate_nce_z,
    instance_softmax_loss,
    nce_loss,
)

__all__ = [
    "BACKBONES",
    "Attention2d",
    "ESResNet",
    "MemoryBank",
    "NPIDLoss",
    "SpectrogramAugment",
    "SpectrogramEncoder",
    "build_backbone",
    "estimate_nce_z",
    "instance_softmax_loss",
    "nce_loss",
]
