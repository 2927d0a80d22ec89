"""The network's raw outputs, as every backend (PyTorch, ONNX Runtime) returns them."""

from __future__ import annotations

from typing import Any, NamedTuple

#: Names of the outputs, in order, in exported ONNX graphs.
OUTPUT_NAMES = ("box_deltas", "logits", "landmark_deltas")
INPUT_NAME = "image"


class RawOutputs(NamedTuple):
    """Per-anchor predictions for a batch, in anchor order (see :mod:`retinakit.inference.anchors`).

    ``box_deltas``: ``(B, A, 4)``; ``logits``: ``(B, A, 2)`` background/face class logits;
    ``landmark_deltas``: ``(B, A, 10)``. numpy arrays or torch tensors.
    """

    box_deltas: Any
    logits: Any
    landmark_deltas: Any
