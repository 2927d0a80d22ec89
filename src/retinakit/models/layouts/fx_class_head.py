"""The ``fx.`` / ``class_head.`` layout: the checkpoints of yakhyo/retinaface-pytorch (MIT).

That project publishes RetinaFace weights for MobileNetV1 x0.25 / x0.5 / x1, MobileNetV2 and
ResNet-18/34 (plus ResNet-50 code). Its state dicts name things as follows (facts from its public
``models/`` code):

- backbone under ``fx.`` (torchvision's ``IntermediateLayerGetter``; some copies of the code use
  ``body.``): ResNets and MobileNetV2 with torchvision's names; MobileNetV1 as ``stage1/2/3`` of
  blocks whose depthwise and pointwise halves are each a (conv ``0``, norm ``1``, act) sequence,
  i.e. ``stage2.0.1.0.weight`` is the pointwise conv of the first block of stage 2;
- ``fpn.output1..3`` (1x1 laterals), ``fpn.merge1..2``, ``ssh1..3.conv3X3 / conv5X5_1 /
  conv5X5_2 / conv7X7_2 / conv7x7_3``, each (conv ``0``, norm ``1``), as in biubug6's layout;
- heads ``class_head.class_head.N``, ``bbox_head.bbox_head.N``, ``landmark_head.landmark_head.N``
  (plain 1x1 convs; ``class_head.N.conv1x1`` in some copies).

Inputs are BGR minus (104, 117, 123); anchors and variances are biubug6's (see the
``yakhyo-*`` presets in :mod:`retinakit.config`).
"""

from __future__ import annotations

import re
from typing import Any

from retinakit.config import ModelConfig, get_preset

_HEADS = {"class_head": "cls", "bbox_head": "box", "landmark_head": "landmarks"}
# position inside a MobileNetV1 block: (half, layer) -> index in this implementation's block
_MOBILENET_V1_BLOCK = {("0", "0"): "0", ("0", "1"): "1", ("1", "0"): "3", ("1", "1"): "4"}

_BACKBONE = re.compile(r"^(?:fx|body)\.")
_MNV1 = re.compile(r"^backbone\.(stage\d)\.(\d+)\.([01])\.([01])\.")
_HEAD = re.compile(r"^(class_head|bbox_head|landmark_head)\.(?:\1\.)?(\d)\.(?:conv1x1\.)?")
_FPN = re.compile(r"^fpn\.(output|merge)(\d)\.")
_SSH = re.compile(r"^ssh(\d)\.conv(3X3|5X5_1|5X5_2|7X7_2|7x7_3)\.")


def matches(state: dict[str, Any]) -> bool:
    """True for a state dict in yakhyo/retinaface-pytorch naming (optionally ``module.``-prefixed)."""
    return any(k.removeprefix("module.").startswith(("class_head.", "bbox_head.")) for k in state)


def rename(state: dict[str, Any]) -> dict[str, Any]:
    """Rename a yakhyo-layout state dict onto :class:`~retinakit.models.retinaface.RetinaFace` names.

    Keys matching no rule are kept unchanged, so a strict load afterwards reports them.
    """
    out: dict[str, Any] = {}
    for key, value in state.items():
        key = _BACKBONE.sub("backbone.", key.removeprefix("module."))
        if m := _MNV1.match(key):
            stage, block, half, layer = m.groups()
            key = f"backbone.{stage}.{block}.{_MOBILENET_V1_BLOCK[half, layer]}." + key[m.end() :]
        elif m := _HEAD.match(key):
            key = f"heads.{_HEADS[m.group(1)]}.{m.group(2)}." + key[m.end() :]
        elif m := _FPN.match(key):
            kind = "lateral" if m.group(1) == "output" else "merge"
            key = f"fpn.{kind}.{int(m.group(2)) - 1}." + key[m.end() :]
        elif m := _SSH.match(key):
            key = f"context.{int(m.group(1)) - 1}.conv{m.group(2).lower()}." + key[m.end() :]
        out[key] = value
    return out


def guess_config(state: dict[str, Any]) -> ModelConfig:
    """The ``yakhyo-*`` preset of a yakhyo-layout state dict (already renamed), told by its shapes."""
    if "backbone.features.18.0.weight" in state:
        return get_preset("yakhyo-mobilenetv2")
    first = state.get("backbone.stage1.0.0.weight")
    if first is not None:
        widths = {8: "mobilenet0.25", 16: "mobilenet0.50", 32: "mobilenet1.0"}
        if int(first.shape[0]) in widths:
            return get_preset(f"yakhyo-{widths[int(first.shape[0])]}")
    if "backbone.layer1.0.conv3.weight" in state:
        return get_preset("yakhyo-resnet50")
    if "backbone.layer3.5.conv1.weight" in state:
        return get_preset("yakhyo-resnet34")
    if "backbone.layer3.1.conv1.weight" in state:
        return get_preset("yakhyo-resnet18")
    raise ValueError("a yakhyo/retinaface-pytorch layout with an unknown backbone")
