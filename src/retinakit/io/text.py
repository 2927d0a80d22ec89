"""Reading line-based text files (label files, submission files) with errors that name file and line."""

from __future__ import annotations

import os
from pathlib import Path

from retinakit.errors import AnnotationError


def read_lines(path: str | os.PathLike) -> list[str]:
    """The lines of a UTF-8 text file; an unreadable or binary file raises :class:`AnnotationError` naming it."""
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"{path}: not a UTF-8 text file (byte {exc.start}: {exc.reason})") from None
    except IsADirectoryError:
        raise AnnotationError(f"{path}: is a directory, not a text file") from None


def parse_floats(
    line: str, path: str | os.PathLike, line_number: int, min_count: int = 0, expected: str = ""
) -> list[float]:
    """The whitespace-separated numbers of one line; raises :class:`AnnotationError` ``path:line: ...``.

    ``min_count``: fewer values is an error, described by ``expected`` (e.g. ``"'x y w h score'"``).
    """
    try:
        values = [float(v) for v in line.split()]
    except ValueError:
        raise AnnotationError(f"{path}:{line_number}: not numbers: {line!r}") from None
    if len(values) < min_count:
        raise AnnotationError(f"{path}:{line_number}: expected {expected or f'{min_count} numbers'}, got {line!r}")
    return values
