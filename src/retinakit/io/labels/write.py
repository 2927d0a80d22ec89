"""Writing a label set in each format (``retinakit labels convert``); the readers read every one back."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from retinakit.core.boxes import box_convert
from retinakit.core.images import image_size
from retinakit.io.labels.core import LANDMARK_NAMES, ImageAnnotation, LabelSet
from retinakit.io.labels.yolo import label_path, write_data_yaml

#: The COCO category retinakit writes: one ``face`` class with the five landmark names.
FACE_CATEGORY: dict[str, Any] = {
    "id": 1,
    "name": "face",
    "supercategory": "face",
    "keypoints": list(LANDMARK_NAMES),
    "skeleton": [[1, 2], [1, 3], [2, 3], [3, 4], [3, 5], [4, 5]],
}


def _num(v: float, decimals: int = 3) -> str:
    text = f"{v:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def write_labels(labels: LabelSet, fmt: str, out: str | os.PathLike) -> Path:
    """Write ``labels`` as ``fmt`` to ``out``: a file for ``retinaface``, ``wider`` and ``coco``, a
    dataset folder for ``yolo`` (``data.yaml``, ``labels/``, and ``images/`` holding links to the images).

    Crowd regions are kept by COCO only (``iscrowd``); the other formats have no place for them.
    """
    out = Path(out)
    if fmt == "yolo":
        return write_yolo(labels, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "retinaface":
        out.write_text("".join(_retinaface_block(a) for a in labels.images))
    elif fmt == "wider":
        out.write_text("".join(_wider_block(a) for a in labels.images))
    elif fmt == "coco":
        out.write_text(json.dumps(coco_dataset(labels.images, labels.root)))
    else:
        raise ValueError(f"unknown label format {fmt!r}")
    return out


def _xywh(boxes: np.ndarray) -> np.ndarray:
    return box_convert(boxes.astype(np.float64), "xyxy", "xywh")


def _retinaface_block(ann: ImageAnnotation) -> str:
    lines = [f"# {ann.image}"]
    for box, points, has in zip(_xywh(ann.boxes), ann.landmarks, ann.has_landmarks, strict=True):
        values = [_num(v) for v in box]
        if has:
            for x, y in points:
                values += [_num(float(x)), _num(float(y)), "0.0"]
        else:
            values += ["-1"] * 15
        lines.append(" ".join(values))
    return "\n".join(lines) + "\n"


def _wider_block(ann: ImageAnnotation) -> str:
    rows = [" ".join(_num(v) for v in box) + " 0 0 0 0 0 0" for box in _xywh(ann.boxes)]
    return "\n".join([ann.image, str(len(rows)), *(rows or ["0 0 0 0 0 0 0 0 0 0"])]) + "\n"


def _size(ann: ImageAnnotation, root: Path) -> tuple[int, int]:
    return ann.size if ann.size is not None else image_size(root / ann.image)


def coco_dataset(images: list[ImageAnnotation], root: Path) -> dict[str, Any]:
    """A COCO dataset of the faces (category :data:`FACE_CATEGORY`); crowd regions have ``iscrowd`` 1.

    Faces without landmarks get ``keypoints`` of zeros with visibility 0 and ``num_keypoints`` 0.
    """
    out_images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, ann in enumerate(images, start=1):
        w, h = _size(ann, root)
        out_images.append({"id": image_id, "file_name": ann.image, "width": int(w), "height": int(h)})
        faces = [(b, p, bool(k), 0) for b, p, k in zip(_xywh(ann.boxes), ann.landmarks, ann.has_landmarks, strict=True)]
        faces += [(b, None, False, 1) for b in _xywh(ann.ignore)]
        for box, points, has, crowd in faces:
            keypoints: list[float] = []
            for x, y in points if has and points is not None else np.zeros((5, 2)):
                keypoints += [round(float(x), 3), round(float(y), 3), 2 if has else 0]
            bbox = [round(float(v), 3) for v in box]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "bbox": bbox,
                    "area": round(bbox[2] * bbox[3], 3),
                    "iscrowd": crowd,
                    "keypoints": keypoints,
                    "num_keypoints": 5 if has else 0,
                }
            )
    return {"images": out_images, "annotations": annotations, "categories": [FACE_CATEGORY]}


def write_yolo(labels: LabelSet, out: Path) -> Path:
    """``out/data.yaml``, ``out/labels/<image>.txt`` and ``out/images/<image>``, a link to each image
    (YOLO takes every image under ``images`` as part of the set, so exactly these are linked)."""
    out.mkdir(parents=True, exist_ok=True)
    images = out / "images"
    root = labels.root.resolve()
    for ann in labels.images:
        w, h = _size(ann, labels.root)
        link = images / ann.image
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(root / ann.image)
        path = label_path(link)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "".join(
                _yolo_line(b, p, k, w, h) for b, p, k in zip(ann.boxes, ann.landmarks, ann.has_landmarks, strict=True)
            )
        )
    write_data_yaml(out / "data.yaml", "images")
    return out / "data.yaml"


def _yolo_line(box: np.ndarray, points: np.ndarray, has: bool, w: int, h: int) -> str:
    x1, y1, x2, y2 = (float(v) for v in box)
    values = [(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h]
    text = ["0", *(f"{v:.6f}" for v in values)]
    for x, y in points:
        text += [f"{float(x) / w:.6f}", f"{float(y) / h:.6f}", "2"] if has else ["0", "0", "0"]
    return " ".join(text) + "\n"
