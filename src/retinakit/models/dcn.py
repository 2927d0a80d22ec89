"""Modulated deformable convolution (DCN v2, Zhu et al. 2019) in plain PyTorch, no torchvision.

``deform_conv2d`` follows the tensor layout of ONNX ``DeformConv`` (and torchvision):

- ``offset`` ``(B, 2 * offset_groups * kh * kw, Ho, Wo)``: for offset group ``g`` and kernel tap
  ``k = i * kw + j``, channel ``2 * (g * kh * kw + k)`` is the row (y) shift and the next one the
  column (x) shift, in input pixels;
- ``mask`` ``(B, offset_groups * kh * kw, Ho, Wo)``: the modulation scalar of each tap;
- input channels are split into ``offset_groups`` consecutive blocks, one per offset group.

Output ``(b, o, y, x) = bias[o] + sum_{c, k} weight[o, c, k] * mask[b, g(c), k, y, x] *
bilinear(input[b, c], y * stride - pad + i * dilation + dy, x * stride - pad + j * dilation + dx)``,
where bilinear sampling treats everything outside the image as zero.

Implementation: the sampling is one ``F.grid_sample`` call (bilinear, zero padding,
``align_corners=False`` with pixel coordinates mapped so that sampling at an integer position
reads that pixel) producing the ``(B, C, kh*kw, Ho, Wo)`` column tensor, which is modulated and
multiplied with the weight in one matmul. ``grid_sample`` brings a native, vectorised backward for
the input and the sampling positions, so gradients for input, weight, offset and mask come from
autograd. During ONNX export the function is emitted as one ``DeformConv`` node (opset 19).

Training: the offset/mask predictors learn at ``OFFSET_LR_MULT`` (0.1) times the learning rate of
the rest of the network (see :func:`offset_mask_parameters`), as DCN v2 and the RetinaFace MXNet
code do. At the full rate the offsets run away (see :class:`DeformConv2d`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

DEFORM_CONV_OPSET = 19

OFFSET_LR_MULT = 0.1
"""Learning-rate multiplier for the offset/mask predictors: ``lr_mult=0.1`` on the zero-initialised
offset conv's weight and bias in the MXNet modulated-DCN demo symbol and in the RetinaFace MXNet
code (``conv_deformable``); mmcv/mmengine call the same knob ``dcn_offset_lr_mult``."""


def _pair(v: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _deform_conv2d_eager(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
) -> torch.Tensor:
    b, c, h, w = x.shape
    cout, cin, kh, kw = weight.shape
    if cin != c:
        raise ValueError(f"weight expects {cin} input channels, input has {c} (grouped weights are not supported)")
    ho, wo = offset.shape[-2:]
    k = kh * kw
    groups = offset.shape[1] // (2 * k)
    if offset.shape[1] != 2 * groups * k or groups < 1 or c % groups:
        raise ValueError(f"offset has {offset.shape[1]} channels; need 2 * offset_groups * {k} with C % groups == 0")
    if mask.shape[1] != groups * k:
        raise ValueError(f"mask has {mask.shape[1]} channels; need offset_groups * {k} = {groups * k}")
    want = tuple(
        (n + 2 * p - d * (q - 1) - 1) // st + 1
        for n, p, d, q, st in zip((h, w), padding, dilation, (kh, kw), stride, strict=True)
    )
    if (ho, wo) != want or tuple(mask.shape[-2:]) != want:
        raise ValueError(
            f"offset and mask must be {want[0]}x{want[1]} (the conv output), got {ho}x{wo} and {tuple(mask.shape[-2:])}"
        )
    # Base sampling positions (pixel units) of every tap at every output location.
    dev, dt = x.device, x.dtype
    ys = torch.arange(ho, device=dev, dtype=dt) * stride[0] - padding[0]
    xs = torch.arange(wo, device=dev, dtype=dt) * stride[1] - padding[1]
    ti = torch.arange(kh, device=dev, dtype=dt).repeat_interleave(kw) * dilation[0]  # (k,)
    tj = torch.arange(kw, device=dev, dtype=dt).repeat(kh) * dilation[1]
    base_y = ti[:, None, None] + ys[None, :, None]  # (k, ho, 1)
    base_x = tj[:, None, None] + xs[None, None, :]  # (k, 1, wo)
    off = offset.view(b, groups, k, 2, ho, wo)
    py = base_y + off[:, :, :, 0]  # (b, g, k, ho, wo)
    px = base_x + off[:, :, :, 1]
    # grid_sample (align_corners=False) reads pixel p at normalised (2p + 1) / size - 1.
    grid = torch.stack(((2 * px + 1) / w - 1, (2 * py + 1) / h - 1), dim=-1)
    grid = grid.view(b * groups, k * ho, wo, 2)
    cols = F.grid_sample(
        x.reshape(b * groups, c // groups, h, w), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )  # (b*g, c/g, k*ho, wo)
    cols = cols.view(b, groups, c // groups, k, ho, wo) * mask.view(b, groups, 1, k, ho, wo)
    out = torch.matmul(weight.reshape(cout, c * k), cols.reshape(b, c * k, ho * wo))
    if bias is not None:
        out = out + bias.view(1, cout, 1)
    return out.view(b, cout, ho, wo)


@torch.library.custom_op("retinakit::deform_conv2d", mutates_args=())
def _deform_conv2d_op(
    x: torch.Tensor,
    weight: torch.Tensor,
    offset: torch.Tensor,
    bias: torch.Tensor,
    mask: torch.Tensor,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    offset_groups: int,
) -> torch.Tensor:
    """Opaque op used only while exporting to ONNX, where it becomes one ``DeformConv`` node."""
    return _deform_conv2d_eager(x, offset, mask, weight, bias, _pair(stride), _pair(padding), _pair(dilation))


@_deform_conv2d_op.register_fake
def _(
    x: torch.Tensor,
    weight: torch.Tensor,
    offset: torch.Tensor,
    bias: torch.Tensor,
    mask: torch.Tensor,
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    offset_groups: int,
) -> torch.Tensor:
    return x.new_empty(x.shape[0], weight.shape[0], offset.shape[2], offset.shape[3])


def _onnx_symbolic(g: Any, *args: Any) -> Any:
    """``DeformConv`` for the TorchScript exporter; ``args`` are the op's inputs as graph values."""
    from torch.onnx import symbolic_helper

    x, weight, offset, bias, mask, stride, padding, dilation, offset_groups = args

    stride, padding, dilation = (symbolic_helper._parse_arg(v, "is") for v in (stride, padding, dilation))
    return g.op(
        "DeformConv",
        x,
        weight,
        offset,
        bias,
        mask,
        strides_i=stride,
        pads_i=[padding[0], padding[1], padding[0], padding[1]],
        dilations_i=dilation,
        offset_group_i=symbolic_helper._parse_arg(offset_groups, "i"),
    )


def register_onnx_symbolic() -> None:
    """Let the TorchScript ONNX exporter write :func:`deform_conv2d` as ``DeformConv`` (opset >= 19)."""
    torch.onnx.register_custom_op_symbolic("retinakit::deform_conv2d", _onnx_symbolic, DEFORM_CONV_OPSET)


def deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    offset_groups: int | None = None,
) -> torch.Tensor:
    """Modulated deformable convolution; shapes and layout as in the module docstring.

    ``x (B, C, H, W)``, ``weight (Cout, C, kh, kw)``; returns ``(B, Cout, Ho, Wo)`` where
    ``Ho, Wo`` are the standard convolution output sizes (and must equal the offset's).
    ``offset_groups`` is read from the offset's channels when not given.
    """
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    if torch.onnx.is_in_onnx_export():
        if bias is None:
            bias = weight.new_zeros(weight.shape[0])
        groups = offset_groups or int(offset.shape[1]) // (2 * int(weight.shape[2]) * int(weight.shape[3]))
        return _deform_conv2d_op(x, weight, offset, bias, mask, list(stride), list(padding), list(dilation), groups)
    return _deform_conv2d_eager(x, offset, mask, weight, bias, stride, padding, dilation)


class DeformConv2d(nn.Module):
    """DCN v2 layer: a plain conv predicts the offsets and masks, then :func:`deform_conv2d` runs.

    The offset/mask predictor (``offset_mask``, a ``kernel`` x ``kernel`` conv with the same stride
    and padding) starts at zero, and the mask is ``2 * sigmoid(m)`` rather than DCN v2's
    ``sigmoid(m)``: a freshly built layer samples the regular grid with mask 1, i.e. it equals a
    plain ``nn.Conv2d`` with the same ``weight`` and ``bias``, so the deformation is learned from a
    working convolution (and ImageNet or plain-conv weights can be loaded into ``weight``).

    Train ``offset_mask`` at ``OFFSET_LR_MULT`` times the network's learning rate
    (:func:`offset_mask_parameters`): an offset is an absolute shift in pixels, fed by a conv over
    all ``in_channels * k`` inputs of a non-negative (post-ReLU) feature map and not renormalised by
    the BatchNorm that follows, so a full-rate step moves every tap coherently by many pixels; the
    taps then read zeros outside the map and the layer stops being a useful convolution.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        bias: bool = True,
        offset_groups: int = 1,
    ) -> None:
        super().__init__()
        if in_channels % offset_groups:
            raise ValueError(f"in_channels {in_channels} not divisible by offset_groups {offset_groups}")
        self.stride = stride
        self.padding = dilation * (kernel_size // 2) if padding is None else padding
        self.dilation = dilation
        self.offset_groups = offset_groups
        k = kernel_size * kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)  # nn.Conv2d's default
        self.offset_mask = nn.Conv2d(
            in_channels, 3 * offset_groups * k, kernel_size, stride, self.padding, dilation=dilation
        )
        nn.init.zeros_(self.offset_mask.weight)
        nn.init.zeros_(self.offset_mask.bias)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pred = self.offset_mask(x)
        n = 2 * pred.shape[1] // 3
        offset, mask = pred[:, :n], 2 * torch.sigmoid(pred[:, n:])
        return deform_conv2d(
            x, offset, mask, self.weight, self.bias, self.stride, self.padding, self.dilation, self.offset_groups
        )

    def extra_repr(self) -> str:
        o, i, kh, _ = self.weight.shape
        return (
            f"{i}, {o}, kernel_size={kh}, stride={self.stride}, padding={self.padding}, "
            f"offset_groups={self.offset_groups}"
        )


def offset_mask_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The offset/mask predictor parameters of every :class:`DeformConv2d` in ``model`` (may be empty).

    Training puts these in their own optimizer groups at ``OFFSET_LR_MULT`` times the learning rate.
    """
    return [p for m in model.modules() if isinstance(m, DeformConv2d) for p in m.offset_mask.parameters()]
