"""Mesh decoder: the joint shape-and-texture code ``P_ST`` -> per-vertex position and colour.

A linear layer lifts the code onto the coarsest mesh level; Chebyshev convolutions and fixed
up-sampling matrices then refine it level by level up to the full mesh, whose last convolution
gives 6 numbers per vertex: a position offset from the mean shape and a colour logit offset from
the mean colours. The last layer starts at zero, so an untrained decoder outputs the mean face.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from retinakit.models.dense.chebconv import ChebConv, sparse_apply
from retinakit.models.dense.mesh import FaceMesh, load_face_mesh, scaled_laplacian, upsampling_matrix


class MeshDecoder(nn.Module):
    """``forward(code (N, code_dim)) -> (vertices (N, V, 3), colours (N, V, 3) in [0, 1])``.

    ``channels[l]``: feature width on mesh level ``l`` (finest first); ``k``: Chebyshev order.
    """

    def __init__(
        self,
        code_dim: int = 128,
        channels: tuple[int, ...] = (16, 32, 64),
        k: int = 6,
        mesh: FaceMesh | None = None,
    ) -> None:
        super().__init__()
        mesh = mesh or load_face_mesh()
        sizes = mesh.level_sizes
        if len(channels) != len(sizes):
            raise ValueError(f"{len(sizes)} mesh levels need {len(sizes)} channel widths, got {channels}")
        self.sizes = sizes
        self.channels = channels
        self.lift = nn.Linear(code_dim, sizes[-1] * channels[-1])
        # coarsest -> finest: one convolution per level, an up-sampling between levels
        self.convs = nn.ModuleList()
        for level in reversed(range(len(sizes))):
            lap = scaled_laplacian(mesh.edges[level], sizes[level], mesh.lambda_max[level])
            c_in = channels[min(level + 1, len(sizes) - 1)]
            self.convs.append(ChebConv(c_in, channels[level], k, lap))
        for level in range(len(sizes) - 1):
            up = upsampling_matrix(mesh.up_index[level], mesh.up_weight[level], sizes[level + 1])
            self.register_buffer(f"up_{level}", up, persistent=False)
        self.out = ChebConv(channels[0], 6, k, scaled_laplacian(mesh.edges[0], sizes[0], mesh.lambda_max[0]))
        nn.init.zeros_(self.out.weight)
        self.register_buffer("mean_vertices", torch.from_numpy(mesh.vertices.astype(np.float32)), persistent=False)
        colours = np.clip(mesh.colours.astype(np.float32), 0.02, 0.98)
        self.register_buffer("mean_colour_logits", torch.from_numpy(np.log(colours / (1 - colours))), persistent=False)

    def forward(self, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = code.shape[0]
        x = self.lift(code).reshape(n, self.sizes[-1], self.channels[-1])
        levels = len(self.sizes)
        for i, conv in enumerate(self.convs):
            level = levels - 1 - i
            x = nn.functional.elu(conv(x))
            if level > 0:
                x = sparse_apply(getattr(self, f"up_{level - 1}"), x)
        x = self.out(x)
        vertices = self.mean_vertices.to(x.dtype) + x[..., :3]
        colours = torch.sigmoid(self.mean_colour_logits.to(x.dtype) + x[..., 3:])
        return vertices, colours
