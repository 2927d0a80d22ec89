"""Backbones that return a list of feature maps plus their channels and strides.

``MobileNetV1`` (width 0.25, LeakyReLU 0.1) and ``ResNet`` (torchvision layout, bottleneck blocks
with the stride on the 3x3 convolution). Parameter names follow the public checkpoints so that
they load without renaming inside the backbone.
"""

from __future__ import annotations

import torch
from torch import nn

from retinakit.models.layers import conv_bn


class Backbone(nn.Module):
    """Base class: ``forward(x)`` returns feature maps for ``self.strides`` (a list, low to high)."""

    channels: tuple[int, ...]
    strides: tuple[int, ...]


def _depthwise_separable(in_ch: int, out_ch: int, stride: int, leaky: float) -> nn.Sequential:
    """3x3 depthwise conv-BN-act then 1x1 pointwise conv-BN-act (names 0, 1, 3, 4)."""
    return nn.Sequential(
        nn.Conv2d(in_ch, in_ch, 3, stride, 1, groups=in_ch, bias=False),
        nn.BatchNorm2d(in_ch),
        nn.LeakyReLU(leaky, inplace=True),
        nn.Conv2d(in_ch, out_ch, 1, 1, 0, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.LeakyReLU(leaky, inplace=True),
    )


class MobileNetV1(Backbone):
    """MobileNetV1 x0.25 as used by the light RetinaFace: outputs at strides 8, 16 and 32.

    ``leaky``: LeakyReLU slope of every activation (0.1 in biubug6's current code, 0 = ReLU in its
    earlier ``mobilev1.py``).
    """

    def __init__(self, leaky: float = 0.1, levels: tuple[int, ...] = (8, 16, 32)) -> None:
        super().__init__()
        if tuple(levels) != (8, 16, 32):
            raise ValueError(f"MobileNetV1 gives strides (8, 16, 32), not {levels}")
        dw = _depthwise_separable
        self.stage1 = nn.Sequential(
            conv_bn(3, 8, 3, 2, leaky=leaky),
            dw(8, 16, 1, leaky),
            dw(16, 32, 2, leaky),
            dw(32, 32, 1, leaky),
            dw(32, 64, 2, leaky),
            dw(64, 64, 1, leaky),
        )
        self.stage2 = nn.Sequential(dw(64, 128, 2, leaky), *[dw(128, 128, 1, leaky) for _ in range(5)])
        self.stage3 = nn.Sequential(dw(128, 256, 2, leaky), dw(256, 256, 1, leaky))
        self.channels = (64, 128, 256)
        self.strides = (8, 16, 32)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c3 = self.stage1(x)
        c4 = self.stage2(c3)
        c5 = self.stage3(c4)
        return [c3, c4, c5]


class Bottleneck(nn.Module):
    """ResNet bottleneck (torchvision v1.5 naming: conv1/bn1 ... conv3/bn3, downsample.0/.1)."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))
            if stride != 1 or in_ch != out_ch
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


RESNET_DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


class ResNet(Backbone):
    """ResNet-50/101/152 trunk; ``levels`` picks outputs among strides 4 (C2), 8, 16, 32 (C5)."""

    def __init__(self, depth: int = 50, levels: tuple[int, ...] = (8, 16, 32)) -> None:
        super().__init__()
        blocks = RESNET_DEPTHS[depth]
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_ch = 64
        stages = []
        for i, (n, width) in enumerate(zip(blocks, (64, 128, 256, 512), strict=True)):
            stride = 1 if i == 0 else 2
            layer = []
            for b in range(n):
                layer.append(Bottleneck(in_ch, width, stride if b == 0 else 1))
                in_ch = width * Bottleneck.expansion
            stages.append(nn.Sequential(*layer))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        all_strides = (4, 8, 16, 32)
        if not set(levels) <= set(all_strides) or list(levels) != sorted(levels):
            raise ValueError(f"ResNet levels must be increasing strides among {all_strides}, got {levels}")
        self._take = [all_strides.index(s) for s in levels]
        self.strides = tuple(levels)
        self.channels = tuple((256, 512, 1024, 2048)[i] for i in self._take)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        feats = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            feats.append(x)
        return [feats[i] for i in self._take]


def build_backbone(name: str, levels: tuple[int, ...], leaky: float) -> Backbone:
    """The backbone named in a :class:`~retinakit.config.ModelConfig`."""
    if name == "mobilenet0.25":
        return MobileNetV1(leaky=leaky, levels=levels)
    if name.startswith("resnet"):
        return ResNet(int(name.removeprefix("resnet")), levels=levels)
    raise ValueError(f"unknown backbone {name!r}")
