"""The RetinaFace network: backbone -> FPN -> context modules -> heads, returning raw outputs."""

from __future__ import annotations

import torch
from torch import nn

from retinakit.config import ModelConfig, get_preset
from retinakit.inference.outputs import RawOutputs
from retinakit.models.backbones import build_backbone
from retinakit.models.heads import Heads
from retinakit.models.neck import FPN, SSH


class RetinaFace(nn.Module):
    """RetinaFace built from a :class:`~retinakit.config.ModelConfig`; loads no weights itself.

    ``forward(images (B, 3, H, W) float, preprocessed)`` returns :class:`~retinakit.inference.outputs.RawOutputs`
    (box deltas, class logits, landmark deltas) in anchor order. No softmax, no decoding: the shared
    post-processing does that for training, evaluation, ONNX and the CLI alike.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.backbone, config.backbone_levels, config.leaky)
        if tuple(self.backbone.strides) != tuple(config.backbone_levels):
            raise ValueError(f"backbone gives strides {self.backbone.strides}, config wants {config.backbone_levels}")
        c = config.fpn_channels
        self.fpn = FPN(self.backbone.channels, c, config.neck_slope, config.extra_p6, config.context_conv)
        num_levels = len(config.pyramid_strides)
        self.context = nn.ModuleList(SSH(c, c, config.neck_slope, config.context_conv) for _ in range(num_levels))
        self.heads = Heads(c, num_levels, config.anchors.num_per_location, config.num_landmarks, config.share_heads)

    def forward(self, images: torch.Tensor) -> RawOutputs:
        feats = self.fpn(self.backbone(images))
        feats = [ctx(f) for ctx, f in zip(self.context, feats, strict=True)]
        return RawOutputs(*self.heads(feats))


def build_model(config: ModelConfig | str) -> RetinaFace:
    """A randomly initialised RetinaFace for a config or a preset name."""
    return RetinaFace(get_preset(config) if isinstance(config, str) else config)
