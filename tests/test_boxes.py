import numpy as np

from retinakit.core.boxes import box_iou, nms


def test_iou_hand_computed():
    a = np.array([[0, 0, 10, 10]], dtype=np.float32)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10], [0, 0, 5, 5]], dtype=np.float32)
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0, 1, 25 / 100]], rtol=1e-6)


def test_iou_empty_shapes():
    assert box_iou(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)


def test_nms_suppresses_overlaps_above_threshold_only():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [5, 0, 15, 10], [50, 50, 60, 60]], dtype=np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], dtype=np.float32)
    # IoU(0,1) = 90/110 = 0.82 -> suppressed; IoU(0,2) = 1/3 -> kept at 0.4
    assert nms(boxes, scores, 0.4).tolist() == [3, 0, 2]
    assert nms(boxes, scores, 0.3).tolist() == [3, 0]
    assert nms(boxes, scores, 0.9).tolist() == [3, 0, 1, 2]


def test_nms_empty():
    out = nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.4)
    assert out.shape == (0,) and out.dtype == np.int64
