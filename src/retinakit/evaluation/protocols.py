"""Named WIDER FACE test protocols: how images are resized, which thresholds and which TTA are used."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from retinakit.detector import DetectorConfig

#: Thresholds every protocol shares (the evaluation convention of the reference implementations):
#: score > 0.02, top 5,000 anchors into NMS at IoU 0.4, keep 750; fp32, so the published figures are
#: those of the float model (``--precision int8`` evaluates the int8 one). Every protocol pins a single
#: pass per scale (``resize="single"``), so the published figures stay reproducible whatever the
#: detector's default resize policy.
EVALUATION = DetectorConfig(
    precision="fp32",
    score_threshold=0.02,
    pre_nms_top_k=5000,
    nms_threshold=0.4,
    max_detections=750,
    resize="single",
)


@dataclass(frozen=True)
class Protocol:
    """A test-time protocol: a name, a description and the :class:`DetectorConfig` it runs with."""

    name: str
    description: str
    detector: DetectorConfig = EVALUATION

    def detector_config(self, **overrides: Any) -> DetectorConfig:
        """The protocol's detector settings with ``overrides`` (e.g. other weights or threads) applied."""
        return replace(self.detector, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "detector": asdict(self.detector)}


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol("original", "original image size, no resize (biubug6 'origin_size')"),
        Protocol(
            "auto",
            "the detector's default: original size plus the coarser passes large images need",
            replace(EVALUATION, resize="auto"),
        ),
        Protocol(
            "ss1600",
            "short side 1600, long side capped at 2150 (biubug6 default)",
            replace(EVALUATION, short_side=1600, max_side=2150),
        ),
        Protocol("vga", "long side at most 640", replace(EVALUATION, max_side=640)),
        Protocol(
            "paper",
            "paper 4.2: short sides 500-1700 (long side <= 2600), each plain and flipped, box voting at IoU 0.4",
            replace(EVALUATION, scales=(500, 800, 1100, 1400, 1700), flip=True),
        ),
    )
}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise KeyError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}") from None
