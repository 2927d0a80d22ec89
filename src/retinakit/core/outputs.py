"""The network's raw outputs, as every backend (PyTorch, ONNX Runtime) returns them."""

from __future__ import annotations

from typing import Any, NamedTuple

#: Names of the outputs, in order, in exported ONNX graphs.
OUTPUT_NAMES = ("box_deltas", "logits", "landmark_deltas")
#: The extra output of models with the dense regression branch.
DENSE_OUTPUT_NAME = "dense_params"
INPUT_NAME = "image"


class RawOutputs(NamedTuple):
    """Per-anchor predictions for a batch, in anchor order (see :mod:`retinakit.core.anchors`).

    ``box_deltas``: ``(B, A, 4)``; ``logits``: ``(B, A, 2)`` background/face class logits;
    ``landmark_deltas``: ``(B, A, 10)``. numpy arrays or torch tensors.
    """

    box_deltas: Any
    logits: Any
    landmark_deltas: Any


class DenseRawOutputs(NamedTuple):
    """:class:`RawOutputs` plus ``dense_params`` ``(B, A, 144)`` (``P_ST``, ``P_cam``, ``P_ill``; see
    :mod:`retinakit.models.dense`): the outputs of models with the dense regression branch."""

    box_deltas: Any
    logits: Any
    landmark_deltas: Any
    dense_params: Any


def raw_outputs(*outputs: Any) -> RawOutputs | DenseRawOutputs:
    """The outputs of a backend, in :data:`OUTPUT_NAMES` order (then ``dense_params`` if present)."""
    return DenseRawOutputs(*outputs) if len(outputs) == 4 else RawOutputs(*outputs)


def dense_params_of(raw: RawOutputs | DenseRawOutputs) -> Any:
    """``raw.dense_params``, or None for a model without the dense branch."""
    return getattr(raw, "dense_params", None)
