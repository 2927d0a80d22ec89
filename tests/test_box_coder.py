import numpy as np
import pytest

from retinakit.core.box_coder import MAX_LOG_SCALE, decode_boxes, decode_landmarks, encode_boxes, encode_landmarks

V = (0.1, 0.2)


def test_decode_hand_computed():
    anchors = np.array([[100.0, 50.0, 20.0, 20.0]])
    deltas = np.array([[1.0, -2.0, 0.0, np.log(2) / 0.2]])
    # centre: 100 + 1*0.1*20 = 102, 50 - 2*0.1*20 = 46; size: w 20, h 40
    np.testing.assert_allclose(decode_boxes(deltas, anchors, V), [[92, 26, 112, 66]], rtol=1e-6)


def test_encode_decode_roundtrip_numpy():
    rng = np.random.default_rng(0)
    anchors = np.concatenate([rng.uniform(0, 500, (50, 2)), rng.uniform(8, 200, (50, 1)).repeat(2, 1)], 1)
    xy = rng.uniform(0, 500, (50, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 300, (50, 2))], 1)
    np.testing.assert_allclose(decode_boxes(encode_boxes(boxes, anchors, V), anchors, V), boxes, rtol=1e-9, atol=1e-9)
    points = rng.uniform(0, 500, (50, 5, 2))
    enc = encode_landmarks(points, anchors, V)
    assert enc.shape == (50, 10)
    np.testing.assert_allclose(decode_landmarks(enc, anchors, V), points, atol=1e-9)


def test_landmark_delta_order_is_x_then_y_per_point():
    anchors = np.array([[10.0, 20.0, 10.0, 10.0]])
    deltas = np.zeros((1, 10))
    deltas[0, 2] = 1.0  # second point, x
    out = decode_landmarks(deltas, anchors, V)
    np.testing.assert_allclose(out[0, 1], [11.0, 20.0])
    np.testing.assert_allclose(out[0, 0], [10.0, 20.0])


def test_decode_clamps_huge_size_deltas():
    anchors = np.array([[0.0, 0.0, 16.0, 16.0]])
    out = decode_boxes(np.array([[0, 0, 1e4, 1e4]]), anchors, V)
    assert np.all(np.isfinite(out))
    assert out[0, 2] - out[0, 0] == pytest.approx(16 * np.exp(MAX_LOG_SCALE))


def test_same_formulas_on_torch_tensors():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    anchors = np.concatenate([rng.uniform(0, 500, (20, 2)), rng.uniform(8, 200, (20, 2))], 1)
    deltas = rng.normal(size=(20, 4))
    expect = decode_boxes(deltas, anchors, V)
    got = decode_boxes(torch.from_numpy(deltas), torch.from_numpy(anchors), V)
    assert isinstance(got, torch.Tensor)
    np.testing.assert_allclose(got.numpy(), expect, rtol=1e-10)
    enc = encode_boxes(torch.from_numpy(expect), torch.from_numpy(anchors), V)
    np.testing.assert_allclose(enc.numpy(), deltas, atol=1e-9)
