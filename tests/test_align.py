import numpy as np
import pytest

from retinakit.ops.align import ARCFACE_TEMPLATE, align_faces, similarity_transform, template


def _similarity(angle: float, scale: float, tx: float, ty: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[scale * c, -scale * s, tx], [scale * s, scale * c, ty]])


@pytest.mark.parametrize(
    ("angle", "scale", "tx", "ty"),
    [(0.0, 1.0, 0.0, 0.0), (0.3, 2.5, 10.0, -4.0), (-1.2, 0.4, 300.0, 120.0), (np.pi, 1.7, -50.0, 8.0)],
)
def test_known_similarity_is_recovered(angle, scale, tx, ty):
    rng = np.random.default_rng(3)
    src = rng.uniform(0, 200, (5, 2))
    m = _similarity(angle, scale, tx, ty)
    dst = src @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(similarity_transform(src, dst), m, atol=1e-6)


def test_reflection_is_never_returned():
    src = ARCFACE_TEMPLATE.copy()
    mirrored = src * [-1, 1]  # a reflection cannot be represented: best rotation instead
    m = similarity_transform(src, mirrored)
    assert np.linalg.det(m[:, :2]) > 0


def test_bad_point_sets():
    with pytest.raises(ValueError):
        similarity_transform(np.zeros((5, 2)), np.ones((5, 2)))
    with pytest.raises(ValueError):
        similarity_transform(np.zeros((5, 2)), np.zeros((4, 2)))


def test_template_scaling():
    np.testing.assert_allclose(template(224), ARCFACE_TEMPLATE * 2)
    np.testing.assert_allclose(template(112), ARCFACE_TEMPLATE)


def test_warp_puts_a_marked_point_on_the_template():
    # an image with a bright dot at each landmark of a rotated, scaled face
    m = _similarity(0.4, 2.0, 60.0, 20.0)
    points = ARCFACE_TEMPLATE @ m[:, :2].T + m[:, 2]
    image = np.zeros((400, 400), np.uint8)
    x, y = (round(float(v)) for v in points[0])  # mark the left eye only
    image[y - 1 : y + 2, x - 1 : x + 2] = 255
    crop = align_faces(image, points[None], size=112)[0]
    y, x = np.unravel_index(np.argmax(crop), crop.shape)
    assert abs(x - ARCFACE_TEMPLATE[0, 0]) <= 1.5 and abs(y - ARCFACE_TEMPLATE[0, 1]) <= 1.5


def test_astronaut_eyes_land_on_the_template(detector, astronaut_rgb):
    faces = detector(astronaut_rgb, color="rgb")
    faces = faces[faces.scores > 0.9]
    crops = faces.align(astronaut_rgb, size=112)
    assert crops.shape == (1, 112, 112, 3) and crops.dtype == np.uint8
    # detect again inside the crop (upscaled so the face is large enough): eyes near the template
    big = np.ascontiguousarray(np.kron(crops[0], np.ones((2, 2, 1), np.uint8)))
    again = detector(big, color="rgb")
    again = again[again.scores > 0.5]
    assert len(again) >= 1
    eyes = again.landmarks[0, :2] / 2
    np.testing.assert_allclose(eyes, ARCFACE_TEMPLATE[:2], atol=4.0)
    assert faces.align(astronaut_rgb, size=224).shape == (1, 224, 224, 3)
