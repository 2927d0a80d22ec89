"""Per-level 1x1 convolutions predicting the dense-regression parameters of every anchor:
the shape-and-texture code ``P_ST`` (128), camera ``P_cam`` (7) and illumination ``P_ill`` (9)."""

from __future__ import annotations

import torch
from torch import nn

#: Sizes of ``P_ST``, ``P_cam``, ``P_ill`` in that order (144 numbers per anchor).
DENSE_DIMS = (128, 7, 9)


def split_params(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(..., 144)`` -> ``P_ST (..., 128)``, ``P_cam (..., 7)``, ``P_ill (..., 9)``."""
    st, cam, _ = DENSE_DIMS
    return params[..., :st], params[..., st : st + cam], params[..., st + cam :]


class DenseHead(nn.Module):
    """``forward(feats: list of (B, C, H_i, W_i)) -> (B, A, 144)`` in anchor order (as
    :class:`~retinakit.models.heads.Heads`). Weights start small so that an untrained branch
    renders the mean face, frontal, filling the crop, under default light."""

    def __init__(self, channels: int, num_levels: int, anchors_per_location: int, shared: bool) -> None:
        super().__init__()
        self.dims = sum(DENSE_DIMS)
        self.shared = shared
        self.num_levels = num_levels
        n = 1 if shared else num_levels
        convs = [nn.Conv2d(channels, anchors_per_location * self.dims, 1) for _ in range(n)]
        for conv in convs:
            nn.init.normal_(conv.weight, std=1e-3)
            nn.init.zeros_(conv.bias)  # type: ignore[arg-type]
        self.convs = nn.ModuleList(convs)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        if len(feats) != self.num_levels:
            raise ValueError(f"dense head built for {self.num_levels} levels got {len(feats)}")
        out = []
        for i, f in enumerate(feats):
            x = self.convs[0 if self.shared else i](f)
            out.append(x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, self.dims))
        return torch.cat(out, 1)
