"""The dense regression branch as one module: per-anchor parameter head, mesh decoder and the
renderer settings; :mod:`retinakit.models.retinaface` adds it when ``ModelConfig.dense`` is on."""

from __future__ import annotations

import torch
from torch import nn

from retinakit.models.dense.decoder import MeshDecoder
from retinakit.models.dense.head import DenseHead, split_params
from retinakit.models.dense.mesh import load_face_mesh
from retinakit.models.dense.renderer import RenderConfig, render


class DenseBranch(nn.Module):
    """``forward(feats) -> (B, A, 144)`` parameters per anchor; ``reconstruct`` and ``render``
    turn selected anchors' parameters into meshes and rendered crops."""

    triangles: torch.Tensor

    def __init__(
        self,
        channels: int,
        num_levels: int,
        anchors_per_location: int,
        shared: bool,
        render_config: RenderConfig | None = None,
    ) -> None:
        super().__init__()
        self.head = DenseHead(channels, num_levels, anchors_per_location, shared)
        self.decoder = MeshDecoder()
        self.render_config = render_config or RenderConfig()
        self.register_buffer("triangles", torch.from_numpy(load_face_mesh().triangles), persistent=False)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.head(feats)

    def reconstruct(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``params (N, 144)`` -> mesh ``vertices (N, V, 3)`` (mesh frame) and ``albedo (N, V, 3)``."""
        return self.decoder(split_params(params)[0])

    def render(self, params: torch.Tensor, background: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``params (N, 144)`` -> rendered crops ``(N, 3, S, S)`` RGB and coverage ``(N, S, S)``."""
        _, p_cam, p_ill = split_params(params)
        vertices, albedo = self.reconstruct(params)
        return render(vertices, albedo, self.triangles, p_cam, p_ill, self.render_config, background)
