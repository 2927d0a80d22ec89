import numpy as np
import pytest

from retinakit.config import AnchorConfig
from retinakit.core.anchors import generate_anchors
from retinakit.core.outputs import RawOutputs
from retinakit.inference.postprocess import PostprocessConfig, face_scores, postprocess
from retinakit.inference.preprocess import ImageFrame

ANCHORS = AnchorConfig(strides=(8,), sizes=((16.0,),))
V = (0.1, 0.2)


def raw_with_faces(n_anchors: int, faces: dict[int, float]) -> RawOutputs:
    logits = np.zeros((1, n_anchors, 2), np.float32)
    logits[0, :, 0] = 8.0  # background everywhere
    for i, logit in faces.items():
        logits[0, i] = [0.0, logit]
    return RawOutputs(np.zeros((1, n_anchors, 4), np.float32), logits, np.zeros((1, n_anchors, 10), np.float32))


def test_face_scores_is_softmax():
    logits = np.array([[0.0, 0.0], [1.0, 3.0], [5.0, -5.0]])
    e = np.exp(logits)
    np.testing.assert_allclose(face_scores(logits), e[:, 1] / e.sum(1), rtol=1e-6)


def test_one_face_decodes_at_its_anchor_and_maps_back():
    anchors = generate_anchors(ANCHORS, 32, 32)  # 4x4 cells
    raw = raw_with_faces(len(anchors), {5: 4.0})  # row 1, col 1: centre (12, 12)
    frame = ImageFrame(height=64, width=64, scale_x=0.5, scale_y=0.5)
    (faces,) = postprocess(raw, anchors, V, [frame], PostprocessConfig(score_threshold=0.5))
    assert len(faces) == 1
    np.testing.assert_allclose(faces.boxes[0], [8, 8, 40, 40])  # (4, 4, 20, 20) / 0.5
    np.testing.assert_allclose(faces.landmarks[0], np.full((5, 2), 24.0))
    assert faces.scores[0] == pytest.approx(1 / (1 + np.exp(-4.0)), rel=1e-6)


def test_threshold_top_k_nms_and_keep_k():
    anchors = generate_anchors(ANCHORS, 32, 32)
    raw = raw_with_faces(len(anchors), {0: 3.0, 1: 2.0, 10: 1.0, 15: -3.0})
    frame = ImageFrame(32, 32)
    (f,) = postprocess(raw, anchors, V, [frame], PostprocessConfig(score_threshold=0.5, nms_threshold=0.4))
    # anchor 15 is below 0.5; anchors 0 and 1 (8 px apart, 16 px boxes) overlap with IoU 1/3 -> both kept
    assert len(f) == 3 and np.all(np.diff(f.scores) < 0)
    (f,) = postprocess(raw, anchors, V, [frame], PostprocessConfig(score_threshold=0.5, nms_threshold=0.3))
    assert len(f) == 2
    (f,) = postprocess(raw, anchors, V, [frame], PostprocessConfig(score_threshold=0.01, max_detections=2))
    assert len(f) == 2
    (f,) = postprocess(raw, anchors, V, [frame], PostprocessConfig(score_threshold=0.01, pre_nms_top_k=1))
    assert len(f) == 1 and f.scores[0] == pytest.approx(1 / (1 + np.exp(-3.0)), rel=1e-6)


def test_boxes_are_clipped_to_the_image():
    anchors = generate_anchors(ANCHORS, 16, 16)
    raw = raw_with_faces(len(anchors), {0: 5.0})  # centre (4, 4), 16 px box sticks out
    (f,) = postprocess(raw, anchors, V, [ImageFrame(16, 16)], PostprocessConfig())
    np.testing.assert_allclose(f.boxes[0], [0, 0, 12, 12])
    assert f.landmarks[0, 0].tolist() == [4, 4]  # landmarks are not clipped


def test_no_face_gives_empty_result():
    anchors = generate_anchors(ANCHORS, 16, 16)
    (f,) = postprocess(raw_with_faces(len(anchors), {}), anchors, V, [ImageFrame(16, 16)], PostprocessConfig())
    assert f.boxes.shape == (0, 4) and f.landmarks.shape == (0, 5, 2)


def test_anchor_count_mismatch_is_an_error():
    anchors = generate_anchors(ANCHORS, 16, 16)
    with pytest.raises(ValueError, match="anchors"):
        postprocess(raw_with_faces(3, {}), anchors, V, [ImageFrame(16, 16)], PostprocessConfig())


@pytest.mark.parametrize("kwargs", [{"score_threshold": 1.0}, {"nms_threshold": 0.0}, {"max_detections": 0}])
def test_invalid_thresholds(kwargs):
    with pytest.raises(ValueError):
        PostprocessConfig(**kwargs)
