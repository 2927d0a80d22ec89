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


# ----------------------------------------------------------------------------- io.labels: COCO, YOLO, any file

from retinakit.io.labels import LabelOptions, check_labels, read_labels  # noqa: E402

JSON_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 200)
    | st.floats(-10, 200)
    | st.just(float("nan"))
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)
ANNOTATION = st.fixed_dictionaries(
    {
        "id": st.integers(0, 5) | st.text(max_size=3),
        "image_id": st.integers(0, 3),
        "category_id": st.integers(0, 3),
        "bbox": st.lists(st.floats(-20, 120, allow_nan=False) | st.text(max_size=2), max_size=5),
    },
    optional={
        "keypoints": st.lists(st.floats(-5, 120) | st.just(float("nan")) | st.integers(0, 2), max_size=18),
        "iscrowd": st.integers(0, 1) | JSON_VALUE,
    },
)
COCO = st.fixed_dictionaries(
    {
        "images": st.lists(
            st.fixed_dictionaries(
                {"id": st.integers(0, 3), "file_name": st.sampled_from(["a.png", "b.png", "../x", ""])},
                optional={"width": JSON_VALUE, "height": st.integers(-2, 100)},
            ),
            max_size=3,
        ),
        "annotations": st.lists(ANNOTATION | JSON_VALUE, max_size=6),
        "categories": st.lists(
            st.fixed_dictionaries(
                {"id": st.integers(0, 3), "name": st.sampled_from(["face", "Face", "car", ""])},
                optional={"keypoints": st.lists(st.sampled_from(["nose", "left_eye", "x", "right_eye"]), max_size=6)},
            ),
            max_size=3,
        ),
    }
)


def _read_any(path: Path, **options: object) -> None:
    """Read strictly and collecting: a LabelSet or an AnnotationError naming the file, nothing else."""
    try:
        labels = read_labels(path, LabelOptions(**options))  # type: ignore[arg-type]
        for ann in labels.images:
            assert ann.boxes.shape == (len(ann), 4) and ann.landmarks.shape == (len(ann), 5, 2)
            assert np.isfinite(ann.boxes).all() and (ann.boxes[:, 2:] > ann.boxes[:, :2]).all()
        event("read")
    except AnnotationError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc) and len(str(exc)) < 400
        event("AnnotationError")
    checked = check_labels(path, LabelOptions(**options))  # type: ignore[arg-type]
    assert all("\n" not in m and len(m) < 400 for m in checked.problems)


@FUZZ
@given(data=COCO | JSON_VALUE)
def test_any_coco_file_reads_or_raises_annotation_error(data):
    import json

    with tempfile.TemporaryDirectory() as folder:
        for name in ("a.png", "b.png"):
            cv2.imwrite(str(Path(folder) / name), np.zeros((50, 100, 3), np.uint8))
        path = Path(folder) / "labels.json"
        path.write_text(json.dumps(data))
        _read_any(path, format="coco")


YOLO_LINE = st.one_of(
    st.lists(st.sampled_from(["0", "1", "0.5", "1.2", "-0.1", "0.25", "2", "x", "nan"]), max_size=22).map(" ".join),
    st.text(max_size=20).map(lambda t: t.replace("\n", " ")),
)
YAML = st.sampled_from(
    [
        "train: images\nkpt_shape: [5, 3]\nnames: [face]\n",
        "train: images\nnames:\n  0: face\n  1: hand\n",
        "train: images\nkpt_shape: [5, 2]\n",
        "train: images\nkpt_shape: [3, 3]\nnames: {0: face}\n",
        "val: images\n",
        "train: [a, b]\n",
        "kpt_shape: oops\ntrain: images\n",
        ": : :\n  - [\n",
        "",
    ]
)


@FUZZ
@given(lines=st.lists(YOLO_LINE, max_size=6), yaml=YAML, with_yaml=st.booleans())
def test_any_yolo_dataset_reads_or_raises_annotation_error(lines, yaml, with_yaml):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "images").mkdir()
        (root / "labels").mkdir()
        cv2.imwrite(str(root / "images" / "a.png"), np.zeros((40, 60, 3), np.uint8))
        (root / "labels" / "a.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        if with_yaml:
            (root / "data.yaml").write_text(yaml, encoding="utf-8")
        _read_any(root, format="yolo")


@FUZZ
@given(data=st.binary(max_size=300), name=st.sampled_from(["l.txt", "l.json", "data.yaml"]))
def test_any_bytes_in_a_label_file_read_or_raise_annotation_error(data, name):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            read_labels(path, LabelOptions(check_images=False))
        except AnnotationError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc)
