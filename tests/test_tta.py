import numpy as np
import pytest

from retinakit import Detector, Faces
from retinakit.inference.tta import TTAConfig, box_vote, flip_faces, merge_passes


def face(x1, score, dx=0.0):
    x = x1 + dx
    points = np.array([[x + 10, 20], [x + 30, 20], [x + 20, 30], [x + 12, 40], [x + 28, 40]], float)
    return Faces(np.array([[x, 0, x + 40, 50]], float), np.array([score]), points[None])


def test_flip_maps_boxes_back_and_swaps_left_right():
    f = face(10, 0.9)
    back = flip_faces(f, width=100)
    np.testing.assert_allclose(back.boxes, [[50, 0, 90, 50]])
    # the image-left eye of the flipped result is the mirror of the original right eye
    np.testing.assert_allclose(back.landmarks[0, 0], [100 - 40, 20])
    np.testing.assert_allclose(back.landmarks[0, 1], [100 - 20, 20])
    assert back.landmarks[0, 0, 0] < back.landmarks[0, 1, 0]
    np.testing.assert_allclose(flip_faces(back, 100).landmarks, f.landmarks)  # flip twice = identity


def test_box_vote_weighted_mean_of_boxes_and_landmarks():
    a, b = face(10, 0.9), face(10, 0.3, dx=4.0)  # IoU 36*50 / (44*50) = 0.82
    far = face(200, 0.5)
    merged = box_vote(Faces.merge([a, b, far]), 0.4, "max", num_passes=2)
    assert len(merged) == 2
    np.testing.assert_allclose(merged.boxes[0], [10 + 1.0, 0, 50 + 1.0, 50])  # 4 * 0.3 / 1.2 = 1
    np.testing.assert_allclose(merged.landmarks[0], a.landmarks[0] + [1.0, 0.0])
    assert merged.scores.tolist() == pytest.approx([0.9, 0.5])
    means = box_vote(Faces.merge([a, b, far]), 0.4, "mean", num_passes=2)
    assert means.scores[0] == pytest.approx(0.6)
    consensus = box_vote(Faces.merge([a, b, far]), 0.4, "consensus", num_passes=2)
    assert consensus.scores.tolist() == pytest.approx([0.6, 0.25])  # (0.9+0.3)/2 first, 0.5/2 next


def test_nms_merge_keeps_the_best_box_unchanged():
    a, b = face(10, 0.9), face(10, 0.3, dx=4.0)
    merged = merge_passes([a, b], TTAConfig(merge="nms"), max_detections=10)
    assert len(merged) == 1
    np.testing.assert_allclose(merged.boxes, a.boxes)


def test_vote_empty():
    assert len(box_vote(Faces.empty(), 0.4, "max", 3)) == 0


def test_paper_tta_on_the_astronaut(detector, astronaut_rgb):
    tta = Detector(scales=(300, 500), flip=True, backend_instance=detector.backend)
    faces = tta(astronaut_rgb, color="rgb")
    single = detector(astronaut_rgb, color="rgb")
    assert len(faces[faces.scores > 0.9]) == 1
    np.testing.assert_allclose(faces.boxes[0], single.boxes[0], atol=6)
    points = faces.landmarks[0]
    assert points[0, 0] < points[1, 0] and points[3, 0] < points[4, 0]  # order survives the flips
