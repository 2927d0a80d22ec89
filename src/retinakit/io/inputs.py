"""Turning command-line style arguments (files, directories, globs) into a list of image paths."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Image file extensions a folder scan picks up (case-insensitive). A file named explicitly is read
#: whatever its extension, so its decoder decides. OpenCV decodes these; HEIC/HEIF (and AVIF where
#: OpenCV's build cannot) need the ``heif`` extra (see :func:`retinakit.core.images.read_image`).
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".jp2", ".pbm", ".pgm", ".ppm"}
    | {".heic", ".heif", ".avif"}
)


@dataclass(frozen=True)
class ImageListing:
    """What :func:`find_images` found: image paths, and every argument that yielded none with the reason."""

    paths: list[Path]
    empty: dict[str, str] = field(default_factory=dict)


def find_images(arguments: Sequence[str | os.PathLike]) -> ImageListing:
    """Expand files, folders (recursively, :data:`IMAGE_SUFFIXES`) and glob patterns, sorted per argument.

    Existing paths win over glob patterns. A name that does not exist is kept, so that reading it
    reports the problem; a folder without images or a pattern that matches no file is listed in
    ``empty``. A file reached twice is listed once.
    """
    found: list[Path] = []
    empty: dict[str, str] = {}
    for item in arguments:
        text = os.fspath(item)
        path = Path(text)
        if path.is_dir():
            images = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not images:
                empty[text] = f"folder contains no images (extensions {', '.join(sorted(IMAGE_SUFFIXES))})"
        elif not path.exists() and glob.has_magic(text):
            images = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
            if not images:
                empty[text] = "no file matches this pattern"
        else:
            images = [path]
        found.extend(images)
    seen: set[str] = set()
    unique = []
    for p in found:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return ImageListing(unique, empty)


def list_images(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The image paths of :func:`find_images` (arguments that yield nothing are dropped)."""
    return find_images(paths).paths
