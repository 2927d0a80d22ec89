"""The one Arrow schema of batch output: one row per input image, faces as nested lists.

Columns: ``path`` (as listed), ``width`` / ``height`` (pixels; null when the image failed),
``status`` (``ok`` or ``error``), ``error`` (the reason, null when ok), ``num_faces``, ``boxes``
(``num_faces`` lists ``[x1, y1, x2, y2]``, float pixels of the original image), ``scores``
(highest first) and ``landmarks`` (``num_faces`` lists of five ``[x, y]`` in
:class:`~retinakit.FaceLandmark` order). Both engines build rows with :func:`ok_row` /
:func:`error_row`, so their files hold identical content.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from retinakit.result import Faces

if TYPE_CHECKING:
    import pyarrow as pa

Row = dict[str, Any]

OK, ERROR = "ok", "error"
COLUMNS = ("path", "width", "height", "status", "error", "num_faces", "boxes", "scores", "landmarks")


def arrow_schema() -> pa.Schema:
    """The Parquet schema of every shard."""
    import pyarrow as pa

    point = pa.list_(pa.float32())
    return pa.schema(
        [
            pa.field("path", pa.string(), nullable=False),
            pa.field("width", pa.int32()),
            pa.field("height", pa.int32()),
            pa.field("status", pa.string(), nullable=False),
            pa.field("error", pa.string()),
            pa.field("num_faces", pa.int32(), nullable=False),
            pa.field("boxes", pa.list_(point)),
            pa.field("scores", pa.list_(pa.float32())),
            pa.field("landmarks", pa.list_(pa.list_(point))),
        ]
    )


def ok_row(path: str, width: int, height: int, faces: Faces) -> Row:
    """The row of an image that was detected (``faces`` may be empty)."""
    return {
        "path": path,
        "width": width,
        "height": height,
        "status": OK,
        "error": None,
        "num_faces": len(faces),
        "boxes": faces.boxes.tolist(),
        "scores": faces.scores.tolist(),
        "landmarks": faces.landmarks.tolist(),
    }


def error_row(path: str, error: str) -> Row:
    """The row of an input that could not be read or detected: the reason, no faces."""
    return {
        "path": path,
        "width": None,
        "height": None,
        "status": ERROR,
        "error": error,
        "num_faces": 0,
        "boxes": [],
        "scores": [],
        "landmarks": [],
    }


def rows_to_table(rows: Sequence[Row]) -> pa.Table:
    """Rows (in order) as one Arrow table of :func:`arrow_schema`."""
    import pyarrow as pa

    return pa.Table.from_pylist(list(rows), schema=arrow_schema())
