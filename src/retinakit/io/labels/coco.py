"""COCO JSON labels (CVAT, Label Studio, Roboflow exports; :func:`retinakit.io.formats.to_coco`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from retinakit.errors import AnnotationError
from retinakit.io.labels.core import (
    Builder,
    ImageAnnotation,
    ImageRoot,
    LabelOptions,
    Problems,
    choose_category,
    keypoint_order,
    short,
)


def load_json(path: Path) -> Any:
    """The parsed file; a file that is not JSON raises naming the line and column, not the content."""
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise AnnotationError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"{path}: not a UTF-8 text file (byte {exc.start}: {exc.reason})") from None


def read_coco(path: Path, options: LabelOptions, problems: Problems) -> tuple[Path, list[ImageAnnotation]]:
    """Faces of the chosen category per image, in the file's image order (images without faces included)."""
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise AnnotationError(
            f"{path}: not a COCO file (expected an object with 'images', 'annotations', 'categories')"
        )
    categories = [c for c in data.get("categories") or [] if isinstance(c, dict)]
    category = choose_category(
        {c.get("id"): str(c.get("name", "")) for c in categories}, options.category, f"{path}: categories"
    )
    chosen = next(c for c in categories if c.get("id") == category)
    known = {c.get("id") for c in categories}
    images = _image_table(data["images"], path, problems)
    groups: dict[Any, list[dict[str, Any]]] = {key: [] for key in images}
    for ann in data.get("annotations") or []:
        where = f"{path}: annotation id {short(ann.get('id') if isinstance(ann, dict) else None, 20)}"
        if not isinstance(ann, dict):
            problems.error(f"{where}: not an object")
        elif ann.get("category_id") not in known:
            problems.error(f"{where}: unknown category_id {short(ann.get('category_id'), 20)}")
        elif ann.get("image_id") not in images:
            problems.error(f"{where}: image_id {short(ann.get('image_id'), 20)} is not in 'images'")
        elif ann.get("category_id") == category:
            groups[ann["image_id"]].append(ann)
    count = _keypoint_count(chosen, groups)
    order = keypoint_order(chosen.get("keypoints"), count, options.keypoints, f"{path}: category {category}")
    root = _root(path, options, images)
    files = ImageRoot(root, options.check_images)
    out = []
    for key, (name, size) in images.items():
        where = f"{path}: image id {short(key, 20)}"
        found = files.size(name, where, problems)
        if found is False:
            continue
        builder = Builder(name, size or found or None, problems)  # type: ignore[arg-type]
        for ann in groups[key]:
            _add(builder, ann, order, count, f"{path}: annotation id {short(ann.get('id'), 20)}", problems)
        out.append(builder.build())
    return root, out


def _image_table(records: list[Any], path: Path, problems: Problems) -> dict[Any, tuple[str, tuple[int, int] | None]]:
    """image id -> (file_name, (width, height) or None)."""
    out: dict[Any, tuple[str, tuple[int, int] | None]] = {}
    for k, rec in enumerate(records):
        if not isinstance(rec, dict) or "id" not in rec or not isinstance(rec.get("file_name"), str):
            problems.error(f"{path}: images[{k}]: needs an 'id' and a 'file_name'")
            continue
        w, h = rec.get("width"), rec.get("height")
        size = (
            (int(w), int(h))
            if isinstance(w, (int, float)) and isinstance(h, (int, float)) and w > 0 and h > 0
            else None
        )
        if rec["id"] in out:
            problems.error(f"{path}: images[{k}]: duplicate image id {short(rec['id'], 20)}")
            continue
        out[rec["id"]] = (rec["file_name"], size)
    return out


def _keypoint_count(category: dict[str, Any], groups: dict[Any, list[dict[str, Any]]]) -> int:
    """Keypoints per face: the category's names, else the first annotation that has keypoints."""
    names = category.get("keypoints")
    if isinstance(names, list) and names:
        return len(names)
    for anns in groups.values():
        for ann in anns:
            points = ann.get("keypoints")
            if isinstance(points, list) and points:
                return len(points) // 3
    return 0


def _root(path: Path, options: LabelOptions, images: dict[Any, tuple[str, tuple[int, int] | None]]) -> Path:
    """``--images``, else the JSON's folder, or an ``images`` folder beside it holding the first image."""
    if options.images is not None:
        return Path(options.images)
    first = next(iter(images.values()), None)
    beside = path.parent / "images"
    if first is not None and not (path.parent / first[0]).exists() and (beside / first[0]).exists():
        return beside
    return path.parent


def _add(
    builder: Builder, ann: dict[str, Any], order: np.ndarray | None, count: int, where: str, problems: Problems
) -> None:
    """One annotation: bbox, keypoints mapped by ``order`` (five indices), iscrowd as an ignore region."""
    bbox = ann.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
        problems.error(f"{where}: bbox must be 4 numbers [x, y, w, h], got {short(bbox)}")
        return
    x, y, w, h = (float(v) for v in bbox)
    points = None
    raw = ann.get("keypoints")
    if raw and order is not None:
        if not isinstance(raw, list) or len(raw) != 3 * count or not all(isinstance(v, (int, float)) for v in raw):
            n = len(raw) if isinstance(raw, list) else "no list of"
            problems.error(f"{where}: {n} keypoint values, expected {3 * count} ({count} keypoints x, y, v)")
            return
        kp = np.asarray(raw, dtype=np.float64).reshape(count, 3)[order]
        if (kp[:, 2] > 0).all():  # v = 0: not labelled; 1 labelled but hidden, 2 visible: both used
            points = kp[:, :2].astype(np.float32)
    builder.add(np.array([x, y, x + w, y + h], dtype=np.float32), points, where, crowd=bool(ann.get("iscrowd")))
