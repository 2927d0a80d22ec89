import json

import numpy as np
import pytest

from retinakit import Faces


def sample() -> Faces:
    boxes = np.array([[0, 0, 10, 20], [5, 5, 15, 15]])
    return Faces(boxes, np.array([0.9, 0.6]), np.arange(20).reshape(2, 5, 2))


def test_empty_has_right_shapes_and_dtypes():
    f = Faces.empty()
    assert len(f) == 0
    assert f.boxes.shape == (0, 4) and f.scores.shape == (0,) and f.landmarks.shape == (0, 5, 2)
    assert f.boxes.dtype == f.scores.dtype == f.landmarks.dtype == np.float32
    assert f.to_list() == []


def test_mask_int_and_slice_indexing():
    f = sample()
    assert len(f[f.scores > 0.7]) == 1
    assert f[1].scores.tolist() == [pytest.approx(0.6)]
    assert f[:1].boxes.tolist() == [[0, 0, 10, 20]]
    assert f.widths.tolist() == [10, 10] and f.heights.tolist() == [20, 10]


def test_lengths_must_agree():
    with pytest.raises(ValueError, match="same length"):
        Faces(np.zeros((2, 4)), np.zeros(1), np.zeros((2, 5, 2)))


def test_merge_and_to_list_json():
    f = Faces.merge([sample(), Faces.empty(), sample()[0]])
    assert len(f) == 3
    record = f.to_list()[0]
    assert record["box"] == [0, 0, 10, 20] and record["score"] == pytest.approx(0.9)
    assert record["landmarks"][1] == [2, 3]
    json.dumps(f.to_list())
