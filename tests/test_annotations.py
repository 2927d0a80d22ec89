import re

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


# ----------------------------------------------------------------------------- io.labels: every format

import json  # noqa: E402

import cv2  # noqa: E402

from retinakit.cli import main  # noqa: E402
from retinakit.io.labels import LabelOptions, check_labels, detect_format, read_labels, write_labels  # noqa: E402
from retinakit.io.labels.yolo import parse_simple_yaml  # noqa: E402

POINTS = [[15, 30], [30, 30], [22, 40], [16, 50], [29, 50]]


def _images(root, sizes=(("ev/a.jpg", 100, 80), ("ev/b.jpg", 64, 64))):
    for name, w, h in sizes:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / name), np.full((h, w, 3), 128, np.uint8))
    return root


def _coco(path, annotations, categories=None, images=None):
    data = {
        "images": images or [{"id": 1, "file_name": "ev/a.jpg", "width": 100, "height": 80}],
        "annotations": annotations,
        "categories": categories
        or [{"id": 3, "name": "face", "keypoints": ["left_eye", "right_eye", "nose", "left_mouth", "right_mouth"]}],
    }
    path.write_text(json.dumps(data))
    return path


def _kp(points, v=2):
    return [c for x, y in points for c in (x, y, v)]


def test_coco_keypoints_are_mapped_by_name_crowd_ignored_and_unlabelled_points_mean_no_landmarks(tmp_path):
    root = _images(tmp_path / "images")
    # the file lists its keypoints in another order, named as CVAT exports them
    names = ["nose", "mouth_right", "left_eye", "right_eye", "mouth_left"]
    order = [2, 4, 0, 1, 3]
    shuffled = [POINTS[i] for i in order]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 20, 30, 40], "keypoints": _kp(shuffled)},
        {"id": 2, "image_id": 1, "category_id": 3, "bbox": [50, 5, 10, 10], "keypoints": _kp(shuffled, 0)},
        {"id": 3, "image_id": 1, "category_id": 3, "bbox": [60, 40, 30, 30], "iscrowd": 1},
        {"id": 4, "image_id": 1, "category_id": 7, "bbox": [1, 1, 5, 5]},
    ]
    cats = [{"id": 3, "name": "Face", "keypoints": names}, {"id": 7, "name": "person"}]
    path = _coco(tmp_path / "a.json", anns, cats)
    assert detect_format(path) == "coco"
    (a,) = read_labels(path, LabelOptions(images=str(root))).images
    np.testing.assert_allclose(a.boxes, [[10, 20, 40, 60], [50, 5, 60, 15]])
    np.testing.assert_allclose(a.landmarks[0], POINTS)
    assert a.has_landmarks.tolist() == [True, False] and a.size == (100, 80)
    np.testing.assert_allclose(a.ignore, [[60, 40, 90, 70]])
    (p,) = read_labels(path, LabelOptions(images=str(root), category="7")).images  # the other category, by id
    np.testing.assert_allclose(p.boxes, [[1, 1, 6, 6]])
    # unnamed five keypoints: the documented default, FaceLandmark order
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 40], "keypoints": _kp(POINTS)}]
    path = _coco(tmp_path / "b.json", anns, [{"id": 1, "name": "face"}])
    np.testing.assert_allclose(read_labels(path, LabelOptions(images=str(root))).images[0].landmarks[0], POINTS)
    # --keypoints for labels that name the subject's left/right: swapped back into image left/right
    subject = ("right_eye", "left_eye", "nose", "right_mouth", "left_mouth")
    (s,) = read_labels(path, LabelOptions(images=str(root), keypoints=subject)).images
    np.testing.assert_allclose(s.landmarks[0], [POINTS[i] for i in (1, 0, 2, 4, 3)])


def test_yolo_folder_and_data_yaml_with_kpt_shape(tmp_path):
    _images(tmp_path / "ds" / "images" / "train")
    labels = tmp_path / "ds" / "labels" / "train" / "ev"
    labels.mkdir(parents=True)
    kp = " ".join(f"{x / 100:.4f} {y / 80:.4f} 2" for x, y in POINTS)
    (labels / "a.txt").write_text(f"0 0.25 0.5 0.3 0.5 {kp}\n1 0.5 0.5 0.1 0.1 {' '.join(['0'] * 15)}\n")
    (tmp_path / "ds" / "data.yaml").write_text(
        "path: .  # dataset root\ntrain: images/train\nval: images/train\nkpt_shape: [5, 3]\n"
        "names:\n  0: face\n  1: hand\n"
    )
    for path in (tmp_path / "ds", tmp_path / "ds" / "data.yaml"):
        assert detect_format(path) == "yolo"
        labelset = read_labels(path)
        a, b = labelset.images
        assert (a.image, b.image, len(b)) == ("ev/a.jpg", "ev/b.jpg", 0)  # no label file: no faces
        np.testing.assert_allclose(a.boxes, [[10, 20, 40, 60]], atol=1e-4)
        np.testing.assert_allclose(a.landmarks[0], POINTS, atol=1e-2)
    (hand,) = [a for a in read_labels(tmp_path / "ds", LabelOptions(category="hand")).images if len(a)]
    np.testing.assert_allclose(hand.boxes, [[45, 36, 55, 44]], atol=1e-4)
    assert not hand.has_landmarks.any()  # visibility 0: not labelled


def test_simple_yaml_parser_reads_what_pyyaml_reads(tmp_path):
    yaml = pytest.importorskip("yaml")
    text = (
        "# comment\npath: ../datasets/faces\ntrain: images/train  # the split\nval: 'images/val'\n"
        "kpt_shape: [5, 3]\nflip_idx: [1, 0, 2, 4, 3]\nnc: 1\nnames:\n  0: face\nlist:\n  - a\n  - b\n"
    )
    assert parse_simple_yaml(text, tmp_path / "data.yaml") == yaml.safe_load(text)
    with pytest.raises(AnnotationError, match=r"data.yaml:2: unsupported YAML"):
        parse_simple_yaml("a: 1\n  weird\n", tmp_path / "data.yaml")


def _synthetic(tmp_path):
    root = _images(tmp_path / "images")
    text = "# ev/a.jpg\n10 20 30 40 " + " ".join(f"{x} {y} 0.0" for x, y in POINTS) + " 0.9\n5.5 6 10 10\n# ev/b.jpg\n"
    (tmp_path / "label.txt").write_text(text)
    return read_labels(tmp_path / "label.txt", LabelOptions(images=str(root)))


@pytest.mark.parametrize("fmt", ["retinaface", "wider", "coco", "yolo"])
def test_every_format_written_reads_back_the_same_faces(tmp_path, fmt):
    original = _synthetic(tmp_path)
    target = tmp_path / "out" / ("yolo" if fmt == "yolo" else f"labels.{fmt}")
    write_labels(original, fmt, target)
    back = read_labels(target, LabelOptions(format=fmt, images=None if fmt == "yolo" else str(original.root)))
    assert back.format == fmt
    by_name = {a.image: a for a in back.images}
    for a in original.images:
        b = by_name[a.image]
        np.testing.assert_allclose(b.boxes, a.boxes, atol=1e-3)
        if fmt != "wider":  # WIDER has no landmarks
            assert b.has_landmarks.tolist() == a.has_landmarks.tolist()
            np.testing.assert_allclose(b.landmarks, a.landmarks, atol=1e-3)


def test_faces_to_coco_and_wider_submission_files_read_back(tmp_path):
    from retinakit.io.formats import write_wider_file
    from retinakit.result import Faces

    root = _images(tmp_path / "images")
    boxes = np.array([[10.25, 20.5, 40, 60]], np.float32)
    faces = Faces(boxes, np.array([0.9], np.float32), np.array([POINTS], np.float32))
    (tmp_path / "det.json").write_text(json.dumps(faces.to_coco("ev/a.jpg", 100, 80)))
    (a,) = read_labels(tmp_path / "det.json", LabelOptions(images=str(root))).images
    np.testing.assert_allclose(a.boxes, boxes, atol=0.01)
    np.testing.assert_allclose(a.landmarks[0], POINTS, atol=0.01)
    write_wider_file(tmp_path / "sub", "ev/a", np.array([[10.25, 20.5, 29.75, 39.5, 0.9]]))
    (w,) = read_labels(tmp_path / "sub", LabelOptions(images=str(root))).images
    assert w.image == "ev/a.jpg"
    np.testing.assert_allclose(w.boxes, boxes, atol=0.01)


def _yolo_ds(tmp_path, line, yaml="train: images\nkpt_shape: [5, 3]\nnames: [face]\n"):
    _images(tmp_path / "y" / "images")
    (tmp_path / "y" / "labels" / "ev").mkdir(parents=True)
    (tmp_path / "y" / "labels" / "ev" / "a.txt").write_text("0 0.5 0.5 0.2 0.2 " + " ".join(["0.5"] * 15) + "\n" + line)
    (tmp_path / "y" / "data.yaml").write_text(yaml)
    return tmp_path / "y"


def _face(**changes):
    ann = {"id": 9, "image_id": 1, "category_id": 3, "bbox": [10, 20, 30, 40], "keypoints": _kp(POINTS)}
    return {**ann, **changes}


BAD = [
    ("retinaface", "# ev/a.jpg\n10 20 0 40\n", r"label.txt:2: box of non-positive size 0 x 40"),
    ("retinaface", "# ev/a.jpg\n90 20 30 40\n", r"label.txt:2: box \(90, 20, 120, 60\) .* outside the 100 x 80 image"),
    ("retinaface", "# ev/a.jpg\n10 20 30 40 1 2 3\n", r"label.txt:2: expected 4 box values and optionally 15 landmark"),
    ("retinaface", "# ev/missing.jpg\n10 20 30 40\n", r"label.txt:1: image 'ev/missing.jpg' listed but no such file"),
    ("retinaface", "# ev/a.jpg\n10 20 x 40\n", r"label.txt:2: not numbers: '10 20 x 40'"),
    ("wider", "ev/a.jpg\n1\n10 20 -5 40 0 0 0 0 0 0\n", r"gt.txt:3: box of non-positive size -5 x 40"),
    ("wider", "ev/a.jpg\nmany\n", r"gt.txt:2: expected the face count of image 'ev/a.jpg', got 'many'"),
    ("wider", "ev/a.jpg\n-3\n", r"gt.txt:2: expected the face count of image 'ev/a.jpg', got '-3'"),
    ("retinaface", "# ev/a.jpg\n10 20 30 40" + " nan" * 15 + "\n", r"label.txt:2: landmark coordinates are not finite"),
    ("wider", "ev/gone.jpg\n0\n0 0 0 0 0 0 0 0 0 0\n", r"gt.txt:1: image 'ev/gone.jpg' listed but no such file"),
    ("coco", [_face(bbox=[10, 20, 0, 5])], r"a.json: annotation id 9: box of non-positive size 0 x 5"),
    ("coco", [_face(bbox=[95, 20, 30, 40])], r"a.json: annotation id 9: box .* outside the 100 x 80 image"),
    ("coco", [_face(keypoints=[1, 2, 2] * 4)], r"a.json: annotation id 9: 12 keypoint values, expected 15"),
    ("coco", [_face(category_id=5)], r"a.json: annotation id 9: unknown category_id 5"),
    ("coco", [_face(image_id=42)], r"a.json: annotation id 9: image_id 42 is not in 'images'"),
    ("coco", [_face(bbox="wide")], r"a.json: annotation id 9: bbox must be 4 numbers"),
    ("yolo", "0 0.5 1.2 0.1 0.1 " + " ".join(["0.5"] * 15), r"a.txt:2: cy = 1.2 outside \[0, 1\]"),
    ("yolo", "0 0.5 0.5 0.1 0.1 0.5 0.5 2", r"a.txt:2: 8 values, expected 5 \(class cx cy w h\) \+ 5 keypoints x 3"),
    ("yolo", "4 0.5 0.5 0.1 0.1 " + " ".join(["0.5"] * 15), r"a.txt:2: unknown class 4"),
    ("yolo", "0 0.5 0.5 0 0.1 " + " ".join(["0.5"] * 15), r"a.txt:2: box of non-positive size 0 x 8"),
]


def _write_bad(tmp_path, fmt, content):
    root = _images(tmp_path / "images")
    if fmt == "retinaface":
        (tmp_path / "label.txt").write_text(content)
        return tmp_path / "label.txt", LabelOptions(images=str(root))
    if fmt == "wider":
        (tmp_path / "gt.txt").write_text(content)
        return tmp_path / "gt.txt", LabelOptions(images=str(root))
    if fmt == "coco":
        return _coco(tmp_path / "a.json", content), LabelOptions(images=str(root))
    return _yolo_ds(tmp_path, content), LabelOptions()


@pytest.mark.parametrize(("fmt", "content", "message"), BAD)
def test_bad_labels_name_file_and_line_or_annotation_id(tmp_path, fmt, content, message):
    path, options = _write_bad(tmp_path, fmt, content)
    checked = check_labels(path, options)
    assert len(checked.problems) == 1, checked.problems
    assert re.search(message, checked.problems[0]), checked.problems[0]
    assert "\n" not in checked.problems[0] and len(checked.problems[0]) <= 200
    if "non-positive" in message or "outside the" in message:  # unusable faces are skipped, and counted
        assert read_labels(path, options).skipped_faces == 1
    else:
        with pytest.raises(AnnotationError, match=message):
            read_labels(path, options)


def test_a_huge_file_is_never_echoed(tmp_path):
    """The first-user experience of the issue: a COCO file given as WIDER, a data.yaml, a 200 KB line."""
    coco = _coco(tmp_path / "big.json", [_face(id=i) for i in range(3000)])
    with pytest.raises(AnnotationError) as info:
        read_labels(coco, LabelOptions(format="wider", check_images=False))
    assert len(str(info.value)) < 200 and str(coco) in str(info.value)
    (tmp_path / "label.txt").write_text("# a.jpg\n" + "1 " * 100_000 + "\n")
    with pytest.raises(AnnotationError) as info:
        read_labels(tmp_path / "label.txt", LabelOptions(check_images=False))
    assert len(str(info.value)) < 200
    (tmp_path / "weird.txt").write_text("x" * 100_000)
    with pytest.raises(AnnotationError, match="name the format with --format") as info:
        read_labels(tmp_path / "weird.txt")
    assert len(str(info.value)) < 300


def test_several_categories_need_a_choice(tmp_path):
    cats = [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}]
    path = _coco(tmp_path / "a.json", [], cats)
    with pytest.raises(AnnotationError, match=r"2 categories \('person' \(1\), 'car' \(2\)\); choose one with"):
        read_labels(path, LabelOptions(check_images=False))
    with pytest.raises(AnnotationError, match=r"no category 'dog'"):
        read_labels(path, LabelOptions(category="dog", check_images=False))


def test_labels_check_cli_prints_counts_and_problems(tmp_path, capsys):
    original = _synthetic(tmp_path)
    write_labels(original, "coco", tmp_path / "ok.json")
    assert main(["labels", "check", str(tmp_path / "ok.json"), "--images", str(original.root)]) == 0
    out = capsys.readouterr().out
    assert "(coco): 2 images, 2 faces, 1 with landmarks, 0 ignore regions, 0 problems" in out
    path, _ = _write_bad(tmp_path, "coco", [_face(image_id=42), _face(id=10, category_id=5)])
    assert main(["train", "--data", str(path), "--images", str(tmp_path / "images"), "--check"]) == 1
    out = capsys.readouterr().out
    assert "1 images, 0 faces, 0 with landmarks, 0 ignore regions, 2 problems" in out
    assert "annotation id 9: image_id 42" in out and "annotation id 10: unknown category_id 5" in out


def test_training_subset_converted_to_coco_and_yolo_reads_back_within_half_a_pixel(tmp_path):
    root = need_shared("data", "widerface", "train-subset")
    original = read_labels(root / "label.txt")
    assert original.counts()["faces"] == 17970 and original.skipped_faces == 2  # two zero-size boxes
    assert main(["labels", "convert", str(root / "label.txt"), "--to", "coco", "-o", str(tmp_path / "t.json")]) == 0
    assert main(["labels", "convert", str(tmp_path / "t.json"), "--images", str(root / "images"), "--to", "yolo",
                 "-o", str(tmp_path / "yolo")]) == 0  # fmt: skip
    coco = read_labels(tmp_path / "t.json", LabelOptions(images=str(root / "images")))
    yolo = read_labels(tmp_path / "yolo" / "data.yaml")
    for back in (coco, yolo):
        by_name = {a.image: a for a in back.images}
        assert len(by_name) == 779
        box_err = lm_err = 0.0
        for a in original.images:
            b = by_name[a.image]
            assert len(b) == len(a) and b.has_landmarks.tolist() == a.has_landmarks.tolist()
            box_err = max(box_err, float(np.abs(b.boxes - a.boxes).max(initial=0)))
            lm_err = max(lm_err, float(np.abs(b.landmarks - a.landmarks).max(initial=0)))
        assert box_err <= 0.5 and lm_err <= 0.5, (back.format, box_err, lm_err)
