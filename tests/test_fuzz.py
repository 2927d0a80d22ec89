"""Fuzz tests (Hypothesis): image arrays, image bytes and training label lines.

Each input either works or raises the documented error (``ImageError`` for images,
``AnnotationError`` for label files); nothing else escapes and nothing hangs (a bounded number
of examples, each test under a time limit).
"""

from __future__ import annotations

import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from retinakit import ImageError  # noqa: E402
from retinakit.core.images import read_image  # noqa: E402
from retinakit.errors import AnnotationError  # noqa: E402
from retinakit.inference.preprocess import to_bgr  # noqa: E402
from retinakit.io.annotations import parse_label_txt, parse_wider_gt  # noqa: E402

FUZZ = settings(
    max_examples=150, deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
TIME_LIMIT_S = 120


@pytest.fixture(autouse=True)
def time_limit() -> Iterator[None]:
    """Fail instead of hanging: SIGALRM after TIME_LIMIT_S seconds."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"fuzz test ran over {TIME_LIMIT_S} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TIME_LIMIT_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


DTYPES = [
    np.uint8,
    np.uint16,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint32,
    np.float16,
    np.float32,
    np.float64,
    np.bool_,
    np.complex64,
]


@st.composite
def image_arrays(draw: st.DrawFn) -> np.ndarray:
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    h, w = draw(st.integers(0, 40)), draw(st.integers(0, 40))
    shape = draw(st.sampled_from([(h, w), (h, w, 1), (h, w, 2), (h, w, 3), (h, w, 4), (h, w, 3, 1), (h,)]))
    if dtype.kind == "f":
        special = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1.0])
        elements = st.floats(-2.0, 300.0, width=dtype.itemsize * 8) | special
        return draw(hnp.arrays(dtype, shape, elements=elements))
    return draw(hnp.arrays(dtype, shape))


@FUZZ
@given(array=image_arrays(), color=st.sampled_from(["rgb", "bgr"]))
def test_any_array_gives_a_bgr_image_or_image_error(detector, array, color):
    try:
        bgr = to_bgr(array, color)
    except ImageError as exc:
        assert str(exc).startswith("array: ")
        event("ImageError")
        return
    event("converted")
    assert bgr.dtype == np.uint8 and bgr.ndim == 3 and bgr.shape[2] == 3 and bgr.shape[:2] == array.shape[:2]
    faces = detector.detect_bgr([bgr])[0]
    assert faces.boxes.shape[1:] == (4,) and np.isfinite(faces.boxes).all()


def _encoded(ext: str) -> bytes:
    image = np.zeros((24, 32, 3), np.uint8)
    image[4:20, 8:24] = (40, 160, 250)
    return cv2.imencode(ext, image)[1].tobytes()


VALID = {ext: _encoded(ext) for ext in (".jpg", ".png", ".bmp", ".webp", ".tiff", ".gif")}


@st.composite
def image_bytes(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["random", "truncated", "header", "corrupted"]))
    if kind == "random":
        return draw(st.binary(max_size=2048))
    blob = VALID[draw(st.sampled_from(sorted(VALID)))]
    if kind == "truncated":
        return blob[: draw(st.integers(0, len(blob)))]
    if kind == "header":
        return blob[: draw(st.integers(1, 32))] + draw(st.binary(max_size=64))
    data = bytearray(blob)
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@FUZZ
@given(data=image_bytes())
def test_any_file_bytes_give_an_image_or_image_error(detector, data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.img"
        path.write_bytes(data)
        try:
            image = read_image(path)
        except ImageError as exc:
            assert str(path) in str(exc)
            event("ImageError")
            return
    event("decoded")
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    detector.detect_bgr([image])


NUMBER = st.one_of(
    st.floats(-50, 2000, allow_nan=False).map(lambda v: f"{v:.2f}"),
    st.sampled_from(["-1", "0", "nan", "inf", "-inf", "1e400", "abc", "", "0x10"]),
)
LINE = st.one_of(
    st.lists(NUMBER, min_size=0, max_size=22).map(" ".join),
    st.text(max_size=30).map(lambda t: t.replace("\n", " ")),
    st.sampled_from(["# 0--Parade/a.jpg", "#", "# ", "# b.jpg", "2", "0"]),
)


@FUZZ
@given(lines=st.lists(LINE, max_size=12))
def test_any_label_file_parses_or_raises_annotation_error(lines):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "label.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        for parse in (parse_label_txt, parse_wider_gt):
            try:
                annotations = parse(path)
            except AnnotationError as exc:
                assert str(path) in str(exc)
                event(f"{parse.__name__}: AnnotationError")
                continue
            event(f"{parse.__name__}: parsed")
            for ann in annotations:
                assert ann.boxes.ndim == 2 and ann.boxes.shape[1] == 4
                assert ann.landmarks.shape == (len(ann.boxes), 5, 2)


@FUZZ
@given(data=st.binary(max_size=256))
def test_binary_label_files_raise_annotation_error(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "label.txt"
        path.write_bytes(data)
        for parse in (parse_label_txt, parse_wider_gt):
            try:
                parse(path)
            except AnnotationError as exc:
                assert str(path) in str(exc)
