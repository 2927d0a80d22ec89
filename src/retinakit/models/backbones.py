"""Backbones that return a list of feature maps plus their channels and strides.

``MobileNetV1`` (widths 0.25 / 0.5 / 1, LeakyReLU), ``MobileNetV2`` (torchvision layout, ReLU6)
and ``ResNet`` (torchvision layout: basic blocks for 18/34, bottlenecks with the stride on the 3x3
convolution for 50/101/152). Parameter names follow the public checkpoints so that they load
without renaming inside the backbone (MobileNetV2 and ResNet: torchvision's names).
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
    """MobileNetV1 as used by the light RetinaFaces: outputs at strides 8, 16 and 32.

    ``width``: channel multiplier of the base widths 32 ... 1024 (0.25 gives 8 ... 256).
    ``leaky``: LeakyReLU slope of every activation (0.1 in biubug6's current code, 0 = ReLU in its
    earlier ``mobilev1.py``).
    """

    def __init__(self, leaky: float = 0.1, levels: tuple[int, ...] = (8, 16, 32), width: float = 0.25) -> None:
        super().__init__()
        if tuple(levels) != (8, 16, 32):
            raise ValueError(f"MobileNetV1 gives strides (8, 16, 32), not {levels}")
        c0, c1, c2, c3, c4, c5 = (int(base * width) for base in (32, 64, 128, 256, 512, 1024))
        dw = _depthwise_separable
        self.stage1 = nn.Sequential(
            conv_bn(3, c0, 3, 2, leaky=leaky),
            dw(c0, c1, 1, leaky),
            dw(c1, c2, 2, leaky),
            dw(c2, c2, 1, leaky),
            dw(c2, c3, 2, leaky),
            dw(c3, c3, 1, leaky),
        )
        self.stage2 = nn.Sequential(dw(c3, c4, 2, leaky), *[dw(c4, c4, 1, leaky) for _ in range(5)])
        self.stage3 = nn.Sequential(dw(c4, c5, 2, leaky), dw(c5, c5, 1, leaky))
        self.channels = (c3, c4, c5)
        self.strides = (8, 16, 32)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c3 = self.stage1(x)
        c4 = self.stage2(c3)
        c5 = self.stage3(c4)
        return [c3, c4, c5]


def _conv_bn_relu6(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expansion (if ``expand > 1``), 3x3 depthwise, linear 1x1 projection."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = in_ch * expand
        layers: list[nn.Module] = [_conv_bn_relu6(in_ch, hidden, 1)] if expand != 1 else []
        layers += [
            _conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(Backbone):
    """MobileNetV2 (width 1) in torchvision's layout ``features.0`` ... ``features.18``.

    Outputs are taken after ``features.6`` (stride 8, 32 channels), ``features.13`` (16, 96) and
    ``features.18`` (the 1x1 conv to 1280 channels, stride 32), as yakhyo/retinaface-pytorch does.
    """

    _TAPS = (6, 13, 18)
    # (expansion, channels, blocks, first stride), the MobileNetV2 paper's table 2
    _SETTING = (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    )

    def __init__(self, levels: tuple[int, ...] = (8, 16, 32)) -> None:
        super().__init__()
        if tuple(levels) != (8, 16, 32):
            raise ValueError(f"MobileNetV2 gives strides (8, 16, 32), not {levels}")
        layers: list[nn.Module] = [_conv_bn_relu6(3, 32, 3, 2)]
        in_ch = 32
        for expand, out_ch, n, stride in self._SETTING:
            for i in range(n):
                layers.append(InvertedResidual(in_ch, out_ch, stride if i == 0 else 1, expand))
                in_ch = out_ch
        layers.append(_conv_bn_relu6(in_ch, 1280, 1))
        self.features = nn.Sequential(*layers)
        self.channels = (32, 96, 1280)
        self.strides = (8, 16, 32)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self._TAPS:
                feats.append(x)
        return feats


class BasicBlock(nn.Module):
    """ResNet-18/34 block: two 3x3 convs (torchvision naming: conv1/bn1, conv2/bn2, downsample.0/.1)."""

    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            nn.Sequential(nn.Conv2d(in_ch, width, 1, stride, bias=False), nn.BatchNorm2d(width))
            if stride != 1 or in_ch != width
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


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


RESNET_DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


class ResNet(Backbone):
    """ResNet-18/34/50/101/152 trunk; ``levels`` picks outputs among strides 4 (C2), 8, 16, 32 (C5)."""

    def __init__(self, depth: int = 50, levels: tuple[int, ...] = (8, 16, 32)) -> None:
        super().__init__()
        blocks = RESNET_DEPTHS[depth]
        block: type[BasicBlock | Bottleneck] = BasicBlock if depth < 50 else Bottleneck
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
                layer.append(block(in_ch, width, stride if b == 0 else 1))
                in_ch = width * block.expansion
            stages.append(nn.Sequential(*layer))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        all_strides = (4, 8, 16, 32)
        if not set(levels) <= set(all_strides) or list(levels) != sorted(levels):
            raise ValueError(f"ResNet levels must be increasing strides among {all_strides}, got {levels}")
        self._take = [all_strides.index(s) for s in levels]
        self.strides = tuple(levels)
        self.channels = tuple(block.expansion * (64, 128, 256, 512)[i] for i in self._take)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        feats = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            feats.append(x)
        return [feats[i] for i in self._take]


MOBILENET_V1_WIDTHS = {"mobilenet0.25": 0.25, "mobilenet0.50": 0.5, "mobilenet1.0": 1.0}


def build_backbone(name: str, levels: tuple[int, ...], leaky: float) -> Backbone:
    """The backbone named in a :class:`~retinakit.config.ModelConfig`."""
    if name in MOBILENET_V1_WIDTHS:
        return MobileNetV1(leaky=leaky, levels=levels, width=MOBILENET_V1_WIDTHS[name])
    if name == "mobilenetv2":
        return MobileNetV2(levels=levels)
    if name.startswith("resnet"):
        return ResNet(int(name.removeprefix("resnet")), levels=levels)
    raise ValueError(f"unknown backbone {name!r}")
