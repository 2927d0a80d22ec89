"""The detection result: parallel arrays of boxes, scores and landmarks for one image."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Face:
    """One detected face (a row of :class:`Faces`)."""

    box: np.ndarray  # (4,) xyxy float pixels
    score: float
    landmarks: np.ndarray  # (5, 2) x, y in FaceLandmark order


@dataclass(frozen=True, eq=False)
class FaceMeshes:
    """Dense 3D faces (models with the dense branch, see :mod:`retinakit.models.dense`).

    ``vertices``: ``(N, V, 3)`` float32, x and y in pixels of the original image, z the depth
    relative to the face centre in the same pixel scale (larger: farther from the camera).
    ``colors``: ``(N, V, 3)`` float32 RGB albedo in [0, 1] (``colours``: the same, the spelling of
    earlier releases). ``triangles``: ``(F, 3)`` int vertex
    indices, shared by every face (the packaged face mesh's fixed topology).
    """

    vertices: np.ndarray
    colors: np.ndarray
    triangles: np.ndarray

    @property
    def colours(self) -> np.ndarray:
        return self.colors

    def __len__(self) -> int:
        return len(self.vertices)

    def __getitem__(self, index: Any) -> FaceMeshes:
        return FaceMeshes(self.vertices[index], self.colors[index], self.triangles)


@dataclass(frozen=True, eq=False)
class Faces:
    """Faces found in one image.

    ``boxes``: ``(N, 4)`` float32, ``x1, y1, x2, y2`` in pixels of the original image (continuous
    coordinates: the image spans ``[0, width] x [0, height]``).
    ``scores``: ``(N,)`` float32 face probabilities, highest first as produced by the detector.
    ``landmarks``: ``(N, 5, 2)`` float32 ``(x, y)`` in :class:`retinakit.FaceLandmark` order.
    ``meshes``: each face's dense 3D mesh, only from models with the dense branch run on the
    torch backend (else None).
    ``angles``: ``(N,)`` int, only from a detector run with ``orientations`` (else None): the
    rotation, in degrees counter-clockwise (0, 90, 180 or 270), that made this face upright in the
    pass that found it. Boxes and landmarks are always in the input image's own frame.

    >>> import numpy as np
    >>> faces = Faces(np.array([[10, 10, 50, 60], [0, 0, 8, 8]]), np.array([0.99, 0.4]), np.zeros((2, 5, 2)))
    >>> len(faces), len(faces[faces.scores > 0.5]), Faces.empty().boxes.shape
    (2, 1, (0, 4))
    >>> [face.box.tolist() for face in faces][0]       # iterating gives one Face each
    [10.0, 10.0, 50.0, 60.0]
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray
    meshes: FaceMeshes | None = None
    angles: np.ndarray | None = None

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        landmarks = np.asarray(self.landmarks, dtype=np.float32).reshape(-1, 5, 2)
        if not len(boxes) == len(scores) == len(landmarks):
            raise ValueError(
                f"boxes ({len(boxes)}), scores ({len(scores)}) and landmarks ({len(landmarks)}) "
                "must have the same length"
            )
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "landmarks", landmarks)
        if self.meshes is not None and len(self.meshes) != len(boxes):
            raise ValueError(f"{len(self.meshes)} meshes for {len(boxes)} faces")
        if self.angles is not None:
            angles = np.asarray(self.angles, dtype=np.int64).reshape(-1)
            if len(angles) != len(boxes):
                raise ValueError(f"{len(angles)} angles for {len(boxes)} faces")
            object.__setattr__(self, "angles", angles)

    @staticmethod
    def empty() -> Faces:
        """No faces, with arrays of the right shapes and dtypes."""
        return Faces(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)))

    @staticmethod
    def merge(parts: Sequence[Faces]) -> Faces:
        """All faces of ``parts`` in one result (no suppression)."""
        if not parts:
            return Faces.empty()
        meshes = None
        if all(p.meshes is not None for p in parts):
            meshes = FaceMeshes(
                np.concatenate([p.meshes.vertices for p in parts]),  # type: ignore[union-attr]
                np.concatenate([p.meshes.colors for p in parts]),  # type: ignore[union-attr]
                parts[0].meshes.triangles,  # type: ignore[union-attr]
            )
        angles = None
        if any(p.angles is not None for p in parts):
            angles = np.concatenate([p.angles if p.angles is not None else np.zeros(len(p), np.int64) for p in parts])
        return Faces(
            np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.landmarks for p in parts]),
            meshes,
            angles,
        )

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, index: Any) -> Faces:
        """Select faces by boolean mask, integer array or slice; an int gives a 1-face result."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        meshes = None if self.meshes is None else self.meshes[index]
        angles = None if self.angles is None else self.angles[index]
        return Faces(self.boxes[index], self.scores[index], self.landmarks[index], meshes, angles)

    def __iter__(self) -> Iterator[Face]:
        for box, score, points in zip(self.boxes, self.scores, self.landmarks, strict=True):
            yield Face(box=box, score=float(score), landmarks=points)

    def __repr__(self) -> str:
        return f"Faces(n={len(self)}, scores={np.round(self.scores[:5], 3).tolist()}{'...' if len(self) > 5 else ''})"

    @property
    def widths(self) -> np.ndarray:
        return self.boxes[:, 2] - self.boxes[:, 0]

    @property
    def heights(self) -> np.ndarray:
        return self.boxes[:, 3] - self.boxes[:, 1]

    def to_list(self, decimals: int | None = 2) -> list[dict[str, Any]]:
        """One dict per face: ``box`` [x1, y1, x2, y2], ``score``, ``landmarks`` [[x, y] x 5]."""
        from retinakit.records import to_records

        return to_records(self, decimals)

    def to_json(self, decimals: int | None = 2) -> str:
        """The faces as a JSON array of :meth:`to_list` records."""
        import json

        return json.dumps(self.to_list(decimals))

    def to_wider(self) -> np.ndarray:
        """``(N, 5)`` WIDER submission rows ``x, y, w, h, score`` (see :mod:`retinakit.records`)."""
        from retinakit.records import to_wider_rows

        return to_wider_rows(self)

    def align(self, image: Any, size: int = 112) -> np.ndarray:
        """``(N, size, size, 3)`` crops aligned to the ArcFace template (see :mod:`retinakit.ops.align`).

        ``image`` is the image these faces were found in: a numpy array (crops keep its channel
        order), a path (read as BGR, like OpenCV) or a PIL image (RGB).
        """
        from retinakit.core.images import as_array
        from retinakit.ops.align import align_faces

        return align_faces(as_array(image), self.landmarks, size)

    def anonymize(self, image: Any, method: str = "blur", **options: Any) -> np.ndarray:
        """A copy of ``image`` with these faces hidden (see :mod:`retinakit.ops.masks`).

        ``method``: ``blur``, ``pixelate`` or ``solid``; ``options``: other
        :class:`~retinakit.ops.masks.AnonymizeConfig` fields (``shape="rectangle"``, ``margin=0.25`` ...).
        ``image`` as in :meth:`align`; the copy keeps its channel order.
        """
        from retinakit.core.images import as_array
        from retinakit.ops.masks import AnonymizeConfig, anonymize_image

        config = AnonymizeConfig(method=method, **options)  # type: ignore[arg-type]
        return anonymize_image(as_array(image), self.boxes, config)

    def anonymise(self, image: Any, method: str = "blur", **options: Any) -> np.ndarray:
        """The spelling of earlier releases of :meth:`anonymize`, kept for one release."""
        return self.anonymize(image, method, **options)

    def to_supervision(self, keypoints: bool = False) -> Any:
        """``supervision.Detections`` of these faces (landmarks in ``data["landmarks"]``), or with
        ``keypoints=True`` ``supervision.KeyPoints`` of the landmarks. Needs the 'supervision' extra."""
        from retinakit.records import to_detections, to_keypoints

        return to_keypoints(self) if keypoints else to_detections(self)

    def to_coco(self, file_name: str, width: int, height: int) -> dict[str, Any]:
        """A one-image COCO-style dataset of these faces (see :func:`retinakit.records.to_coco`)."""
        from retinakit.records import to_coco

        return to_coco([(file_name, width, height, self)])
