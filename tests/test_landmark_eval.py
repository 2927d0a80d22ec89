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
