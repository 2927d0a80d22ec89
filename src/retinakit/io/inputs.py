"""Turning command-line style arguments (files, directories, globs) into a list of image paths."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def list_images(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Expand files, directories (recursively, image extensions) and glob patterns, sorted per argument.

    Names that match nothing are kept as they are, so that reading them reports the problem.
    """
    import glob

    found: list[Path] = []
    for item in paths:
        text = os.fspath(item)
        path = Path(text)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        elif not path.exists() and glob.has_magic(text):
            found.extend(sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file()))
        else:
            found.append(path)
    return found


IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".jp2", ".pbm", ".pgm", ".ppm"})
