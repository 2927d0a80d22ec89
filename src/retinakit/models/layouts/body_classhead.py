"""The ``body.`` / ``ClassHead.`` layout: the checkpoints of biubug6/Pytorch_Retinaface (MIT), a layout many
public RetinaFace ports reuse.

Keys: ``body.*`` (backbone: MobileNet-0.25 ``stage1..3`` or ResNet-50 ``layer1..4``), ``fpn.output1..3``
and ``fpn.merge1..2``, ``ssh1..3.conv3X3 / conv5X5_1 / conv5X5_2 / conv7X7_2 / conv7x7_3``,
``ClassHead.N.conv1x1``, ``BboxHead.N.conv1x1``, ``LandmarkHead.N.conv1x1``; levels are 1-based.
Inputs are BGR minus (104, 117, 123).
"""

from __future__ import annotations

import re
from typing import Any

from retinakit.config import ModelConfig, get_preset
from retinakit.errors import CheckpointError

_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^body\."), "backbone."),
    (re.compile(r"^fpn\.output(\d)\."), "fpn.lateral.{0}."),
    (re.compile(r"^fpn\.merge(\d)\."), "fpn.merge.{0}."),
    (re.compile(r"^ssh(\d)\.conv3X3\."), "context.{0}.conv3x3."),
    (re.compile(r"^ssh(\d)\.conv5X5_1\."), "context.{0}.conv5x5_1."),
    (re.compile(r"^ssh(\d)\.conv5X5_2\."), "context.{0}.conv5x5_2."),
    (re.compile(r"^ssh(\d)\.conv7X7_2\."), "context.{0}.conv7x7_2."),
    (re.compile(r"^ssh(\d)\.conv7x7_3\."), "context.{0}.conv7x7_3."),
    (re.compile(r"^ClassHead\.(\d)\.conv1x1\."), "heads.cls.{0}."),
    (re.compile(r"^BboxHead\.(\d)\.conv1x1\."), "heads.box.{0}."),
    (re.compile(r"^LandmarkHead\.(\d)\.conv1x1\."), "heads.landmarks.{0}."),
]


def matches(state: dict[str, Any]) -> bool:
    """True for a state dict in this layout (optionally ``module.``-prefixed, as ``DataParallel`` saves it)."""
    return any(k.removeprefix("module.").startswith(("ClassHead.", "ssh1.")) for k in state)


def rename(state: dict[str, Any]) -> dict[str, Any]:
    """Rename a state dict of this layout onto :class:`RetinaFace` parameter names.

    Level numbers are 1-based there and 0-based here. Keys matching no rule are kept unchanged, so
    a strict load afterwards reports them.
    """
    out: dict[str, Any] = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        for pattern, template in _RULES:
            m = pattern.match(key)
            if m:
                groups = m.groups()
                if key.startswith(("fpn.", "ssh")):
                    groups = tuple(str(int(g) - 1) for g in groups)
                key = template.format(*groups) + key[m.end() :]
                break
        out[key] = value
    return out


def guess_config(state: dict[str, Any]) -> ModelConfig:
    """The preset of a checkpoint of this layout: MobileNet-0.25 (``body.stage1``) or ResNet-50 (``body.layer1``).

    The key layout does not tell the activation or the anchors: files of the ReLU variant need
    ``mobilenet0.25-relu`` passed explicitly (``--model``).
    """
    keys = [k.removeprefix("module.") for k in state]
    if any(k.startswith("body.stage1.") for k in keys):
        return get_preset("mobilenet0.25")
    if any(k.startswith("body.layer1.") for k in keys):
        return get_preset("resnet50")
    raise CheckpointError("not a MobileNet-0.25 or ResNet-50 checkpoint of the body./ClassHead. layout")
