"""The input listing of a batch job, streamed in one stable order (so shards mean the same thing on every run).

A SOURCE is a directory (walked recursively, entries sorted by name, image extensions only), a glob
pattern (``photos/**/*.jpg``: the same sorted walk below its fixed prefix, filtered by the pattern), or a
listing file: ``.txt`` (one path per line; blank lines and lines starting with ``#`` skipped), ``.csv``
(column ``path``, or the first column when there is no ``path`` header) or ``.parquet`` (column ``path``,
read one row group at a time). Relative paths in a listing are joined to ``root`` (default: the
listing's directory). Nothing here holds the whole listing: memory is one directory's entries or one
row group.
"""

from __future__ import annotations

import csv
import glob
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from retinakit.io.inputs import IMAGE_SUFFIXES

LISTING_SUFFIXES = (".txt", ".csv", ".parquet")


@dataclass(frozen=True)
class Source:
    """Where the paths come from: ``spec`` as given (directory, glob, listing file) and ``root``.

    ``root`` is the directory output names are made relative to (crops, annotated images) and the
    base of relative paths in a listing file.
    """

    spec: str
    root: str | None = None

    @property
    def kind(self) -> str:
        """``directory``, ``glob``, ``txt``, ``csv`` or ``parquet``; raises ValueError for anything else."""
        path = Path(self.spec)
        if path.is_dir():
            return "directory"
        if not path.exists() and glob.has_magic(self.spec):
            return "glob"
        if path.suffix.lower() in LISTING_SUFFIXES:
            if not path.is_file():
                raise FileNotFoundError(f"{self.spec}: no such listing file")
            return path.suffix.lower()[1:]
        raise ValueError(f"{self.spec}: not a directory, a glob pattern or a .txt/.csv/.parquet listing")

    @property
    def base(self) -> Path:
        """The directory relative output names start from."""
        if self.root is not None:
            return Path(self.root)
        kind = self.kind
        if kind == "directory":
            return Path(self.spec)
        if kind == "glob":
            return _fixed_prefix(os.path.normpath(self.spec))
        return Path(self.spec).parent


def iter_paths(source: Source) -> Iterator[str]:
    """Every input path of ``source``, as a string, in the stable order shards are cut from."""
    kind = source.kind
    if kind == "directory":
        yield from (p for p in walk_sorted(source.spec) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
    elif kind == "glob":
        spec = os.path.normpath(source.spec)
        pattern = re.compile(glob_regex(spec))
        yield from (p for p in walk_sorted(str(_fixed_prefix(spec))) if pattern.fullmatch(p))
    else:
        base = source.base
        reader = {"txt": _txt_lines, "csv": _csv_column, "parquet": _parquet_column}[kind]
        for name in reader(Path(source.spec)):
            yield name if os.path.isabs(name) else os.path.join(base, name)


def walk_sorted(top: str) -> Iterator[str]:
    """Files below ``top`` depth-first, the entries of each directory sorted by name; symlinked dirs not followed."""
    try:
        with os.scandir(top) as it:
            entries = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in it)
    except (NotADirectoryError, FileNotFoundError, PermissionError):
        return
    for name, is_dir in entries:
        path = os.path.join(top, name)
        if is_dir:
            yield from walk_sorted(path)
        else:
            yield path


def glob_regex(pattern: str) -> str:
    """A regular expression for a glob pattern over '/'-separated paths: ``*``, ``?``, ``[...]``, ``**``."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body.replace("\\", "\\\\")) + "]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def _fixed_prefix(pattern: str) -> Path:
    parts = []
    for part in Path(pattern).parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def _txt_lines(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            name = line.strip()
            if name and not name.startswith("#"):
                yield name


def _csv_column(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8", newline="") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if header is None:
            return
        column = header.index("path") if "path" in header else 0
        if "path" not in header and header and header[0].strip():
            yield header[0].strip()  # no header: the first row is a path
        for row in rows:
            if len(row) > column and row[column].strip():
                yield row[column].strip()


def _parquet_column(path: Path) -> Iterator[str]:
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    if "path" not in file.schema_arrow.names:
        raise ValueError(f"{path}: a Parquet listing needs a 'path' column, found {file.schema_arrow.names}")
    for group in range(file.num_row_groups):
        for name in file.read_row_group(group, columns=["path"]).column(0).to_pylist():
            if name:
                yield name
