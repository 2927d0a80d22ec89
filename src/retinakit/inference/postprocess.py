"""The one post-processing path: raw outputs -> scored, decoded, suppressed faces per image.

Used by the Python API, the CLI, evaluation and every backend. Steps, per image: score filter on
the logits (before any decoding), top-k, decoding of boxes and landmarks of the survivors only,
NMS, keep-k, mapping back to the original image, clipping boxes to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from retinakit.core.box_coder import decode_boxes, decode_landmarks
from retinakit.core.boxes import nms
from retinakit.core.outputs import DenseRawOutputs, RawOutputs, dense_params_of
from retinakit.inference.preprocess import ImageFrame
from retinakit.result import FaceMeshes, Faces

#: ``(dense params (N, 144), boxes (N, 4) xyxy in network-input pixels) -> FaceMeshes`` in those pixels.
MeshDecoder = Callable[[np.ndarray, np.ndarray], "FaceMeshes | None"]


@dataclass(frozen=True)
class PostprocessConfig:
    """Thresholds of the post-processing.

    ``score_threshold``: keep anchors whose face probability is above it. ``pre_nms_top_k``: at most
    this many best anchors enter NMS. ``nms_threshold``: IoU above which the lower-scoring box is
    suppressed. ``max_detections``: faces kept per image after NMS.
    """

    score_threshold: float = 0.5
    pre_nms_top_k: int = 5000
    nms_threshold: float = 0.4
    max_detections: int = 750

    def __post_init__(self) -> None:
        if not 0.0 <= self.score_threshold < 1.0:
            raise ValueError(f"score_threshold must be in [0, 1), got {self.score_threshold}")
        if not 0.0 < self.nms_threshold <= 1.0:
            raise ValueError(f"nms_threshold must be in (0, 1], got {self.nms_threshold}")
        if self.pre_nms_top_k < 1 or self.max_detections < 1:
            raise ValueError("pre_nms_top_k and max_detections must be >= 1")


def face_scores(logits: np.ndarray) -> np.ndarray:
    """Face probability ``softmax(logits)[..., 1]`` of ``(..., 2)`` logits, computed stably."""
    diff = logits[..., 1].astype(np.float32) - logits[..., 0].astype(np.float32)
    return 1.0 / (1.0 + np.exp(-diff))


def postprocess_image(
    box_deltas: np.ndarray,
    logits: np.ndarray,
    landmark_deltas: np.ndarray,
    anchors: np.ndarray,
    variances: tuple[float, float],
    frame: ImageFrame,
    config: PostprocessConfig,
    dense_params: np.ndarray | None = None,
    mesh_decoder: MeshDecoder | None = None,
) -> Faces:
    """Faces of one image from its ``(A, 4)``, ``(A, 2)``, ``(A, 10)`` raw outputs and ``(A, 4)`` anchors.

    With ``(A, 144)`` ``dense_params`` and a ``mesh_decoder``, the kept faces carry their meshes."""
    t = config.score_threshold
    margin = math.log(t / (1.0 - t)) if t > 0 else -np.inf
    diff = logits[:, 1] - logits[:, 0]
    candidates = np.flatnonzero(diff > margin)
    if candidates.size > config.pre_nms_top_k:
        part = np.argpartition(-diff[candidates], config.pre_nms_top_k - 1)[: config.pre_nms_top_k]
        candidates = candidates[part]
    if candidates.size == 0:
        return Faces.empty()
    scores = face_scores(logits[candidates])
    sel_anchors = anchors[candidates]
    boxes = decode_boxes(box_deltas[candidates].astype(np.float32), sel_anchors, variances)
    keep = nms(boxes, scores, config.nms_threshold)[: config.max_detections]
    boxes, scores = boxes[keep], scores[keep]
    points = decode_landmarks(landmark_deltas[candidates[keep]].astype(np.float32), sel_anchors[keep], variances)
    scale = np.array([frame.scale_x, frame.scale_y], dtype=np.float32)
    meshes = None
    if dense_params is not None and mesh_decoder is not None:
        decoded = mesh_decoder(dense_params[candidates[keep]], boxes)
        if decoded is not None:
            xyz_scale = np.array([frame.scale_x, frame.scale_y, frame.scale_x], dtype=np.float32)
            meshes = FaceMeshes(decoded.vertices / xyz_scale, decoded.colors, decoded.triangles)
    boxes = (boxes.reshape(-1, 2, 2) / scale).reshape(-1, 4)
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, frame.width)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, frame.height)
    return Faces(boxes, scores, points / scale, meshes)


def postprocess(
    raw: RawOutputs | DenseRawOutputs,
    anchors: np.ndarray,
    variances: tuple[float, float],
    frames: Sequence[ImageFrame],
    config: PostprocessConfig,
    mesh_decoder: MeshDecoder | None = None,
) -> list[Faces]:
    """Faces for every image of a batch of raw outputs (numpy) sharing one ``(A, 4)`` anchor set;
    with ``raw.dense_params`` and a ``mesh_decoder``, with their meshes."""
    deltas, logits, points = (np.asarray(x) for x in raw[:3])
    if len(frames) != deltas.shape[0]:
        raise ValueError(f"{len(frames)} frames for a batch of {deltas.shape[0]}")
    if deltas.shape[1] != anchors.shape[0]:
        raise ValueError(f"network gave {deltas.shape[1]} predictions for {anchors.shape[0]} anchors")
    params = dense_params_of(raw)
    dense = None if params is None or mesh_decoder is None else np.asarray(params)
    return [
        postprocess_image(
            deltas[i],
            logits[i],
            points[i],
            anchors,
            variances,
            frame,
            config,
            None if dense is None else dense[i],
            mesh_decoder,
        )
        for i, frame in enumerate(frames)
    ]
