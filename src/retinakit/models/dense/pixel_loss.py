"""The self-supervised dense loss of RetinaFace (eq. 3): mean L1 between the rendered face of a
positive anchor and the image crop of its face box.

The crop is taken from the network input itself (undoing the input normalisation, in RGB,
values in [0, 1]), resampled to the renderer's ``S x S`` by bilinear sampling at 2x and 2x2
averaging. The rendering's background is the crop's mean colour (no gradient), so uncovered
pixels cost only their deviation from it and the mesh is not pushed to shrink or to grow beyond
the face.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from retinakit.config import InputConfig


def to_rgb01(images: torch.Tensor, input_config: InputConfig) -> torch.Tensor:
    """Network inputs ``(B, 3, H, W)`` -> RGB in [0, 1] (undoes ``(pixel - mean) / std``)."""
    mean = torch.tensor(input_config.mean, dtype=images.dtype, device=images.device)[None, :, None, None]
    std = torch.tensor(input_config.std, dtype=images.dtype, device=images.device)[None, :, None, None]
    pixels = images * std + mean
    if input_config.channel_order == "BGR":
        pixels = pixels.flip(1)
    return pixels / 255.0


def crop_boxes(images: torch.Tensor, image_index: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """``S x S`` crops ``(N, C, S, S)`` of ``boxes (N, 4)`` xyxy (input pixels) from
    ``images[image_index]``; crop pixel ``i`` covers ``[x0 + i w / S, x0 + (i + 1) w / S]``."""
    n = len(boxes)
    h, w = images.shape[-2:]
    fine = 2 * size
    steps = (torch.arange(fine, dtype=images.dtype, device=images.device) + 0.5) / fine  # (2S,)
    x0, y0, x1, y1 = boxes.to(images.dtype).unbind(-1)
    xs = x0[:, None] + steps[None] * (x1 - x0)[:, None]  # (N, 2S) input pixels
    ys = y0[:, None] + steps[None] * (y1 - y0)[:, None]
    grid = torch.stack(
        [(2 * xs / w - 1)[:, None, :].expand(n, fine, fine), (2 * ys / h - 1)[:, :, None].expand(n, fine, fine)], -1
    )
    sampled = F.grid_sample(images[image_index], grid, mode="bilinear", padding_mode="border", align_corners=False)
    return F.avg_pool2d(sampled, 2)


def pixel_loss(rendered: torch.Tensor, crops: torch.Tensor) -> torch.Tensor:
    """Mean L1 over faces, channels and pixels (eq. 3); zero for no faces."""
    if len(crops) == 0:
        return rendered.sum() * 0.0
    return (rendered - crops).abs().mean()
