"""The RetinaFace network: backbone -> FPN -> context modules -> heads, returning raw outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from retinakit.config import ModelConfig, get_preset
from retinakit.core.outputs import DenseRawOutputs, RawOutputs
from retinakit.models.backbones import build_backbone
from retinakit.models.heads import Heads
from retinakit.models.neck import FPN, SSH

if TYPE_CHECKING:
    from retinakit.models.dense.branch import DenseBranch


class RetinaFace(nn.Module):
    """RetinaFace built from a :class:`~retinakit.config.ModelConfig`; loads no weights itself.

    ``forward(images (B, 3, H, W) float, preprocessed)`` returns :class:`~retinakit.core.outputs.RawOutputs`
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
        self.dense: DenseBranch | None = None
        if config.dense:
            from retinakit.models.dense.branch import DenseBranch

            self.dense = DenseBranch(c, num_levels, config.anchors.num_per_location, config.share_heads)

    def forward(self, images: torch.Tensor) -> RawOutputs | DenseRawOutputs:
        feats = self.fpn(self.backbone(images))
        feats = [ctx(f) for ctx, f in zip(self.context, feats, strict=True)]
        if self.dense is None:
            return RawOutputs(*self.heads(feats))
        boxes, logits, points = self.heads(feats)
        return DenseRawOutputs(boxes, logits, points, self.dense(feats))


def build_model(config: ModelConfig | str) -> RetinaFace:
    """A randomly initialised RetinaFace for a config or a preset name."""
    return RetinaFace(get_preset(config) if isinstance(config, str) else config)


def without_dense(model: RetinaFace) -> RetinaFace:
    """The same detector without its dense branch (eval mode): three outputs, as fast as a model
    never trained with it; for deployments that need boxes and landmarks only."""
    from dataclasses import replace

    plain = RetinaFace(replace(model.config, dense=False))
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("dense.")}, strict=True)
    return plain.eval()
