import numpy as np
import pytest

from retinakit import Faces
from retinakit.apps.track import (
    FaceTracker,
    TrackerConfig,
    greedy_assign,
    kalman_initiate,
    kalman_predict,
    kalman_update,
    xyah_to_xyxy,
    xyxy_to_xyah,
)

SHAPE = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]])  # landmarks inside a unit box


def faces(boxes: list[list[float]], scores: list[float] | None = None) -> Faces:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    wh = b[:, None, 2:] - b[:, None, :2]
    return Faces(b, scores if scores is not None else [0.9] * len(b), b[:, None, :2] + SHAPE * wh)


def ids_by_x(tracked) -> list[int]:
    return tracked.track_ids[np.argsort(tracked.faces.boxes[:, 0])].tolist()


def test_greedy_assign_takes_best_pairs_first_and_respects_the_gate():
    iou = np.array([[0.9, 0.8, 0.0], [0.85, 0.1, 0.0], [0.0, 0.0, 0.15]])
    rows, cols = greedy_assign(iou, 0.2)
    # row 0 takes col 0 (0.9); row 1 cannot have col 0 and 0.1 is below the gate; row 2's 0.15 too
    assert rows.tolist() == [0] and cols.tolist() == [0]
    rows, cols = greedy_assign(np.zeros((0, 3)), 0.2)
    assert rows.shape == cols.shape == (0,)


def test_box_state_round_trip_and_kalman_follows_constant_velocity():
    boxes = np.array([[10.0, 20.0, 50.0, 80.0]])
    np.testing.assert_allclose(xyah_to_xyxy(xyxy_to_xyah(boxes)), boxes)
    mean, cov = kalman_initiate(xyxy_to_xyah(boxes))
    for step in range(1, 15):  # the box moves 4 px right per frame
        mean, cov = kalman_predict(mean, cov)
        mean, cov = kalman_update(mean, cov, xyxy_to_xyah(boxes + np.array([4, 0, 4, 0]) * step))
    assert mean[0, 4] == pytest.approx(4.0, abs=0.3)  # learned velocity in x
    ahead, _ = kalman_predict(mean, cov)
    np.testing.assert_allclose(xyah_to_xyxy(ahead)[0], boxes[0] + [60, 0, 60, 0], atol=1.5)
    assert np.all(np.linalg.eigvalsh(cov) > 0)


def test_two_faces_crossing_keep_their_ids():
    tracker = FaceTracker()
    first = None
    for t in range(40):  # face A moves right, face B moves left; they overlap for several frames
        a = [40 + 8 * t, 100, 100 + 8 * t, 170]
        b = [400 - 8 * t, 110, 460 - 8 * t, 180]
        tracked = tracker.update(faces([a, b]))
        assert len(tracked) == 2 and tracked.detected.all()
        by_start = {
            round(float(x1)): int(i) for x1, i in zip(tracked.faces.boxes[:, 0], tracked.track_ids, strict=True)
        }
        id_a, id_b = by_start[40 + 8 * t], by_start[400 - 8 * t]
        if first is None:
            first = (id_a, id_b)
        assert (id_a, id_b) == first, f"frame {t}: ids swapped"
    assert first == (1, 2)


def test_crossing_with_the_hidden_face_missing_keeps_ids():
    """While the faces overlap only the front one is detected; the other comes back with its ID."""
    tracker = FaceTracker()
    for t in range(40):
        a = [40 + 8 * t, 100, 100 + 8 * t, 170]
        b = [400 - 8 * t, 110, 460 - 8 * t, 180]
        overlap = abs(a[0] - b[0]) < 50
        tracked = tracker.update(faces([a] if overlap else [a, b]))
        if not overlap:
            seen = tracked.detected
            x_to_id = dict(
                zip(tracked.faces.boxes[seen, 0].round().tolist(), tracked.track_ids[seen].tolist(), strict=True)
            )
            assert x_to_id[40 + 8 * t] == 1 and x_to_id[400 - 8 * t] == 2


def test_face_missing_for_three_frames_keeps_its_id_and_is_bridged():
    tracker = FaceTracker()
    seen_ids, bridged = [], []
    for t in range(20):
        box = [100 + 5 * t, 50, 160 + 5 * t, 120]
        tracked = tracker.update(faces([box]) if not 8 <= t < 11 else Faces.empty())
        assert len(tracked) == 1, f"frame {t}: the face is not reported"
        seen_ids.append(int(tracked.track_ids[0]))
        if 8 <= t < 11:
            assert not tracked.detected[0]
            # the predicted box follows the motion: it still covers the true box
            pred = tracked.faces.boxes[0]
            assert abs(pred[0] - box[0]) < 4 and abs(pred[2] - box[2]) < 4
            bridged.append(t)
        else:
            assert tracked.detected[0]
    assert set(seen_ids) == {1} and bridged == [8, 9, 10]


def test_low_score_detection_extends_a_track_but_never_starts_one():
    tracker = FaceTracker(TrackerConfig(high_threshold=0.5, low_threshold=0.1))
    box = [100, 100, 160, 170]
    assert tracker.update(faces([box], [0.9])).track_ids.tolist() == [1]
    out = tracker.update(faces([box, [300, 300, 360, 370]], [0.2, 0.3]))  # face dips; clutter elsewhere
    assert out.track_ids.tolist() == [1] and out.detected.tolist() == [True]
    assert out.faces.scores[0] == pytest.approx(0.2)
    out = tracker.update(faces([[300, 300, 360, 370]], [0.05]))  # below low_threshold: ignored
    assert out.detected.tolist() == [False] and len(tracker) == 1


def test_births_deaths_and_tentative_tracks():
    tracker = FaceTracker(TrackerConfig(min_hits=2, max_lost=3, bridge_frames=2))
    tracker.update(faces([[0, 0, 50, 50]]))  # first frame: confirmed at once
    out = tracker.update(faces([[0, 0, 50, 50], [200, 0, 250, 50]]))  # a new face: tentative, id 2
    assert sorted(out.track_ids.tolist()) == [1, 2]
    out = tracker.update(faces([[0, 0, 50, 50]]))  # the tentative track misses its second frame: dropped
    assert out.track_ids.tolist() == [1] and len(tracker) == 1
    for _ in range(3):
        tracker.update(Faces.empty())
    assert len(tracker) == 1  # lost for max_lost frames: still kept
    out = tracker.update(Faces.empty())
    assert len(tracker) == 0 and len(out) == 0
    assert tracker.update(faces([[0, 0, 50, 50]])).track_ids.tolist() == [3]  # a new ID, never reused


def test_landmarks_are_smoothed_relative_to_the_box():
    tracker = FaceTracker(TrackerConfig(landmark_smoothing=0.5))
    rng = np.random.default_rng(0)
    errors_raw, errors_out = [], []
    for t in range(30):
        box = np.array([100 + 6 * t, 80, 180 + 6 * t, 180], dtype=np.float64)
        truth = box[None, :2] + SHAPE * (box[2:] - box[:2])
        noisy = truth + rng.normal(0, 3, truth.shape)
        out = tracker.update(Faces(box[None], [0.9], noisy[None]))
        if t >= 5:
            errors_raw.append(np.abs(noisy - truth).mean())
            errors_out.append(np.abs(out.faces.landmarks[0] - truth).mean())
    # smoothing reduces the jitter and does not lag behind the moving box
    assert np.mean(errors_out) < 0.75 * np.mean(errors_raw)


def test_empty_frames_and_config_validation():
    tracked = FaceTracker().update(Faces.empty())
    assert tracked.faces.boxes.shape == (0, 4) and tracked.track_ids.dtype == np.int64
    with pytest.raises(ValueError):
        TrackerConfig(low_threshold=0.6, high_threshold=0.5)
    with pytest.raises(ValueError):
        TrackerConfig(bridge_frames=40, max_lost=30)


def test_detect_video_with_track_ids(tmp_path, astronaut_rgb):
    """``retinakit detect VIDEO --track``: the face keeps track_id 1 through a pan."""
    import json

    import cv2

    from retinakit.cli import main

    face = cv2.resize(astronaut_rgb[30:230, 140:320, ::-1], (90, 100))
    clip = tmp_path / "pan.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"MJPG"), 10, (320, 240))
    for i in range(12):
        frame = np.full((240, 320, 3), 90, np.uint8)
        frame[60:160, 40 + 8 * i : 130 + 8 * i] = face
        writer.write(frame)
    writer.release()
    out = tmp_path / "frames.jsonl"
    assert main(["detect", str(clip), "--track", "-o", str(out), "--no-progress"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 12
    assert [[f["track_id"] for f in r["faces"]] for r in records] == [[1]] * 12
