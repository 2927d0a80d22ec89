"""Differentiable renderer in plain PyTorch: perspective camera, Lambertian point light plus
ambient, soft rasterisation of a coloured triangle mesh into a small square crop.

**Camera** (``p_cam``, 7 numbers per face): position ``(t_x, t_y, t_z)``, pose ``(pitch, yaw,
roll)`` (radians) and log focal length ``φ``. A mesh point ``X`` goes to camera space as
``X_c = R(pitch, yaw, roll) X + (t_x, t_y, d_0 e^{t_z})`` (``R = R_z R_y R_x``; x right, y down,
z forward) and to crop pixels as ``u = (S / 2) (1 + f X_c.x / X_c.z) - 1/2`` (same for ``v`` with
y), ``f = d_0 e^{φ}``: with all parameters zero the mean face (x/y extent [-1, 1]) fills the
``S x S`` crop, frontal, at distance ``d_0``.

**Light** (``p_ill``, 9 numbers): point-light position ``d_0 (l_x, l_y, l_z)`` in camera space
(zero: at the camera), light colour ``0.6 e^{c}`` and ambient colour ``0.4 e^{a}`` (per RGB
channel). Each vertex gets ``albedo * (ambient + light * max(0, n · l̂))`` with ``n`` its
(area-weighted) normal and ``l̂`` the unit vector to the light; colours are interpolated over the
triangles (Gouraud shading).

**Soft rasterisation** (after SoftRas, Liu et al., ICCV 2019). For pixel centre ``p`` and triangle
``j``, ``d_j(p)`` is the signed distance (pixels, positive inside) to the nearest of the triangle's
three edge *lines* (exact inside; outside it never exceeds the true distance, so corners are
slightly rounded outwards). Coverage ``D_j = sigmoid(d_j / σ)``. Colour and normalised inverse depth
``z_j ∈ [0, 1]`` (1 nearest) are interpolated linearly in screen space and, outside the triangle,
clamped to the range of its three vertices. The pixel is
the softmax mix ``Σ_j w_j C_j + w_b B`` with ``w_j ∝ D_j exp(z_j / γ)`` and background weight
``w_b ∝ exp(ε / γ)``; the mask of covered pixels is ``1 - Π_j (1 - D_j)``. Every step is
differentiable with respect to vertices, colours, camera and light. Defaults: ``σ = 0.2`` px,
``γ = 0.05``, ``ε = 1e-3``. Only pixels within ``5 σ`` of a triangle's bounding box see it, so the
cost per face is about the covered crop area, independent of the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class RenderConfig:
    """Crop side ``size`` (pixels), soft-edge width ``sigma`` (pixels), depth temperature ``gamma``,
    background depth ``epsilon`` and default camera distance ``distance`` (``d_0``)."""

    size: int = 32
    sigma: float = 0.2
    gamma: float = 0.05
    epsilon: float = 1e-3
    distance: float = 5.0


def rotation(pose: torch.Tensor) -> torch.Tensor:
    """``(N, 3)`` pitch, yaw, roll (radians) -> ``(N, 3, 3)`` rotation ``R_z R_y R_x``."""
    cx, cy, cz = torch.cos(pose).unbind(-1)
    sx, sy, sz = torch.sin(pose).unbind(-1)
    one, zero = torch.ones_like(cx), torch.zeros_like(cx)
    rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1).reshape(-1, 3, 3)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(-1, 3, 3)
    rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], -1).reshape(-1, 3, 3)
    return rz @ ry @ rx


def to_camera(vertices: torch.Tensor, p_cam: torch.Tensor, config: RenderConfig) -> torch.Tensor:
    """Mesh points ``(N, V, 3)`` -> camera space ``(N, V, 3)``."""
    d0 = config.distance
    shift = torch.stack([p_cam[:, 0], p_cam[:, 1], d0 * torch.exp(p_cam[:, 2])], -1)
    return vertices @ rotation(p_cam[:, 3:6]).transpose(1, 2) + shift[:, None]


def project(points_cam: torch.Tensor, p_cam: torch.Tensor, config: RenderConfig) -> torch.Tensor:
    """Camera-space points ``(N, V, 3)`` -> crop pixel coordinates ``(N, V, 2)`` (pixel ``i`` spans
    ``[i - 1/2, i + 1/2]``)."""
    focal = config.distance * torch.exp(p_cam[:, 6])[:, None, None]
    z = points_cam[..., 2:].clamp(min=1e-2)
    return 0.5 * config.size * (1.0 + focal * points_cam[..., :2] / z) - 0.5


def vertex_normals(points: torch.Tensor, triangles: torch.Tensor) -> torch.Tensor:
    """Unit area-weighted vertex normals ``(N, V, 3)``; the mesh's triangles are ordered so that
    ``cross(b - a, c - a)`` points out of the face (towards the viewer of a frontal face)."""
    a, b, c = (points[:, triangles[:, i]] for i in range(3))
    face = torch.linalg.cross(b - a, c - a)
    normals = torch.zeros_like(points).index_add(1, triangles.reshape(-1), face.repeat_interleave(3, dim=1))
    return F.normalize(normals, dim=-1, eps=1e-12)


def shade(
    points_cam: torch.Tensor, albedo: torch.Tensor, triangles: torch.Tensor, p_ill: torch.Tensor, config: RenderConfig
) -> torch.Tensor:
    """Lambertian point light plus ambient: per-vertex colours ``(N, V, 3)``."""
    light_pos = config.distance * p_ill[:, None, 0:3]
    light_colour = 0.6 * torch.exp(p_ill[:, None, 3:6])
    ambient = 0.4 * torch.exp(p_ill[:, None, 6:9])
    to_light = F.normalize(light_pos - points_cam, dim=-1, eps=1e-12)
    normals = vertex_normals(points_cam, triangles)
    lambert = (normals * to_light).sum(-1, keepdim=True).clamp(min=0.0)
    return albedo * (ambient + light_colour * lambert)


def rasterise(
    pixels: torch.Tensor,
    depth: torch.Tensor,
    colours: torch.Tensor,
    triangles: torch.Tensor,
    background: torch.Tensor,
    config: RenderConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-rasterise ``N`` meshes into ``S x S`` crops.

    ``pixels (N, V, 2)`` crop coordinates, ``depth (N, V)`` camera z, ``colours (N, V, 3)``,
    ``triangles (F, 3)``, ``background (N, 3)``. Returns ``image (N, 3, S, S)`` and
    ``mask (N, S, S)`` in [0, 1]. Only the (triangle, pixel) pairs within ``5 σ`` of the
    triangle's bounding box are evaluated (beyond it ``D_j < 0.7 %``), so the cost is about the
    number of covered pixels, not pixels x triangles.
    """
    tri = pixels[:, triangles]  # (N, F, 3 vertices, 2)
    coeff, height = _edge_lines(tri)
    plane, low, high = _attribute_planes(depth, colours, triangles, coeff, height)
    pairs = _candidate_pairs(tri, config)
    x, y = pairs.px.to(pixels.dtype)[:, None], pairs.py.to(pixels.dtype)[:, None]
    k = coeff.reshape(-1, 3, 3)[pairs.which]  # (M, 3 edges, (a, b, c))
    inside = (k[..., 0] * x + k[..., 1] * y + k[..., 2]).min(dim=1).values  # (M,)
    q = plane.reshape(-1, 4, 3)[pairs.which]  # (M, 4 attributes, (a, b, c))
    values = q[..., 0] * x + q[..., 1] * y + q[..., 2]  # (M, 4)
    # outside a triangle, keep the extrapolation within its vertices' range (clamped barycentrics)
    values = torch.minimum(torch.maximum(values, low.reshape(-1, 4)[pairs.which]), high.reshape(-1, 4)[pairs.which])
    return _composite(pairs.pixel, inside, values, background, len(pixels), config)


def _edge_lines(tri: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Triangles ``(N, F, 3, 2)`` -> inward unit edge lines ``coeff (N, F, 3, 3)`` with
    ``dist_k(p) = coeff_k @ (x, y, 1)`` and each vertex's distance to its opposite edge ``height (N, F, 3, 1)``."""
    # edge k is opposite vertex k: the line through vertices k+1 and k+2
    p1, p2 = tri.roll(-1, dims=2), tri.roll(-2, dims=2)
    edge = p2 - p1
    normal = torch.stack([-edge[..., 1], edge[..., 0]], -1) / edge.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    offset = -(normal * p1).sum(-1, keepdim=True)
    height = (normal * tri).sum(-1, keepdim=True) + offset  # signed distance of the opposite vertex
    sign = torch.where(height >= 0, 1.0, -1.0).to(tri.dtype)
    coeff = torch.cat([normal, offset], -1) * sign  # inward unit normals
    return coeff, (height * sign).clamp(min=1e-4)


def _attribute_planes(
    depth: torch.Tensor, colours: torch.Tensor, triangles: torch.Tensor, coeff: torch.Tensor, height: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Colour and normalised inverse depth as screen-space planes ``(N, F, 4, 3)`` (``attr(p) = plane @ (x, y, 1)``)
    and their per-triangle vertex minimum and maximum ``(N, F, 4)``."""
    z = depth[:, triangles]  # (N, F, 3)
    z_near = depth.min(dim=1).values[:, None, None] - 1e-3
    z_far = depth.max(dim=1).values[:, None, None] + 1e-3
    inv = (z_far - z) / (z_far - z_near)  # 1 nearest, 0 farthest
    attrs = torch.cat([colours[:, triangles], inv[..., None]], -1)  # (N, F, 3 vertices, 4)
    # linear interpolation in screen space: barycentric_k(p) = dist_k(p) / height_k
    plane = (attrs / height).transpose(2, 3) @ coeff
    return plane, attrs.min(dim=2).values, attrs.max(dim=2).values


class _Pairs(NamedTuple):
    """Candidate (triangle, pixel) pairs, flat: ``which`` the flat (face, triangle) index, ``px``, ``py``
    the pixel column and row, ``pixel`` the flat (face, row, column) index."""

    which: torch.Tensor
    px: torch.Tensor
    py: torch.Tensor
    pixel: torch.Tensor


@torch.no_grad()
def _candidate_pairs(tri: torch.Tensor, config: RenderConfig) -> _Pairs:
    """Every pixel centre within ``5 σ`` of each triangle's bounding box (``tri (N, F, 3, 2)``)."""
    n, num_tri, s, device = tri.shape[0], tri.shape[1], config.size, tri.device
    margin = 5.0 * config.sigma
    lo = (tri.min(dim=2).values - margin).ceil().clamp(0, s - 1).long()  # (N, F, 2)
    hi = (tri.max(dim=2).values + margin).floor().clamp(-1, s - 1).long()
    extent = (hi - lo + 1).clamp(min=0)
    counts = (extent[..., 0] * extent[..., 1]).reshape(-1)
    which = torch.repeat_interleave(torch.arange(n * num_tri, device=device), counts)  # flat (n, f)
    first = torch.cumsum(counts, 0) - counts
    local = torch.arange(len(which), device=device) - first[which]
    width = extent.reshape(-1, 2)[which, 0]
    px = lo.reshape(-1, 2)[which, 0] + local % width.clamp(min=1)
    py = lo.reshape(-1, 2)[which, 1] + local // width.clamp(min=1)
    face = which // num_tri
    return _Pairs(which, px, py, face * s * s + py * s + px)


def _composite(
    pixel: torch.Tensor,
    inside: torch.Tensor,
    values: torch.Tensor,
    background: torch.Tensor,
    n: int,
    config: RenderConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-pixel softmax over its candidate triangles and the background, and the coverage mask.

    ``pixel (M,)``: each pair's flat pixel; ``inside (M,)``: its signed edge distance; ``values (M, 4)``:
    its colour and inverse depth; ``n`` meshes. Returns ``image (N, 3, S, S)`` and ``mask (N, S, S)``.
    """
    s, dtype, device = config.size, inside.dtype, inside.device
    colour = values[:, :3]
    logit = F.logsigmoid(inside / config.sigma) + values[:, 3] / config.gamma
    total = n * s * s
    bg_logit = config.epsilon / config.gamma
    peak = torch.full((total,), bg_logit, dtype=dtype, device=device)
    peak = peak.scatter_reduce(0, pixel, logit.detach(), reduce="amax")
    weight = torch.exp(logit - peak[pixel])
    bg_weight = torch.exp(bg_logit - peak)
    norm = bg_weight.index_add(0, pixel, weight)
    mixed = torch.zeros(total, 3, dtype=dtype, device=device).index_add(0, pixel, weight[:, None] * colour)
    bg = background[:, None, :].expand(n, s * s, 3).reshape(total, 3)
    image = (mixed + bg_weight[:, None] * bg) / norm[:, None]
    log_uncovered = torch.zeros(total, dtype=dtype, device=device).index_add(
        0, pixel, F.logsigmoid(-inside / config.sigma)
    )
    mask = 1.0 - torch.exp(log_uncovered)
    return image.reshape(n, s, s, 3).permute(0, 3, 1, 2), mask.reshape(n, s, s)


def render(
    vertices: torch.Tensor,
    albedo: torch.Tensor,
    triangles: torch.Tensor,
    p_cam: torch.Tensor,
    p_ill: torch.Tensor,
    config: RenderConfig,
    background: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render ``N`` faces: mesh ``vertices (N, V, 3)`` and ``albedo (N, V, 3)`` with camera
    ``p_cam (N, 7)`` and light ``p_ill (N, 9)`` -> ``image (N, 3, S, S)`` RGB, ``mask (N, S, S)``.
    ``background (N, 3)`` defaults to black."""
    points = to_camera(vertices, p_cam, config)
    colours = shade(points, albedo, triangles, p_ill, config)
    pixels = project(points, p_cam, config)
    if background is None:
        background = torch.zeros(len(vertices), 3, dtype=vertices.dtype, device=vertices.device)
    return rasterise(pixels, points[..., 2], colours, triangles, background, config)
