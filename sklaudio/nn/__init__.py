"""Pure PyTorch building blocks: backbones, memory bank, losses, augmentation.

Nothing here imports scikit-learn; the estimators in :mod:`sklaudio.embedders`
wrap these modules.
"""

from sklaudio.nn.augment import SpectrogramAugment
from sklaudio.nn.convlstm import AudioFramePredictor, ConvLSTM, ConvLSTMCell
from sklaudio.nn.esresnet import BACKBONES, Attention2d, ESResNet, build_backbone
from sklaudio.nn.finetune import (
    SequenceEncoder,
    SpectrogramClassifier,
    TransferReport,
    load_resnet_state_dict,
)
from sklaudio.nn.npid import (
    MemoryBank,
    NPIDLoss,
    SpectrogramEncoder,
    estimate_nce_z,
    instance_softmax_loss,
    nce_loss,
)
from sklaudio.nn.pair_loss import pair_kl_matrix, pair_loss, similar_pair_fraction

__all__ = [
    "BACKBONES",
    "Attention2d",
    "AudioFramePredictor",
    "ConvLSTM",
    "ConvLSTMCell",
    "ESResNet",
    "MemoryBank",
    "NPIDLoss",
    "SequenceEncoder",
    "SpectrogramAugment",
    "SpectrogramClassifier",
    "SpectrogramEncoder",
    "TransferReport",
    "build_backbone",
    "estimate_nce_z",
    "instance_softmax_loss",
    "load_resnet_state_dict",
    "nce_loss",
    "pair_kl_matrix",
    "pair_loss",
    "similar_pair_fraction",
]
