"""The errors retinakit raises on purpose: each message names the file (or input) and the problem.

Catch :class:`RetinakitError` to handle all of them; each also subclasses ``ValueError`` so existing
``except ValueError`` code keeps working.
"""

from __future__ import annotations


class RetinakitError(ValueError):
    """Base class of retinakit's own errors."""


class ImageError(RetinakitError):
    """An image that cannot be used. The message names the file (or input) and the problem."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class VideoError(RetinakitError):
    """A video or camera that cannot be opened or read; the message names it."""


class CheckpointError(RetinakitError):
    """A weights file that cannot be used; the message names the file and the problem."""


class ModelError(RetinakitError):
    """A model file that is not a usable RetinaFace model (wrong inputs/outputs or configuration)."""


class AnnotationError(RetinakitError):
    """A malformed annotation or result file; the message names the file and the line."""


class OutputError(RetinakitError):
    """An output that would overwrite an input or another output of the same run; the message names both."""


class InputError(RetinakitError):
    """A command-line input (file, folder, glob, camera) that yields no image; the message names it."""


class EvaluationError(RetinakitError):
    """An evaluation that has nothing to evaluate (no predictions, no readable image); the message says why."""


class DetectionError(RetinakitError):
    """An image whose forward pass failed (e.g. out of memory); the message says ``detection failed: ...``."""


class TrainingError(RetinakitError):
    """A training run that cannot go on (e.g. a loss that became NaN); the message says where and what to try."""
