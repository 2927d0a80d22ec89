"""Small convolution blocks shared by the backbones, the neck and the context modules."""

from __future__ import annotations

from torch import nn


def conv_bn(
    in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, leaky: float | None = 0.0, groups: int = 1
) -> nn.Sequential:
    """Conv (no bias) + BatchNorm, followed by LeakyReLU(``leaky``) unless ``leaky`` is None.

    Parameter names ``0`` (conv) and ``1`` (norm) match the widely shared RetinaFace checkpoints.
    """
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if leaky is not None:
        layers.append(nn.LeakyReLU(leaky, inplace=True) if leaky > 0 else nn.ReLU(inplace=True))
    return nn.Sequential(*layers)
