"""Evaluation: the official WIDER FACE protocol, submission files, landmark NME (needs the ``eval`` extra)."""

from retinakit.evaluation.wider import (
    SETTINGS,
    WiderGroundTruth,
    WiderResult,
    evaluate_wider,
    read_submission,
)

__all__ = [
    "SETTINGS",
    "WiderGroundTruth",
    "WiderResult",
    "evaluate_wider",
    "read_submission",
]
