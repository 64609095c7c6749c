"""ESResNet: a ResNet with attention over spectrogram images (Guzhov et al., 2020).

The DLS paper pre-trains "ESResNet with attention", a ResNet-50 whose every
stage is multiplied by an attention map computed from the stage's input by a
depthwise and a pointwise convolution, batch norm and a sigmoid. Layer names
follow torchvision's ResNet (``conv1``, ``bn1``, ``layer1.0.conv1``, ...) so an
ImageNet state dict maps onto the backbone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BACKBONES", "Attention2d", "ESResNet", "build_backbone"]


def _conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1×1 → 3×3 → 1×1 bottleneck with a residual connection (ResNet-50)."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class Attention2d(nn.Module):
    """ESResNet's attention block: a sigmoid map multiplied into a stage's output.

    The stage's *input* is max-pooled to the output's size, passed through a
    depthwise convolution (``groups=in_channels``), a pointwise 1×1
    convolution and batch norm, then squashed by a sigmoid.
    """

    def __init__(self, in_channels, out_channels, kernel_size, padding):
        super().__init__()
        if out_channels % in_channels:
            raise ValueError(
                f"depthwise attention needs out_channels ({out_channels}) to be a multiple of "
                f"in_channels ({in_channels})"
            )
        self.conv_depth = nn.Conv2d(
            in_channels, out_channels, kernel_size, padding=padding, groups=in_channels
        )
        self.conv_point = nn.Conv2d(out_channels, out_channels, 1)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x, size):
        x = F.adaptive_max_pool2d(x, size)
        return torch.sigmoid(self.bn(self.conv_point(self.conv_depth(x))))


class ESResNet(nn.Module):
    """ResNet backbone with ESResNet's five attention blocks.

    Maps ``(n, in_channels, n_freq, n_frames)`` images to ``(n, out_features)``
    by global average pooling. Any spectrogram size works; training needs batches
    of 2 or more clips (the last attention block batch-normalises one pooled value
    per clip, so in training a clip's gate also depends on the others of its batch).

    Parameters
    ----------
    block : {BasicBlock, Bottleneck}
    layers : sequence of 4 int
        Blocks per stage (``[3, 4, 6, 3]`` is ResNet-50).
    widths : sequence of 4 int
        Planes per stage (``[64, 128, 256, 512]`` is ResNet's).
    in_channels : int, default=3
        Channels of one image (ESResNet's 3 frequency bands).
    attention : bool, default=True
        Use the attention blocks (``False`` gives the plain ResNet).
    """

    def __init__(
        self,
        block: type[nn.Module],
        layers: Sequence[int],
        widths: Sequence[int] = (64, 128, 256, 512),
        in_channels: int = 3,
        attention: bool = True,
    ):
        super().__init__()
        self.in_channels = in_channels
        stem = widths[0]
        self.inplanes = stem
        self.conv1 = nn.Conv2d(in_channels, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, widths[0], layers[0])
        self.layer2 = self._make_layer(block, widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, widths[3], layers[3], stride=2)
        e = block.expansion
        self.attention = attention
        if attention:
            # Kernel shapes alternate between frequency (3×1) and time (1×5), as in ESResNet.
            self.att1 = Attention2d(stem, widths[0] * e, (3, 1), (1, 0))
            self.att2 = Attention2d(widths[0] * e, widths[1] * e, (1, 5), (0, 2))
            self.att3 = Attention2d(widths[1] * e, widths[2] * e, (3, 1), (1, 0))
            self.att4 = Attention2d(widths[2] * e, widths[3] * e, (1, 5), (0, 2))
            self.att5 = Attention2d(widths[3] * e, widths[3] * e, (3, 5), (1, 2))
        self.out_features = widths[3] * e
        self.stage_channels = tuple(w * e for w in widths)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():
            # Zero-init the last BN of each residual branch: every block starts as identity.
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)
            elif isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        modules = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        modules += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*modules)

    def stage_maps(self, x: torch.Tensor, last: int = 4) -> list[torch.Tensor]:
        """Stages 1..``last``'s ``(n, channels, freq, time)`` maps, attention applied."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        maps = []
        stages = (self.layer1, self.layer2, self.layer3, self.layer4)[:last]
        for i, stage in enumerate(stages, start=1):
            y = stage(x)
            if self.attention:
                y = y * getattr(self, f"att{i}")(x, y.shape[-2:])
            maps.append(x := y)
        return maps

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's ``(n, out_features, freq, time)`` map, before pooling."""
        return self.stage_maps(x)[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.attention and self.att5.bn.training and x.shape[0] == 1:
            # (batch norm would fail deep inside with "Expected more than 1 value per channel")
            raise ValueError(
                "training needs batches of 2 or more clips: the last attention block's batch "
                "norm reads one pooled value per clip (drop a last batch of 1, e.g. "
                "DataLoader(drop_last=True), or call eval() to run single clips)"
            )
        x = self.feature_map(x)
        pooled = F.adaptive_avg_pool2d(x, 1)
        if self.attention:
            pooled = pooled * self.att5(x, pooled.shape[-2:])
        return torch.flatten(pooled, 1)


#: The ``backbone`` names: ``(block, blocks per stage, channels per stage)``.
#: ``'esresnet50'`` is the paper's ResNet-50 (bottleneck blocks, 4x wider outputs);
#: ``'esresnet_small'`` and ``'esresnet_tiny'`` are CPU-sized.
BACKBONES = {
    # name: (block, layers, widths)
    "esresnet50": (Bottleneck, (3, 4, 6, 3), (64, 128, 256, 512)),
    "esresnet18": (BasicBlock, (2, 2, 2, 2), (64, 128, 256, 512)),
    # CPU-sized: one basic block per stage, a quarter of ResNet's widths.
    "esresnet_tiny": (BasicBlock, (1, 1, 1, 1), (16, 32, 64, 128)),
    "esresnet_small": (BasicBlock, (1, 1, 1, 1), (32, 64, 128, 256)),
}


def build_backbone(name: str, in_channels: int = 3, attention: bool = True) -> ESResNet:
    """Instantiate a backbone of :data:`BACKBONES` by name.

    Examples
    --------
    >>> import torch
    >>> from sklaudio.nn import build_backbone
    >>> net = build_backbone("esresnet_tiny", in_channels=1)
    >>> net(torch.zeros(2, 1, 64, 100)).shape
    torch.Size([2, 128])
    """
    try:
        block, layers, widths = BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}") from None
    return ESResNet(block, layers, widths, in_channels=in_channels, attention=attention)
