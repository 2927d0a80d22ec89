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
    scales: tuple[int, ...] = ()
    flip: bool = False
    merge: str = "vote"
    vote_iou: float = 0.4
    vote_score: str = "consensus"

    def detector_options(self) -> dict[str, object]:
        return {
            "scales": self.scales,
            "flip": self.flip,
            "merge": self.merge,
            "vote_iou": self.vote_iou,
            "vote_score": self.vote_score,
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
        Protocol(
            "paper",
            "paper 4.2: short sides 500-1700 (long side <= 2600), each plain and flipped, box voting at IoU 0.4",
            scales=(500, 800, 1100, 1400, 1700),
            flip=True,
        ),
    )
}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise KeyError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}") from None
