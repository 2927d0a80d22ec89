import numpy as np
import pytest

from conftest import need_shared
from retinakit.io.annotations import AnnotationError, parse_label_txt, parse_wider_gt

LABEL = """# ev/a.jpg
10 20 30 40 15.0 30.0 0.0 30.0 30.0 0.0 22.0 40.0 0.0 16.0 50.0 0.0 29.0 50.0 0.0 0.9
5 5 10 10 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 0.2
# ev/empty.jpg
# ev/c.jpg
1 2 3 4
"""


def test_label_txt(tmp_path):
    path = tmp_path / "label.txt"
    path.write_text(LABEL)
    a, empty, c = parse_label_txt(path)
    assert a.image == "ev/a.jpg" and len(a) == 2
    np.testing.assert_allclose(a.boxes[0], [10, 20, 40, 60])
    assert a.has_landmarks.tolist() == [True, False]
    np.testing.assert_allclose(a.landmarks[0], [[15, 30], [30, 30], [22, 40], [16, 50], [29, 50]])
    assert len(empty) == 0 and empty.boxes.shape == (0, 4) and empty.landmarks.shape == (0, 5, 2)
    assert c.has_landmarks.tolist() == [False]


def test_label_txt_errors_name_file_and_line(tmp_path):
    path = tmp_path / "label.txt"
    path.write_text("# ev/a.jpg\n1 2 3 4\n1 2 x 4\n")
    with pytest.raises(AnnotationError, match=r"label.txt:3: not numbers"):
        parse_label_txt(path)
    path.write_text("1 2 3 4\n")
    with pytest.raises(AnnotationError, match=r"label.txt:1: face line before"):
        parse_label_txt(path)
    path.write_text("# a.jpg\n1 2 3 4 5 6\n")
    with pytest.raises(AnnotationError, match=r"label.txt:2: expected 4 box values"):
        parse_label_txt(path)


def test_official_format_with_empty_image_and_invalid_face(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("ev/a.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n5 5 6 6 0 0 0 1 0 0\nev/b.jpg\n0\n0 0 0 0 0 0 0 0 0 0\n")
    a, b = parse_wider_gt(path)
    np.testing.assert_allclose(a.boxes, [[1, 2, 4, 6]])
    assert len(b) == 0 and b.image == "ev/b.jpg"


def test_real_train_subset_labels():
    root = need_shared("data", "widerface", "train-subset")
    anns = parse_label_txt(root / "label.txt")
    assert len(anns) == 779
    assert sum(int(a.has_landmarks.sum()) for a in anns) == 124
    official = parse_wider_gt(root / "wider_face_train_bbx_gt.txt")
    assert len(official) == 779
