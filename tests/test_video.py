import json

import cv2
import numpy as np
import pytest

from retinakit.apps.video import detect_video
from retinakit.cli import main
from retinakit.errors import VideoError
from retinakit.io.video import is_video_source


@pytest.fixture(scope="module")
def video(tmp_path_factory, astronaut_rgb):
    """A 3-second 640x480 MJPG video at 10 fps of the astronaut photo panning right."""
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    face = cv2.resize(astronaut_rgb[:, :, ::-1], (400, 400))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (640, 480))
    assert writer.isOpened()
    for i in range(30):
        frame = np.full((480, 640, 3), 60, np.uint8)
        x = 10 + 6 * i
        frame[40:440, x : x + 400] = face
        writer.write(frame)
    writer.release()
    return path


def test_one_record_per_frame_with_time_and_faces(video, detector):
    records = list(detect_video(video, detector))
    assert [r["frame"] for r in records] == list(range(30))
    assert records[10]["time"] == pytest.approx(1.0)
    confident = [[f for f in r["faces"] if f["score"] > 0.9] for r in records]
    assert all(len(c) == 1 for c in confident)
    xs = [c[0]["box"][0] for c in confident]
    assert xs[-1] - xs[0] == pytest.approx(6 * 29 * 400 / 400, abs=8)  # the face moves with the pan


def test_every_nth_frame_and_annotated_output(video, detector, tmp_path):
    out = tmp_path / "annotated.mp4"
    records = list(detect_video(video, detector, every=4, annotated=out))
    assert [r["frame"] for r in records] == [0, 4, 8, 12, 16, 20, 24, 28]
    capture = cv2.VideoCapture(str(out))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    capture.release()


def test_cli_video_jsonl(video, tmp_path):
    out = tmp_path / "frames.jsonl"
    assert main(["detect", str(video), "-o", str(out), "--every", "2", "--no-progress"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 15 and records[1]["frame"] == 2


def test_bad_video_is_reported(tmp_path, detector, capsys):
    assert is_video_source("0") and is_video_source("a/b.MP4") and not is_video_source("x.jpg")
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"nothing here")
    with pytest.raises(VideoError, match="broken.mp4"):
        list(detect_video(bad, detector))
    assert main(["detect", str(bad), "--no-progress"]) == 1
    assert "broken.mp4" in capsys.readouterr().err


def test_the_detail_scale_is_measured_once_per_video(video, monkeypatch):
    import retinakit.detector as module
    from retinakit import Detector
    from retinakit.apps.video import per_video_detail

    measured = []
    real = module.detail_scale
    monkeypatch.setattr(module, "detail_scale", lambda image, config: measured.append(1) or real(image, config))
    records = list(detect_video(video, Detector(precision="fp32"), every=3))
    assert len(records) == 10 and measured == [1]  # the first frame only, not each of the ten
    # the first decodable frame decides; the frames pass on unchanged, undecodable ones included
    monkeypatch.setattr(module, "detail_scale", lambda image, config: 4 if image.shape[0] == 2 else 1)
    frames = [(0, 0.0, None), (1, 0.1, np.zeros((2, 3, 3), np.uint8)), (2, 0.2, np.zeros((5, 5, 3), np.uint8))]
    base = Detector(precision="fp32")
    fixed, passed = per_video_detail(base, frames)
    assert fixed.config.detail == 4 and fixed.backend is base.backend and list(passed) == frames
    given = Detector(precision="fp32", detail=1)
    assert per_video_detail(given, frames)[0] is given
    # no frame decodes: the detector as it is, the frames all passed on
    broken = [(0, 0.0, None), (1, 0.1, None)]
    same, passed = per_video_detail(base, broken)
    assert same is base and list(passed) == broken
