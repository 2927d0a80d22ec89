"""Dense faces at inference: decoded meshes placed in the image through their detection boxes."""

from __future__ import annotations

import numpy as np
import torch

from retinakit.models.dense.branch import DenseBranch
from retinakit.models.dense.head import split_params
from retinakit.models.dense.renderer import project, to_camera
from retinakit.result import FaceMeshes


def meshes_in_boxes(branch: DenseBranch, params: np.ndarray, boxes: np.ndarray) -> FaceMeshes:
    """Meshes of ``N`` faces from their dense parameters ``(N, 144)`` and boxes ``(N, 4)`` xyxy.

    The branch renders a face into the ``S x S`` crop of its box, so crop pixel ``(u, v)`` maps to
    ``x0 + (u + 1/2) w / S``, ``y0 + (v + 1/2) h / S``; depth is the camera distance relative to
    the face's mean, in pixels at the face's distance (``(z - z̄) f S / (2 z̄) · w / S``).
    """
    device = next(branch.parameters()).device
    size = branch.render_config.size
    with torch.inference_mode():
        p = torch.from_numpy(np.asarray(params, np.float32)).to(device)
        vertices, colours = branch.reconstruct(p)
        _, p_cam, _ = split_params(p)
        points = to_camera(vertices, p_cam, branch.render_config)
        uv = project(points, p_cam, branch.render_config)
        focal = branch.render_config.distance * torch.exp(p_cam[:, 6])
        z = points[..., 2]
        z_mean = z.mean(dim=1, keepdim=True)
        depth_crop = (z - z_mean) * focal[:, None] * size / (2 * z_mean)
    b = torch.from_numpy(np.asarray(boxes, np.float32)).to(device)
    scale_x, scale_y = (b[:, 2] - b[:, 0]) / size, (b[:, 3] - b[:, 1]) / size
    x = b[:, None, 0] + (uv[..., 0] + 0.5) * scale_x[:, None]
    y = b[:, None, 1] + (uv[..., 1] + 0.5) * scale_y[:, None]
    xyz = torch.stack([x, y, depth_crop * scale_x[:, None]], -1)
    return FaceMeshes(
        xyz.cpu().numpy().astype(np.float32),
        colours.cpu().numpy().astype(np.float32),
        branch.triangles.cpu().numpy(),
    )
