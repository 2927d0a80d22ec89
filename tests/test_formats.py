import json

import numpy as np

from retinakit import Faces
from retinakit.io.formats import COCO_KEYPOINTS, to_coco


def faces() -> Faces:
    points = np.arange(10, dtype=float).reshape(1, 5, 2) + 20
    return Faces(np.array([[10.5, 20.0, 40.5, 60.0]]), np.array([0.91]), points)


def test_json_record():
    (record,) = json.loads(faces().to_json())
    assert record == {
        "box": [10.5, 20.0, 40.5, 60.0],
        "score": 0.91,
        "landmarks": [[20, 21], [22, 23], [24, 25], [26, 27], [28, 29]],
    }


def test_wider_rows():
    np.testing.assert_allclose(faces().to_wider(), [[10.5, 20.0, 30.0, 40.0, 0.91]], rtol=1e-6)


def test_coco():
    data = to_coco([("a.jpg", 100, 80, faces()), ("b.jpg", 50, 50, Faces.empty())])
    assert [im["id"] for im in data["images"]] == [1, 2]
    (ann,) = data["annotations"]
    assert ann["bbox"] == [10.5, 20.0, 30.0, 40.0] and ann["area"] == 1200.0 and ann["image_id"] == 1
    assert ann["keypoints"][:6] == [20.0, 21.0, 2, 22.0, 23.0, 2] and ann["num_keypoints"] == 5
    assert (
        data["categories"][0]["keypoints"]
        == COCO_KEYPOINTS
        == ["left_eye", "right_eye", "nose", "left_mouth", "right_mouth"]
    )
    assert faces().to_coco("a.jpg", 100, 80)["annotations"][0]["score"] == 0.91
