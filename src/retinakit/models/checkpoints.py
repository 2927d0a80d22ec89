"""Reading and writing weights: our safetensors/checkpoint files and the public biubug6 layout.

Every file retinakit writes carries its :class:`~retinakit.config.ModelConfig` (safetensors
metadata, or the ``config`` entry of a training checkpoint). Plain state dicts in the biubug6
``Pytorch_Retinaface`` layout (``body.*``, ``fpn.output1.*``, ``ssh1.*``, ``ClassHead.*`` ...) are
recognised and renamed onto this implementation's names, then loaded strictly; so are those of
yakhyo/retinaface-pytorch (:mod:`retinakit.models.yakhyo`).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import torch

from retinakit.config import CONFIG_KEY, ModelConfig, get_preset
from retinakit.errors import CheckpointError
from retinakit.models.retinaface import RetinaFace
from retinakit.models.yakhyo import from_yakhyo, guess_yakhyo_config, is_yakhyo_layout

logger = logging.getLogger(__name__)

_BIUBUG6_RULES: list[tuple[re.Pattern[str], str]] = [
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


def is_biubug6_layout(state: dict[str, Any]) -> bool:
    """True for a state dict in the biubug6/Pytorch_Retinaface naming (optionally ``module.``-prefixed)."""
    return any(k.removeprefix("module.").startswith(("ClassHead.", "ssh1.")) for k in state)


def from_biubug6(state: dict[str, Any]) -> dict[str, Any]:
    """Rename a biubug6-layout state dict onto :class:`RetinaFace` parameter names.

    Level numbers are 1-based there and 0-based here. Keys matching no rule are kept unchanged, so
    a strict load afterwards reports them.
    """
    out: dict[str, Any] = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        for pattern, template in _BIUBUG6_RULES:
            m = pattern.match(key)
            if m:
                groups = m.groups()
                if key.startswith(("fpn.", "ssh")):
                    groups = tuple(str(int(g) - 1) for g in groups)
                key = template.format(*groups) + key[m.end() :]
                break
        out[key] = value
    return out


def guess_biubug6_config(state: dict[str, Any]) -> ModelConfig:
    """The preset of a biubug6 checkpoint: MobileNet-0.25 (``body.stage1``) or ResNet-50 (``body.layer1``).

    The key layout does not tell the activation or the anchors: files of the ReLU variant need
    ``mobilenet0.25-relu`` passed explicitly (``--model``).
    """
    keys = [k.removeprefix("module.") for k in state]
    if any(k.startswith("body.stage1.") for k in keys):
        return get_preset("mobilenet0.25")
    if any(k.startswith("body.layer1.") for k in keys):
        return get_preset("resnet50")
    raise CheckpointError("not a MobileNet-0.25 or ResNet-50 biubug6 checkpoint")


def read_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], ModelConfig | None]:
    """State dict (in this implementation's names) and the config stored with it, if any."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
            config = ModelConfig.from_json(meta[CONFIG_KEY]) if CONFIG_KEY in meta else None
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
            config = None
            if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
                config = ModelConfig.from_dict(obj["config"]) if "config" in obj else None
                state = obj["model"]
            elif isinstance(obj, dict) and "state_dict" in obj:
                state = obj["state_dict"]
            else:
                state = obj
    except CheckpointError:
        raise
    except Exception as exc:  # corrupt file, wrong format: report it with the file name
        raise CheckpointError(f"{path}: cannot read weights ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: does not hold a state dict of tensors")
    if is_yakhyo_layout(state):
        state = from_yakhyo(state)
        if config is None:
            try:
                config = guess_yakhyo_config(state)
            except ValueError as exc:
                raise CheckpointError(f"{path}: {exc}") from None
            logger.info(
                "%s: yakhyo/retinaface-pytorch layout; preset %r told by its keys and shapes", path, config.name
            )
    elif is_biubug6_layout(state):
        if config is None:
            config = guess_biubug6_config(state)
            logger.warning(
                "%s: biubug6-layout file without a stored config; assuming preset %r from its key names "
                "(pass the preset explicitly if it was trained otherwise, e.g. mobilenet0.25-relu)",
                path,
                config.name,
            )
        state = from_biubug6(state)
    else:
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state, config


def load_model(path: str | os.PathLike, config: ModelConfig | str | None = None) -> RetinaFace:
    """A :class:`RetinaFace` in eval mode with the weights of ``path`` loaded strictly.

    ``config`` (a config or a preset name) is needed only for files that carry none and whose
    layout does not tell it (a foreign state dict).
    """
    if isinstance(config, str):
        config = get_preset(config)
    state, stored = read_weights(path)
    config = config or stored
    if config is None:
        raise CheckpointError(f"{path}: carries no model config; pass the model preset it was trained as")
    model = RetinaFace(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit model {config.name!r}: {exc}") from None
    return model.eval()


def save_safetensors(model: RetinaFace, path: str | os.PathLike) -> None:
    """Write the model's weights and config to a safetensors file."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={CONFIG_KEY: model.config.to_json()})
