"""End-to-end detection with the built-in model."""

import numpy as np
import pytest

from conftest import need_shared
from retinakit import Detector, FaceLandmark, Faces, ImageError


def test_astronaut_one_face_with_landmarks_in_order(detector, astronaut_rgb):
    faces = detector(astronaut_rgb, color="rgb")
    confident = faces[faces.scores > 0.9]
    assert len(confident) == 1
    (x1, y1, x2, y2), points = confident.boxes[0], confident.landmarks[0]
    assert np.all((points[:, 0] > x1) & (points[:, 0] < x2) & (points[:, 1] > y1) & (points[:, 1] < y2))
    assert points[FaceLandmark.LEFT_EYE, 0] < points[FaceLandmark.RIGHT_EYE, 0]
    assert points[FaceLandmark.LEFT_MOUTH, 0] < points[FaceLandmark.RIGHT_MOUTH, 0]
    assert points[FaceLandmark.LEFT_EYE, 1] < points[FaceLandmark.NOSE, 1] < points[FaceLandmark.LEFT_MOUTH, 1]
    # the face of the astronaut photo lies in the upper middle of the 512 x 512 image
    assert 150 < (x1 + x2) / 2 < 300 and 60 < (y1 + y2) / 2 < 180


def test_colour_order_matters(detector, astronaut_rgb):
    rgb = detector(astronaut_rgb, color="rgb")
    bgr = detector(np.ascontiguousarray(astronaut_rgb[:, :, ::-1]), color="bgr")
    np.testing.assert_array_equal(rgb.boxes, bgr.boxes)


def test_no_face_gives_empty_result_of_right_shapes(detector):
    faces = detector(np.full((120, 160, 3), 127, np.uint8), color="bgr")
    assert isinstance(faces, Faces) and len(faces) == 0
    assert faces.boxes.shape == (0, 4) and faces.landmarks.shape == (0, 5, 2)


def test_path_and_pil_inputs_agree(detector, astronaut_rgb, tmp_path):
    Image = pytest.importorskip("PIL.Image")
    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut_rgb).save(path)
    a = detector(path)
    b = detector(Image.open(path))
    c = detector(str(path))
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.boxes, c.boxes)


def test_unreadable_path_raises_image_error(detector, tmp_path):
    with pytest.raises(ImageError, match="nope.jpg"):
        detector(tmp_path / "nope.jpg")


def test_resize_maps_back_to_original_coordinates(astronaut_rgb):
    full = Detector()(astronaut_rgb, color="rgb")
    small = Detector(max_side=256)(astronaut_rgb, color="rgb")
    big = small[small.scores > 0.9]
    assert len(big) == 1
    np.testing.assert_allclose(big.boxes[0], full.boxes[0], atol=6)  # same face, original pixels


def test_unknown_option_is_rejected():
    with pytest.raises(TypeError, match="unknown Detector option"):
        Detector(treshold=0.3)


def _assert_same(a: Faces, b: Faces, atol: float = 1e-3) -> None:
    assert len(a) == len(b)
    np.testing.assert_allclose(a.boxes, b.boxes, atol=atol)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
    np.testing.assert_allclose(a.landmarks, b.landmarks, atol=atol)


@pytest.mark.parametrize("max_side", [None, 480])
def test_onnx_and_torch_backends_agree_batch_1_and_3(detector, torch_detector, wider_images, max_side):
    if len(wider_images) < 3:
        pytest.skip("needs three WIDER images")
    onnx_det = Detector(max_side=max_side, score_threshold=0.3, backend_instance=detector.backend)
    torch_det = Detector(max_side=max_side, score_threshold=0.3, backend_instance=torch_detector.backend)
    for a, b in zip(onnx_det.detect_batch(wider_images[:1]), torch_det.detect_batch(wider_images[:1]), strict=True):
        assert len(a) > 0
        _assert_same(a, b)
    batch_onnx = onnx_det.detect_batch(wider_images)
    batch_torch = torch_det.detect_batch(wider_images)
    for a, b in zip(batch_onnx, batch_torch, strict=True):
        _assert_same(a, b)


def test_batch_of_mixed_sizes_matches_single_images(detector, wider_images):
    """Padding to the batch size changes nothing away from the padded border."""
    if len(wider_images) < 2:
        pytest.skip("needs WIDER images")
    det = Detector(score_threshold=0.5, backend_instance=detector.backend)
    singles = [det(p) for p in wider_images]
    batched = det.detect_batch(wider_images)
    for s, b in zip(singles, batched, strict=True):
        assert abs(len(s) - len(b)) <= 1
        # every confident single-image face is found in the batch run too
        from retinakit.core.boxes import box_iou

        iou = box_iou(s.boxes[s.scores > 0.8], b.boxes)
        assert np.all(iou.max(axis=1) > 0.9)


def test_val_dev_image_finds_the_annotated_faces(detector):
    root = need_shared("data", "widerface", "val-dev", "images")
    faces = detector(root / "0--Parade" / "0_Parade_Parade_0_194.jpg")
    # the official ground truth lists 5 faces in this image; all are large and frontal
    assert len(faces[faces.scores > 0.9]) == 5


def test_with_options_shares_the_model_and_refuses_to_change_it(detector):
    derived = detector.with_options(score_threshold=0.8, detail=4)
    assert derived.backend is detector.backend and derived.config.detail == 4
    assert derived.config.score_threshold == 0.8 and detector.config.score_threshold == 0.5
    with pytest.raises(ValueError, match=r"\['precision', 'weights'\] cannot change"):
        detector.with_options(weights="other.onnx", precision="int8")
