import numpy as np
import pytest

from retinakit import Faces
from retinakit.evaluation.nme import LandmarkGroundTruth, face_nme, summarize_nme


def test_nme_hand_computed():
    truth = LandmarkGroundTruth(np.array([[0, 0, 40, 10.0]]), np.zeros((1, 5, 2)))
    points = np.zeros((1, 5, 2))
    points[0, :, 0] = 2.0  # every point 2 px off; sqrt(40 * 10) = 20 -> NME 0.1
    faces = Faces(np.array([[0, 0, 40, 10.0]]), np.array([0.9]), points)
    assert face_nme(faces, truth)[0] == pytest.approx(0.1)


def test_unmatched_face_is_a_failure():
    truth = LandmarkGroundTruth(np.array([[0, 0, 10, 10.0], [100, 100, 120, 120]]), np.zeros((2, 5, 2)))
    faces = Faces(np.array([[0, 0, 10, 10.0]]), np.array([0.9]), np.zeros((1, 5, 2)))
    nme = face_nme(faces, truth)
    assert nme[0] == 0 and np.isinf(nme[1])
    summary = summarize_nme(nme)
    assert summary.num_matched == 1 and summary.failure_rate_10 == 0.5 and summary.mean_nme == 0


def test_landmark_nme_is_the_same_from_label_txt_and_from_coco(tmp_path):
    """evaluate_landmarks reads any format: the two landmark images of the train subset as COCO."""
    from conftest import need_shared
    from retinakit.evaluation.run import evaluate_landmarks
    from retinakit.io.labels import LabelOptions, LabelSet, read_labels, write_labels

    root = need_shared("data", "widerface", "train-subset")
    names = {"1--Handshaking/1_Handshaking_Handshaking_1_483.jpg", "1--Handshaking/1_Handshaking_Handshaking_1_666.jpg"}
    full = read_labels(root / "label.txt")
    two = LabelSet(full.source, full.format, full.root, [a for a in full.images if a.image in names])
    write_labels(two, "retinaface", tmp_path / "label.txt")
    write_labels(two, "coco", tmp_path / "two.json")
    images = root / "images"
    a = evaluate_landmarks(tmp_path / "label.txt", images)
    b = evaluate_landmarks(tmp_path / "two.json", images, label_options=LabelOptions(format="coco"))
    assert a.num_faces == b.num_faces == 4 and a.num_matched == b.num_matched
    assert b.mean_nme == a.mean_nme and 0 < a.mean_nme < 0.1
