"""YOLO (pose) labels: ``images/**/name.jpg`` with ``labels/**/name.txt``, described by a ``data.yaml``."""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Any

import numpy as np

from retinakit.errors import AnnotationError
from retinakit.io.labels.core import (
    IMAGE_SUFFIXES,
    Builder,
    ImageAnnotation,
    ImageRoot,
    LabelOptions,
    Problems,
    choose_category,
    keypoint_order,
    short,
)
from retinakit.io.text import read_lines

#: ``flip_idx`` of the five landmarks (the keypoint each becomes in a mirrored image), for data.yaml.
FLIP_IDX = [1, 0, 2, 4, 3]


def parse_yaml(path: Path) -> dict[str, Any]:
    """A ``data.yaml`` as a dict: PyYAML when installed, else :func:`parse_simple_yaml`."""
    text = "\n".join(read_lines(path))
    try:
        import yaml
    except ImportError:
        return parse_simple_yaml(text, path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise AnnotationError(f"{path}: not valid YAML{at}") from None
    if not isinstance(data, dict):
        raise AnnotationError(f"{path}: not a YOLO data.yaml (expected 'key: value' lines)")
    return data


def parse_simple_yaml(text: str, path: Path) -> dict[str, Any]:
    """The subset of YAML a ``data.yaml`` uses: top-level ``key: value`` scalars and ``[a, b]`` lists,
    and a block of ``- item`` or ``n: name`` lines under a key with no value (e.g. ``names``)."""
    out: dict[str, Any] = {}
    block: str | None = None
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indented = line[0] in " \t"
        key, sep, value = line.strip().partition(":")
        if indented and block is not None:
            if line.strip().startswith("- "):
                if not isinstance(out[block], list):
                    out[block] = []
                out[block].append(_scalar(line.strip()[2:]))
                continue
            if sep:
                if not isinstance(out[block], dict):
                    out[block] = {}
                out[block][_scalar(key)] = _scalar(value)
                continue
        if indented or not sep:
            raise AnnotationError(f"{path}:{n}: unsupported YAML (install PyYAML): {short(line.strip())}")
        key, value = key.strip(), value.strip()
        block = key if not value else None
        out[key] = _scalar(value) if value else {}
    return out


def _scalar(text: str) -> Any:
    text = text.strip()
    if text.startswith(("[", "{")) or text[:1].isdigit() or text[:1] == "-":
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            pass
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return {"true": True, "false": False, "null": None, "~": None}.get(text.lower(), text)


def _names(value: Any) -> dict[Any, str]:
    if isinstance(value, dict):
        return {int(k) if str(k).isdigit() else k: str(v) for k, v in value.items()}
    if isinstance(value, list):
        return {i: str(v) for i, v in enumerate(value)}
    return {}


def _dataset(path: Path, options: LabelOptions) -> tuple[Path, dict[str, Any]]:
    """The image folder of the split and the data.yaml settings (empty for a bare folder)."""
    yaml_path = path if path.is_file() else path / "data.yaml"
    if not yaml_path.is_file():
        return (path / "images" if (path / "images").is_dir() else path), {}
    data = parse_yaml(yaml_path)
    base = Path(str(data.get("path") or ""))
    base = base if base.is_absolute() else yaml_path.parent / base
    split = data.get(options.split)
    if split is None:
        raise AnnotationError(f"{yaml_path}: no {options.split!r} entry (splits: {', '.join(_splits(data)) or 'none'})")
    if isinstance(split, list):
        raise AnnotationError(f"{yaml_path}: {options.split!r} lists several folders; give one folder per split")
    images = Path(str(split))
    images = images if images.is_absolute() else base / images
    return images, data


def _splits(data: dict[str, Any]) -> list[str]:
    return [k for k in ("train", "val", "test") if k in data]


def label_path(image: Path) -> Path:
    """The label file of an image, as YOLO finds it: the last ``images`` folder becomes ``labels``."""
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def read_yolo(path: Path, options: LabelOptions, problems: Problems) -> tuple[Path, list[ImageAnnotation]]:
    """Every image under the split's folder (sorted), with the faces of its label file (none if absent)."""
    root, data = _dataset(path, options)
    if options.images is not None:
        root = Path(options.images)
    if not root.is_dir():
        raise AnnotationError(f"{path}: image folder {root} not found")
    shape = data.get("kpt_shape")
    if shape is not None and not (
        isinstance(shape, list) and len(shape) == 2 and all(isinstance(v, int) for v in shape) and shape[1] in (2, 3)
    ):
        raise AnnotationError(f"{path}: kpt_shape must be [keypoints, 2 or 3], got {short(shape)}")
    names = _names(data.get("names"))
    face = choose_category(names, options.category, f"{path}: names") if names else _class_id(options.category, path)
    order = None
    if shape is not None:
        order = keypoint_order(data.get("kpt_names"), shape[0], options.keypoints, f"{path}: kpt_shape")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    sizes = ImageRoot(root, True)
    out = []
    for image in files:
        name = image.relative_to(root).as_posix()
        size = sizes.size(name, str(label_path(image)), problems)
        if not size:
            continue
        builder = Builder(name, size, problems)  # type: ignore[arg-type]
        labels = label_path(image)
        if labels.is_file():
            _read_label_file(labels, builder, face, names, shape, order, problems)
        out.append(builder.build())
    return root, out


def _class_id(wanted: str | None, path: Path) -> int:
    if wanted is None:
        return 0
    if not wanted.isdigit():
        raise AnnotationError(f"{path}: no class names to find {short(wanted)} in; give the class number")
    return int(wanted)


def _read_label_file(
    path: Path,
    builder: Builder,
    face: Any,
    names: dict[Any, str],
    shape: list[int] | None,
    order: np.ndarray | None,
    problems: Problems,
) -> None:
    """The faces of one label file: ``class cx cy w h [x y (v)] * K``, normalised to [0, 1]."""
    assert builder.size is not None
    w, h = builder.size
    for n, raw in enumerate(read_lines(path), start=1):
        line = raw.strip()
        if not line:
            continue
        where = f"{path}:{n}"
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            problems.error(f"{where}: not numbers: {short(line)}")
            continue
        k, dims = (shape[0], shape[1]) if shape is not None else _infer_shape(len(values))
        if len(values) != 5 + k * dims:
            problems.error(f"{where}: {len(values)} values, expected 5 (class cx cy w h) + {k} keypoints x {dims}")
            continue
        if values[0] != int(values[0]) or (names and int(values[0]) not in names):
            problems.error(f"{where}: unknown class {values[0]:g} (classes: {', '.join(map(str, list(names)[:10]))})")
            continue
        if int(values[0]) != face:
            continue
        _add_face(builder, np.asarray(values[1:]), k, dims, order, w, h, where, problems)


def _infer_shape(count: int) -> tuple[int, int]:
    """Keypoints per face without a data.yaml: none (5 values), 5 x 3 (20) or 5 x 2 (15)."""
    return {5: (0, 3), 20: (5, 3), 15: (5, 2)}.get(count, (0, 3))


def _add_face(
    builder: Builder,
    values: np.ndarray,
    k: int,
    dims: int,
    order: np.ndarray | None,
    w: int,
    h: int,
    where: str,
    problems: Problems,
) -> None:
    points = values[4:].reshape(k, dims) if k else np.zeros((0, dims))
    checked = np.concatenate([values[:4], points[:, :2].reshape(-1)])
    bad = np.flatnonzero(~((checked >= 0) & (checked <= 1)))
    if len(bad):
        names = ["cx", "cy", "w", "h"] + [f"keypoint {i // 2 + 1} {'xy'[i % 2]}" for i in range(2 * k)]
        problems.error(f"{where}: {names[bad[0]]} = {checked[bad[0]]:g} outside [0, 1] (YOLO values are normalised)")
        return
    cx, cy, bw, bh = values[:4] * np.array([w, h, w, h])
    box = np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dtype=np.float32)
    landmarks = None
    if k and order is None:
        order = keypoint_order(None, k, None, where)
    if order is not None and k:
        chosen = points[order]
        visible = chosen[:, 2] > 0 if dims == 3 else np.ones(5, dtype=bool)
        if visible.all():
            landmarks = (chosen[:, :2] * np.array([w, h])).astype(np.float32)
    builder.add(box, landmarks, where)


def write_data_yaml(path: Path, images: str, names: tuple[str, ...] = ("face",)) -> None:
    """A data.yaml for a face dataset with the five landmarks (``kpt_shape: [5, 3]``, ``flip_idx``)."""
    lines = [
        "# YOLO pose dataset written by retinakit: one class, five landmarks",
        "path: .",
        f"train: {images}",
        f"val: {images}",
        "kpt_shape: [5, 3]",
        f"flip_idx: {FLIP_IDX}",
        "names:",
        *(f"  {i}: {n}" for i, n in enumerate(names)),
    ]
    path.write_text("\n".join(lines) + "\n")
    os.utime(path)
