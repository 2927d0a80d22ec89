"""1x1 prediction heads for class logits, box deltas and landmark deltas."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Heads(nn.Module):
    """Per-level (or shared) 1x1 convs; outputs flattened to anchor order and concatenated.

    With ``shared=True`` one conv of each kind serves every level (the paper's shared heads);
    otherwise level ``i`` has its own ``cls[i]``, ``box[i]``, ``landmarks[i]``.
    """

    def __init__(
        self, channels: int, num_levels: int, anchors_per_location: int, num_landmarks: int, shared: bool
    ) -> None:
        super().__init__()
        n = 1 if shared else num_levels
        a = anchors_per_location
        self.shared = shared
        self.num_levels = num_levels
        self.landmark_dims = 2 * num_landmarks
        self.cls = nn.ModuleList(nn.Conv2d(channels, a * 2, 1) for _ in range(n))
        self.box = nn.ModuleList(nn.Conv2d(channels, a * 4, 1) for _ in range(n))
        self.landmarks = nn.ModuleList(nn.Conv2d(channels, a * 2 * num_landmarks, 1) for _ in range(n))

    @staticmethod
    def _flatten(x: torch.Tensor, k: int) -> torch.Tensor:
        # (B, A*k, H, W) -> (B, H*W*A, k): rows, then columns, then anchors.
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, k)

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if len(feats) != self.num_levels:
            raise ValueError(f"heads built for {self.num_levels} levels got {len(feats)}")
        boxes, logits, points = [], [], []
        for i, f in enumerate(feats):
            j = 0 if self.shared else i
            # the three 1x1 convs of a level as one conv over the concatenated filters (the same dot
            # products; an exported graph gets one Conv and a Split per level instead of three Convs)
            convs: tuple[nn.Conv2d, ...] = (self.box[j], self.cls[j], self.landmarks[j])  # type: ignore[assignment]
            weight = torch.cat([c.weight for c in convs])
            bias = torch.cat([c.bias for c in convs if c.bias is not None])
            box, cls, lmk = F.conv2d(f, weight, bias).split([c.out_channels for c in convs], dim=1)
            boxes.append(self._flatten(box, 4))
            logits.append(self._flatten(cls, 2))
            points.append(self._flatten(lmk, self.landmark_dims))
        return torch.cat(boxes, 1), torch.cat(logits, 1), torch.cat(points, 1)
