import json

import cv2
import numpy as np
import pytest

from retinakit import Faces
from retinakit.apps.anonymize import anonymize_paths
from retinakit.apps.track import TrackerConfig
from retinakit.io.video import read_frames
from retinakit.ops.masks import AnonymizeConfig, anonymize_image, face_regions, hide_mask

BOXES = np.array([[20.0, 30.0, 60.0, 90.0], [100.0, 10.0, 150.5, 70.2]])


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (120, 200, 3), dtype=np.uint8)


def test_regions_and_masks_by_hand():
    np.testing.assert_allclose(face_regions(np.array([[10, 20, 50, 100]]), 0.25), [[0, 0, 60, 120]])
    rect = hide_mask(np.array([[2.5, 1.0, 5.0, 3.2]]), 6, 8, AnonymizeConfig(shape="rectangle", margin=0))
    assert np.argwhere(rect).min(0).tolist() == [1, 2] and np.argwhere(rect).max(0).tolist() == [3, 4]
    # an ellipse inscribed in a 10 x 10 region: pixel centres inside, corners left out
    ell = hide_mask(np.array([[0, 0, 10, 10]]), 10, 10, AnonymizeConfig(margin=0))
    assert ell[5, 5] and ell[0, 5] and ell[5, 0] and not ell[0, 0] and not ell[9, 9]
    assert ell.sum() == pytest.approx(np.pi * 25, rel=0.05)
    # with the default margin the ellipse contains the whole face box
    full = hide_mask(BOXES, 120, 200)
    for x1, y1, x2, y2 in BOXES:
        assert full[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))].all()
    assert hide_mask(np.zeros((0, 4)), 5, 5).shape == (5, 5)


@pytest.mark.parametrize("method", ["blur", "pixelate", "solid"])
@pytest.mark.parametrize("shape", ["ellipse", "rectangle"])
def test_pixels_inside_change_and_outside_do_not(noise, method, shape):
    config = AnonymizeConfig(method=method, shape=shape, color=(7, 8, 9))
    out = anonymize_image(noise, BOXES, config)
    assert out.shape == noise.shape and out.dtype == noise.dtype
    changed = (out != noise).any(axis=2)
    mask = hide_mask(BOXES, *noise.shape[:2], config)
    assert not changed[~mask].any(), "a pixel outside the hidden regions changed"
    for x1, y1, x2, y2 in BOXES.astype(int):  # inside each face box nearly every pixel changed
        assert changed[y1:y2, x1:x2].mean() > 0.97
    if method == "solid":
        assert (out[mask] == [7, 8, 9]).all()
    if method == "blur":  # the detail is gone: the hidden face has far less high-frequency energy
        x1, y1, x2, y2 = BOXES[0].astype(int)
        assert (
            np.abs(np.diff(out[y1:y2, x1:x2].astype(float), axis=1)).mean()
            < 0.2 * np.abs(np.diff(noise[y1:y2, x1:x2].astype(float), axis=1)).mean()
        )


def test_faces_at_the_border_and_grey_images(noise):
    grey = noise[:, :, 0]
    out = anonymize_image(grey, np.array([[-20.0, -10.0, 30.0, 40.0], [190, 100, 260, 160]]))
    assert out.shape == grey.shape and (out != grey).any()
    assert np.array_equal(anonymize_image(noise, np.zeros((0, 4))), noise)


def write_video(path, frames, fps=10):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, frames[0].shape[1::-1])
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()


def corrupt_frame(path, index):
    """Scramble the middle of the ``index``-th JPEG of an MJPG AVI so that frame cannot be decoded."""
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    s = starts[index]
    for k in range(s + 200, s + 900):
        data[k] = (data[k] * 7 + 13) % 256
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory, astronaut_rgb):
    """20 frames, 320x240: the astronaut's face moving right on grey; frame 7 corrupt."""
    face = cv2.resize(astronaut_rgb[30:230, 140:320, ::-1], (90, 100))
    frames = []
    for i in range(20):
        frame = np.full((240, 320, 3), 90, np.uint8)
        frame[60:160, 40 + 6 * i : 130 + 6 * i] = face
        frames.append(frame)
    path = tmp_path_factory.mktemp("clip") / "walk.avi"
    write_video(path, frames)
    corrupt_frame(path, 7)
    return path, frames


def test_read_frames_reports_a_corrupt_frame_and_goes_on(face_clip):
    capture = cv2.VideoCapture(str(face_clip[0]))
    frames = list(read_frames(capture))
    capture.release()
    assert [i for i, _, f in frames] == list(range(20))
    assert [i for i, _, f in frames if f is None] == [7]


def test_anonymize_job_images_videos_and_broken_files(tmp_path, detector, face_clip, astronaut_rgb):
    clip, frames = face_clip
    photos = tmp_path / "in"
    photos.mkdir()
    cv2.imwrite(str(photos / "astronaut.png"), astronaut_rgb[:, :, ::-1])
    (photos / "broken.jpg").write_bytes(b"not an image")
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    out = tmp_path / "out"
    records = list(
        anonymize_paths(
            [photos, clip, tmp_path / "bad.mp4"],
            out,
            detector,
            threshold=0.3,
            tracker=TrackerConfig(high_threshold=0.3, low_threshold=0.1),
        )
    )
    by_name = {r["source"].rsplit("/", 1)[-1]: r for r in records}
    assert set(by_name) == {"astronaut.png", "broken.jpg", "walk.avi", "bad.mp4"}
    assert "not a decodable image" in by_name["broken.jpg"]["error"]
    assert "bad.mp4" in by_name["bad.mp4"]["error"]
    assert by_name["walk.avi"]["bad_frames"] == [7] and "1 frame(s)" in by_name["walk.avi"]["error"]

    # the still: its face region changed, the rest is byte-identical (PNG is lossless)
    still = by_name["astronaut.png"]
    assert still["faces"] == 1
    assert still["output"] == str(out / "astronaut.png")  # one folder of images: directly in the output folder
    sidecar = json.loads((out / "astronaut.png.json").read_text())
    original = astronaut_rgb[:, :, ::-1]
    result = cv2.imread(still["output"])
    mask = hide_mask(np.array([sidecar["faces"][0]["box"]]), *original.shape[:2])
    changed = (result != original).any(axis=2)
    assert not changed[~mask].any() and changed[mask].mean() > 0.9

    # the video: same size and frame rate, one output frame per input frame, the face hidden in every frame
    video = json.loads((out / "walk.mp4.json").read_text())
    capture = cv2.VideoCapture(str(out / "walk.mp4"))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(10)
    size = (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    assert size == (320, 240) and video["frame_count"] == 20
    written = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        written.append(frame)
    capture.release()
    assert len(written) == 20
    hidden = {f["frame"]: f["faces"] for f in video["frames"]}
    x0 = hidden[0][0]["box"][0]
    for i in range(20):
        if i == 7:
            assert i not in hidden and written[i].max() < 20  # the corrupt frame is written black
            continue
        faces = hidden[i]
        assert len(faces) == 1 and faces[0]["track_id"] == 1
        box = np.array(faces[0]["box"])  # inside the pasted photo, moving with it
        assert 40 + 6 * i - 3 < box[0] < box[2] < 130 + 6 * i + 3 and abs(box[0] - x0 - 6 * i) < 4
        x1, y1, x2, y2 = box.astype(int)
        inside = np.abs(written[i][y1:y2, x1:x2].astype(int) - frames[i][y1:y2, x1:x2]).mean()
        outside = np.abs(written[i][:, 200 + 6 * i :].astype(int) - frames[i][:, 200 + 6 * i :]).mean()
        assert inside > 20 and outside < 6  # the face changed, the background only by MP4 compression


def test_missed_frames_stay_hidden_with_tracking(tmp_path, detector, astronaut_rgb):
    """The face is blanked out (undetectable) in frames 8-10; tracking keeps those frames hidden."""
    face = cv2.resize(astronaut_rgb[30:230, 140:320, ::-1], (90, 100))
    frames = []
    for i in range(16):
        frame = np.full((240, 320, 3), 90, np.uint8)
        if not 8 <= i <= 10:
            frame[60:160, 40 + 6 * i : 130 + 6 * i] = face
        frames.append(frame)
    clip = tmp_path / "gap.avi"
    write_video(clip, frames)
    for tracker, expected in ((TrackerConfig(high_threshold=0.3), True), (None, False)):
        out = tmp_path / ("tracked" if tracker else "plain")
        (record,) = anonymize_paths([clip], out, detector, threshold=0.3, tracker=tracker)
        assert record["faces"] == (16 if tracker else 13) and record["bad_frames"] == []
        hidden = {f["frame"]: f["faces"] for f in json.loads((out / "gap.mp4.json").read_text())["frames"]}
        assert all(len(hidden.get(i, [])) == 1 for i in range(16) if not 8 <= i <= 10)
        assert all((len(hidden.get(i, [])) == 1) == expected for i in (8, 9, 10))
        if tracker:
            assert {f[0]["track_id"] for f in hidden.values()} == {1}
            assert [hidden[i][0]["detected"] for i in (7, 8, 9, 10, 11)] == [True, False, False, False, True]
            # the bridged box follows the motion: it covers where the face would be
            for i in (8, 9, 10):
                assert abs(hidden[i][0]["box"][0] - hidden[7][0]["box"][0] - 6 * (i - 7)) < 4


def test_faces_anonymize_and_to_supervision(astronaut_rgb, detector):
    faces = detector(astronaut_rgb, color="rgb")
    out = faces.anonymize(astronaut_rgb, method="pixelate", blocks=6)
    assert (out != astronaut_rgb).any() and out.shape == astronaut_rgb.shape
    sv = pytest.importorskip("supervision")
    from retinakit.records import to_detections, to_keypoints

    detections = to_detections(faces, track_ids=np.arange(len(faces)) + 1)
    assert isinstance(detections, sv.Detections) and len(detections) == len(faces) == 1
    np.testing.assert_array_equal(detections.xyxy, faces.boxes)
    assert detections.tracker_id.tolist() == [1] and detections.data["landmarks"].shape == (1, 5, 2)
    keypoints = to_keypoints(faces)
    np.testing.assert_array_equal(keypoints.xy, faces.landmarks)
    empty = to_detections(Faces.empty())
    assert len(empty) == 0 and empty.xyxy.shape == (0, 4)


def test_faces_methods_delegate_to_the_apps(astronaut_rgb, detector):
    faces = detector(astronaut_rgb, color="rgb")
    out = faces.anonymize(astronaut_rgb, method="solid", shape="rectangle", margin=0.0)
    x1, y1, x2, y2 = faces.boxes[0].astype(int) + np.array([1, 1, -1, -1])
    assert (out[y1:y2, x1:x2] == 0).all() and np.array_equal(out[: y1 - 2], astronaut_rgb[: y1 - 2])
    pytest.importorskip("supervision")
    assert len(faces.to_supervision()) == 1 and faces.to_supervision(keypoints=True).xy.shape == (1, 5, 2)


def test_cli_anonymize(tmp_path, face_clip, astronaut_rgb, capsys):
    from retinakit.cli import main

    clip, _ = face_clip
    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), astronaut_rgb[:, :, ::-1])
    out = tmp_path / "out"
    code = main(["anonymize", str(photo), str(clip), "--out", str(out), "--method", "pixelate", "--no-progress"])
    assert code == 1  # the corrupt frame of the clip is reported; everything else is written
    assert "walk.avi: 1 frame(s) could not be decoded" in capsys.readouterr().err
    index = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    assert [r["faces"] for r in index] == [1, 19]
    sidecar = json.loads((out / "astronaut.jpg.json").read_text())  # a single input: directly in the output
    assert sidecar["settings"]["method"] == "pixelate" and sidecar["threshold"] == 0.3
    assert main(["anonymize", str(photo), "--out", str(out), "--margin", "-1"]) == 2


def test_earlier_spellings_still_work_for_one_release(astronaut_rgb, detector, tmp_path, capsys):
    from retinakit.apps import anonymise
    from retinakit.cli import main
    from retinakit.ops import masks

    faces = detector(astronaut_rgb, color="rgb")
    np.testing.assert_array_equal(faces.anonymise(astronaut_rgb), faces.anonymize(astronaut_rgb))
    assert masks.AnonymiseConfig is AnonymizeConfig and masks.anonymise_image is anonymize_image
    assert anonymise.anonymise_paths is anonymize_paths
    photo = tmp_path / "a.png"
    cv2.imwrite(str(photo), astronaut_rgb[:, :, ::-1])
    assert main(["anonymise", str(photo), "-o", str(tmp_path / "out"), "--no-progress"]) == 0
    assert (tmp_path / "out" / "a.png").exists()


def test_a_video_is_measured_for_its_detail_scale_once(tmp_path, face_clip, monkeypatch):
    import retinakit.detector as module
    from retinakit import Detector

    measured = []
    real = module.detail_scale
    monkeypatch.setattr(module, "detail_scale", lambda image, config: measured.append(1) or real(image, config))
    (record,) = anonymize_paths([face_clip[0]], tmp_path / "out", Detector(precision="fp32"), threshold=0.3)
    assert record["bad_frames"] == [7] and len(measured) == 1  # 19 frames detected, measured on the first
    assert json.loads((tmp_path / "out" / "walk.mp4.json").read_text())["detail"] == 1  # the held value
