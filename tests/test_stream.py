"""Detector.stream, the one streaming path: order, read errors, and one failing image in a batched pass.

The failure is injected by a backend wrapper that raises for any forward pass holding a *poisoned*
image (a marker colour in its top-left pixel), so the pass that batches it with others fails as a
whole: the stream must retry image by image, give only the poisoned image an error, and detect the
others exactly as they are detected alone.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from retinakit import Detector
from retinakit.errors import DetectionError, ImageError

MARK = np.array([1, 2, 250], dtype=np.uint8)


class PoisonBackend:
    """Wraps a backend fed uint8 NHWC batches; a batch with a marked image raises, like a failed pass."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.config = inner.config
        self.input_layout = inner.input_layout
        self.passes: list[int] = []

    def __call__(self, batch: np.ndarray):
        assert self.input_layout == "nhwc_uint8"
        self.passes.append(len(batch))
        if any((image[0, 0] == MARK).all() for image in batch):
            raise RuntimeError("injected failure")
        return self.inner(batch)


@pytest.fixture(scope="module")
def frames(astronaut_rgb) -> list[np.ndarray]:
    """Four 240x320 BGR images of one shape (so they share one pass), the third one poisoned."""
    face = cv2.resize(astronaut_rgb[30:230, 140:320, ::-1], (90, 100))
    out = []
    for i in range(4):
        frame = np.full((240, 320, 3), 90 + 10 * i, np.uint8)
        frame[60:160, 40 + 30 * i : 130 + 30 * i] = face
        out.append(frame)
    out[2][0, 0] = MARK
    return out


@pytest.fixture(scope="module")
def poisoned(detector) -> Detector:
    return Detector(precision="fp32", backend_instance=PoisonBackend(detector.backend))


def test_stream_retries_a_failed_pass_image_by_image(poisoned, detector, frames):
    outcomes = list(poisoned.stream(frames, readahead=0, color="bgr"))
    assert [o.item is f for o, f in zip(outcomes, frames, strict=True)] == [True] * 4
    assert poisoned.backend.passes[0] == 4  # the four were batched into one pass, which failed
    assert isinstance(outcomes[2].error, DetectionError) and outcomes[2].faces is None
    assert outcomes[2].reason == "detection failed: injected failure"
    for i in (0, 1, 3):
        assert outcomes[i].ok and len(outcomes[i].faces) == 1
        np.testing.assert_array_equal(outcomes[i].faces.boxes, detector.detect_bgr([frames[i]])[0].boxes)


def test_stream_reports_unreadable_inputs_in_order(detector, frames, tmp_path):
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), frames[0])
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    outcomes = list(detector.stream([good, tmp_path / "bad.jpg", tmp_path / "missing.png", good]))
    assert [o.ok for o in outcomes] == [True, False, False, True]
    assert isinstance(outcomes[1].error, ImageError) and "decodable" in outcomes[1].reason
    assert "no such file" in outcomes[2].reason
    assert len(outcomes[0].faces) == len(outcomes[3].faces) == 1


def test_detect_batch_returns_the_failing_images_error(poisoned, frames):
    results = poisoned.detect_batch(frames, color="bgr", errors="return")
    assert isinstance(results[2], DetectionError)
    assert [len(r) for r in (results[0], results[1], results[3])] == [1, 1, 1]
    with pytest.raises(RuntimeError, match="injected failure"):
        poisoned.detect_batch(frames, color="bgr")


def test_detect_app_reports_the_failing_file_and_detects_the_rest(poisoned, frames, tmp_path):
    from retinakit.apps.files import detect_paths

    paths = []
    for i, frame in enumerate(frames):
        paths.append(tmp_path / f"img{i}.png")
        cv2.imwrite(str(paths[-1]), frame)
    records = list(detect_paths(paths, poisoned, save_images=tmp_path / "out"))
    assert records[2] == {"path": str(paths[2]), "error": "detection failed: injected failure"}
    assert [len(records[i]["faces"]) for i in (0, 1, 3)] == [1, 1, 1]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img0.png.jpg", "img1.png.jpg", "img3.png.jpg"]


def test_anonymize_app_reports_the_failing_image_and_hides_the_rest(poisoned, frames, tmp_path):
    from retinakit.apps.anonymize import anonymize_paths

    folder = tmp_path / "in"
    folder.mkdir()
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"img{i}.png"), frame)
    records = list(anonymize_paths([folder], tmp_path / "out", poisoned))
    assert [r.get("error") for r in records] == [None, None, "detection failed: injected failure", None]
    assert [r.get("faces") for r in records] == [1, 1, None, 1]
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["img0.png", "img1.png", "img3.png"]


def test_video_app_gives_the_failing_frame_an_error_record(poisoned, frames, tmp_path):
    from retinakit.apps.video import detect_video

    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"png "), 10, (320, 240))  # lossless: mark survives
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    records = list(detect_video(clip, poisoned))
    assert [r["frame"] for r in records] == [0, 1, 2, 3]
    assert records[2]["error"] == "detection failed: injected failure" and "faces" not in records[2]
    assert [len(records[i]["faces"]) for i in (0, 1, 3)] == [1, 1, 1]


def test_anonymized_video_writes_the_failing_frame_black(poisoned, frames, tmp_path):
    from retinakit.apps.anonymize import anonymize_paths

    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"png "), 10, (320, 240))
    for frame in frames:
        writer.write(frame)
    writer.release()
    (record,) = anonymize_paths([clip], tmp_path / "out", poisoned)
    assert record["bad_frames"] == [2] and "written black" in record["error"]
    sidecar = json.loads((tmp_path / "out" / "clip.mp4.json").read_text())
    assert [f["frame"] for f in sidecar["frames"]] == [0, 1, 3]
