"""The line-based formats: RetinaFace ``label.txt`` and WIDER (``bbx_gt`` files, submission folders)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from retinakit.io.labels.core import (
    IMAGE_SUFFIXES,
    Builder,
    ImageAnnotation,
    ImageRoot,
    LabelOptions,
    Problems,
    short,
    text_root,
)
from retinakit.io.text import read_lines


def read_retinaface(path: Path, options: LabelOptions, problems: Problems) -> tuple[Path, list[ImageAnnotation]]:
    root = text_root(path, options)
    images = ImageRoot(root, options.check_images)
    out: list[ImageAnnotation] = []
    current: Builder | None = None
    for n, raw in enumerate(read_lines(path), start=1):
        line = raw.strip()
        if not line:
            continue
        where = f"{path}:{n}"
        if line.startswith("#"):
            if current is not None:
                out.append(current.build())
            name = line[1:].strip()
            if not name:
                problems.error(f"{where}: '#' line without an image name")
                current = None
                continue
            size = images.size(name, where, problems)
            current = None if size is False else Builder(name, size or None, problems)  # type: ignore[arg-type]
            continue
        if current is None:
            if not out and not problems.messages:
                problems.error(f"{where}: face line before any '# image' line")
            continue
        values = _floats(line, where, problems)
        if values is None:
            continue
        if len(values) not in (4, 5, 19, 20):
            problems.error(f"{where}: expected 4 box values and optionally 15 landmark values, got {len(values)}")
            continue
        x, y, w, h = values[:4]
        points = None
        if len(values) >= 19 and not values[4] < 0:  # -1: no landmarks (NaN is reported)
            points = np.asarray(values[4:19], dtype=np.float32).reshape(5, 3)[:, :2]
        current.add(np.array([x, y, x + w, y + h], dtype=np.float32), points, where)
    if current is not None:
        out.append(current.build())
    return root, out


def _floats(line: str, where: str, problems: Problems) -> list[float] | None:
    try:
        return [float(v) for v in line.split()]
    except ValueError:
        problems.error(f"{where}: not numbers: {short(line)}")
        return None


# ----------------------------------------------------------------------------- WIDER


def read_wider(path: Path, options: LabelOptions, problems: Problems) -> tuple[Path, list[ImageAnnotation]]:
    root = text_root(path, options)
    images = ImageRoot(root, options.check_images)
    if path.is_dir():  # WIDER submission files, event/name.txt
        out = []
        for file in sorted(path.glob("*/*.txt")):
            for ann in _read_wider_blocks(file, images, problems, False, prefix=file.parent.name):
                out.append(ann)
        return root, out
    return root, list(_read_wider_blocks(path, images, problems, options.keep_invalid))


def _read_wider_blocks(
    path: Path, images: ImageRoot, problems: Problems, keep_invalid: bool, prefix: str | None = None
) -> Iterator[ImageAnnotation]:
    """Blocks of name, count, ``x y w h ...`` lines; ``prefix``: a submission file's event folder."""
    lines = read_lines(path)
    i = 0
    while i < len(lines):
        name = lines[i].strip()
        if not name:
            i += 1
            continue
        if prefix is not None:
            name = f"{prefix}/{name}" if "/" not in name else name
            name = name if name.lower().endswith(IMAGE_SUFFIXES) else name + ".jpg"
        count_line = lines[i + 1].strip() if i + 1 < len(lines) else ""
        try:
            count = int(count_line)
        except ValueError:
            count = -1
        if count < 0:
            problems.error(f"{path}:{i + 2}: expected the face count of image {short(name)}, got {short(count_line)}")
            return
        size = images.size(name, f"{path}:{i + 1}", problems)
        builder = Builder(name, size or None, problems)  # type: ignore[arg-type]
        for k in range(count):
            n = i + 3 + k
            where = f"{path}:{n}"
            values = _floats(lines[n - 1], where, problems) if n <= len(lines) else []
            if values is not None and len(values) < 4:
                problems.error(f"{where}: expected 'x y w h ...' for face {k + 1} of {count} of {short(name)}")
                return
            if values is None:
                continue
            invalid = prefix is None and not keep_invalid and len(values) >= 8 and values[7] == 1
            x, y, w, h = values[:4]
            if invalid or (prefix is None and (w == 0 or h == 0)):  # as the official tools: invalid, zero-size dropped
                continue
            builder.add(np.array([x, y, x + w, y + h], dtype=np.float32), None, where)
        if size is not False:
            yield builder.build()
        i += 2 + max(count, 1 if prefix is None else 0)
