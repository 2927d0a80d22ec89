"""The neck: a feature pyramid (top-down FPN, optional P6) and SSH-style context modules."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from retinakit.config import ContextConv
from retinakit.models.dcn import DeformConv2d
from retinakit.models.layers import conv_bn


class FPN(nn.Module):
    """Top-down feature pyramid over backbone maps, low stride first.

    ``lateral[i]``: 1x1 conv on input ``i``; ``merge[i]``: 3x3 conv after adding the upsampled
    coarser level (every level but the coarsest; deformable with ``kind="deformable"``, as the
    paper's §3.3 does for the 3x3 convs of the lateral connections); ``extra``: optional 3x3
    stride-2 conv on the last *backbone* map giving one more, coarser level (the paper's P6).
    """

    def __init__(
        self,
        in_channels: tuple[int, ...],
        out_channels: int,
        leaky: float,
        extra_p6: bool,
        kind: ContextConv = "standard",
    ) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(conv_bn(c, out_channels, 1, leaky=leaky) for c in in_channels)
        self.merge = nn.ModuleList(context_conv(kind, out_channels, out_channels, leaky) for _ in in_channels[:-1])
        self.extra = conv_bn(in_channels[-1], out_channels, 3, 2, leaky=leaky) if extra_p6 else None

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        outs = [lat(f) for lat, f in zip(self.lateral, feats, strict=True)]
        for i in range(len(outs) - 2, -1, -1):
            up = F.interpolate(outs[i + 1], size=outs[i].shape[-2:], mode="nearest")
            outs[i] = self.merge[i](outs[i] + up)
        if self.extra is not None:
            outs.append(self.extra(feats[-1]))
        return outs


def context_conv(kind: ContextConv, in_ch: int, out_ch: int, leaky: float | None) -> nn.Sequential:
    """A 3x3 conv-BN(-act) block of the neck: a plain conv, or a DCN v2 layer with ``kind="deformable"``.

    Both forms name the conv ``0`` and the norm ``1``; the deformable conv adds ``0.offset_mask``.
    """
    if kind == "standard":
        return conv_bn(in_ch, out_ch, 3, leaky=leaky)
    if kind == "deformable":
        block = conv_bn(in_ch, out_ch, 3, leaky=leaky)
        block[0] = DeformConv2d(in_ch, out_ch, 3, bias=False)
        return block
    raise ValueError(f"context_conv must be 'standard' or 'deformable', got {kind!r}")


class SSH(nn.Module):
    """SSH context module: parallel 3x3, 5x5 (two 3x3) and 7x7 (three 3x3) branches, concatenated.

    Branch widths are 1/2, 1/4 and 1/4 of ``out_ch``; the 5x5 and 7x7 branches share their first
    conv. The concatenation goes through a ReLU.
    """

    def __init__(self, in_ch: int, out_ch: int, leaky: float, kind: ContextConv = "standard") -> None:
        super().__init__()
        if out_ch % 4:
            raise ValueError(f"SSH output channels must be divisible by 4, got {out_ch}")
        q = out_ch // 4
        self.conv3x3 = context_conv(kind, in_ch, out_ch // 2, None)
        self.conv5x5_1 = context_conv(kind, in_ch, q, leaky)
        self.conv5x5_2 = context_conv(kind, q, q, None)
        self.conv7x7_2 = context_conv(kind, q, q, leaky)
        self.conv7x7_3 = context_conv(kind, q, q, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch3 = self.conv3x3(x)
        shared = self.conv5x5_1(x)
        branch5 = self.conv5x5_2(shared)
        branch7 = self.conv7x7_3(self.conv7x7_2(shared))
        return F.relu(torch.cat([branch3, branch5, branch7], dim=1))
