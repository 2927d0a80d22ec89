"""Named WIDER FACE test protocols: how images are resized and which thresholds are used."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Protocol:
    """A test-time protocol; its fields map onto :class:`~retinakit.detector.DetectorConfig`."""

    name: str
    description: str
    short_side: int | None = None
    max_side: int | None = None
    score_threshold: float = 0.02
    pre_nms_top_k: int = 5000
    nms_threshold: float = 0.4
    max_detections: int = 750

    def detector_options(self) -> dict[str, object]:
        return {
            "short_side": self.short_side,
            "max_side": self.max_side,
            "score_threshold": self.score_threshold,
            "pre_nms_top_k": self.pre_nms_top_k,
            "nms_threshold": self.nms_threshold,
            "max_detections": self.max_detections,
        }


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol("original", "original image size, no resize (biubug6 'origin_size')"),
        Protocol(
            "ss1600", "short side 1600, long side capped at 2150 (biubug6 default)", short_side=1600, max_side=2150
        ),
        Protocol("vga", "long side at most 640", max_side=640),
    )
}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise KeyError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}") from None
