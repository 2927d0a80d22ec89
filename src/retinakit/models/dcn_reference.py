"""A slow, independent DCN v2 (modulated deformable convolution), the check of ``deform_conv2d``.

A direct loop over output pixels and kernel taps, written from the DCN v2 definition with one
bilinear sample per tap. In float64 it is exact enough to compare values and gradients with the
vectorised operator (``tests/test_dcn.py``, ``benchmarks/training/dcn_reference.py``). Tiny inputs only.
"""

from __future__ import annotations

import math

import torch

#: the configurations the check covers: (stride, padding, dilation, offset groups)
CASES: list[tuple[int, int, int, int]] = [(1, 1, 1, 1), (2, 1, 1, 2), (1, 2, 2, 2)]


def bilinear_at(img: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``img`` ``(C, H, W)`` sampled at one real position ``(y, x)``; pixels outside the image count as zero."""
    h, w = img.shape[-2:]
    y0, x0 = math.floor(y.item()), math.floor(x.item())
    ly, lx = y - y0, x - x0
    out = img.new_zeros(img.shape[0])
    for yy, wy in ((y0, 1 - ly), (y0 + 1, ly)):
        for xx, wx in ((x0, 1 - lx), (x0 + 1, lx)):
            if 0 <= yy < h and 0 <= xx < w:
                out = out + wy * wx * img[:, yy, xx]
    return out


def reference_deform_conv(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    stride: int,
    pad: int,
    dil: int,
) -> torch.Tensor:
    """``(B, Cout, Ho, Wo)``: DCN v2 of ``x`` ``(B, C, H, W)``, offsets ``(B, 2*G*K, Ho, Wo)`` (dy, dx per tap),
    masks ``(B, G*K, Ho, Wo)``, ``weight`` ``(Cout, C, kh, kw)``, ``bias`` ``(Cout,)``; G offset groups."""
    b, c, _, _ = x.shape
    _, _, kh, kw = weight.shape
    ho, wo = offset.shape[-2:]
    groups = offset.shape[1] // (2 * kh * kw)
    cg = c // groups
    out = []
    for n in range(b):
        rows = []
        for oy in range(ho):
            cols = []
            for ox in range(wo):
                acc = bias.clone()
                for g in range(groups):
                    for i in range(kh):
                        for j in range(kw):
                            k = g * kh * kw + i * kw + j
                            py = oy * stride - pad + i * dil + offset[n, 2 * k, oy, ox]
                            px = ox * stride - pad + j * dil + offset[n, 2 * k + 1, oy, ox]
                            v = bilinear_at(x[n, g * cg : (g + 1) * cg], py, px) * mask[n, k, oy, ox]
                            acc = acc + weight[:, g * cg : (g + 1) * cg, i, j] @ v
                cols.append(acc)
            rows.append(torch.stack(cols, -1))
        out.append(torch.stack(rows, -2))
    return torch.stack(out)
