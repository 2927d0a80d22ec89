"""Reading and writing weights: our safetensors/checkpoint files and the public checkpoint layouts.

Every file retinakit writes carries its :class:`~retinakit.config.ModelConfig` (safetensors
metadata, or the ``config`` entry of a training checkpoint). Plain state dicts in one of the public
layouts of :mod:`retinakit.models.layouts` are recognised, renamed onto this implementation's names,
then loaded strictly.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from retinakit.config import CONFIG_KEY, ModelConfig, get_preset, stored_config
from retinakit.errors import CheckpointError
from retinakit.models.layouts import body_classhead, fx_class_head
from retinakit.models.retinaface import RetinaFace

logger = logging.getLogger(__name__)


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
            config = stored_config(path, meta[CONFIG_KEY]) if CONFIG_KEY in meta else None
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
    if fx_class_head.matches(state):
        state = fx_class_head.rename(state)
        if config is None:
            try:
                config = fx_class_head.guess_config(state)
            except ValueError as exc:
                raise CheckpointError(f"{path}: {exc}") from None
            logger.info(
                "%s: yakhyo/retinaface-pytorch layout; preset %r told by its keys and shapes", path, config.name
            )
    elif body_classhead.matches(state):
        if config is None:
            config = body_classhead.guess_config(state)
            logger.warning(
                "%s: biubug6-layout file without a stored config; assuming preset %r from its key names "
                "(pass the preset explicitly if it was trained otherwise, e.g. mobilenet0.25-relu)",
                path,
                config.name,
            )
        state = body_classhead.rename(state)
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
