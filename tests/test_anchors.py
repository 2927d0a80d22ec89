import numpy as np
import pytest

from retinakit.config import AnchorConfig, get_preset
from retinakit.core.anchors import feature_map_size, generate_anchors


def test_anchors_hand_computed_small_grid():
    config = AnchorConfig(strides=(8, 16), sizes=((10.0, 20.0), (40.0, 80.0)))
    a = generate_anchors(config, 16, 24)  # stride 8: 2x3 cells, stride 16: 1x2 cells
    assert a.shape == (2 * 3 * 2 + 1 * 2 * 2, 4)
    # level 0, row 0, col 0: both sizes; then col 1
    np.testing.assert_allclose(a[0], [4, 4, 10, 10])
    np.testing.assert_allclose(a[1], [4, 4, 20, 20])
    np.testing.assert_allclose(a[2], [12, 4, 10, 10])
    np.testing.assert_allclose(a[6], [4, 12, 10, 10])  # row 1 starts after 3 columns x 2 sizes
    np.testing.assert_allclose(a[12], [8, 8, 40, 40])  # level 1
    np.testing.assert_allclose(a[15], [24, 8, 80, 80])


def test_feature_map_size_rounds_up():
    assert feature_map_size(481, 639, 32) == (16, 20)
    assert feature_map_size(480, 640, 8) == (60, 80)


def test_anchors_are_cached_and_read_only():
    config = get_preset("mobilenet0.25").anchors
    a = generate_anchors(config, 480, 640)
    assert generate_anchors(config, 480, 640) is a
    with pytest.raises(ValueError):
        a[0, 0] = 1


def test_biubug6_anchor_count_at_640():
    config = get_preset("mobilenet0.25")
    assert len(generate_anchors(config.anchors, 640, 640)) == 16800 == config.count_anchors(640, 640)


def test_paper_anchors_102300_with_75_percent_on_p2():
    config = get_preset("resnet152-paper")
    anchors = generate_anchors(config.anchors, 640, 640)
    assert len(anchors) == 102_300
    p2 = 160 * 160 * 3
    assert np.all(anchors[:p2, 2] < 32) and np.all(anchors[p2:, 2] >= 32)
    assert p2 / len(anchors) == pytest.approx(0.7507, abs=1e-4)
    sizes = np.unique(anchors[:, 2])
    assert sizes.min() == 16 and sizes.max() == pytest.approx(256 * 2 ** (2 / 3), rel=1e-5)
    np.testing.assert_allclose(sizes[1] / sizes[0], 2 ** (1 / 3), rtol=1e-5)


def test_mismatched_anchor_strides_are_rejected():
    from dataclasses import replace

    config = get_preset("mobilenet0.25")
    with pytest.raises(ValueError, match="anchor strides"):
        replace(config, anchors=AnchorConfig(strides=(8, 16), sizes=((16.0,), (32.0,))))
