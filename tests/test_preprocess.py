import numpy as np
import pytest

from retinakit import ImageError, InputConfig, ResizePolicy
from retinakit.core.images import read_image
from retinakit.inference.preprocess import make_batch, resize, to_bgr
from retinakit.io.inputs import list_images


@pytest.mark.parametrize(
    ("policy", "size", "expected"),
    [
        (ResizePolicy(), (600, 800), 1.0),
        (ResizePolicy(short_side=1600, max_side=2150), (700, 1024), 2150 / 1024),  # long side capped
        (ResizePolicy(short_side=1600, max_side=2150), (768, 1024), 1600 / 768),
        (ResizePolicy(short_side=1600, max_side=2150), (1200, 1500), 1600 / 1200),
        (ResizePolicy(max_side=640), (768, 1024), 0.625),
        (ResizePolicy(max_side=640), (300, 400), 1.0),  # max_side alone never enlarges
        (ResizePolicy(short_side=500), (1000, 2000), 0.5),
    ],
)
def test_resize_policy(policy, size, expected):
    assert policy.scale(*size) == pytest.approx(expected)


def test_resize_frame_records_actual_factors():
    image = np.zeros((101, 203, 3), np.uint8)
    out, frame = resize(image, ResizePolicy(max_side=100))
    assert out.shape[:2] == (50, 100)
    assert frame.scale_x == pytest.approx(100 / 203) and frame.scale_y == pytest.approx(50 / 101)
    assert (frame.height, frame.width) == (101, 203)


def test_colour_order_is_explicit_for_arrays():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 255  # red
    with pytest.raises(ImageError, match="color='rgb'"):
        to_bgr(rgb)
    assert to_bgr(rgb, "rgb")[0, 0].tolist() == [0, 0, 255]
    assert to_bgr(rgb, "bgr")[0, 0].tolist() == [255, 0, 0]
    assert to_bgr(np.full((3, 3), 7, np.uint8)).shape == (3, 3, 3)  # grayscale needs no order
    rgba = np.zeros((2, 2, 4), np.uint8)
    assert to_bgr(rgba, "rgb").shape == (2, 2, 3)


def test_pil_input():
    Image = pytest.importorskip("PIL.Image")
    im = Image.new("RGB", (5, 3), (10, 20, 30))
    assert to_bgr(im)[0, 0].tolist() == [30, 20, 10]


@pytest.mark.parametrize("shape", [(5,), (2, 2, 2), (0, 4, 3)])
def test_bad_array_shapes(shape):
    with pytest.raises(ImageError):
        to_bgr(np.zeros(shape, np.uint8), "rgb")


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(ImageError, match="missing.jpg: no such file"):
        read_image(tmp_path / "missing.jpg")
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ImageError, match="broken.jpg: not a decodable image"):
        read_image(bad)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="empty file"):
        read_image(empty)


def test_batch_normalises_and_pads_with_the_mean():
    config = InputConfig(channel_order="BGR", mean=(104.0, 117.0, 123.0))
    a = np.full((2, 3, 3), (104, 117, 123), np.uint8)
    b = np.full((4, 2, 3), (105, 117, 123), np.uint8)
    batch = make_batch([a, b], config)
    assert batch.shape == (2, 3, 4, 3) and batch.dtype == np.float32
    assert np.all(batch[0] == 0)  # mean colour and padding are both 0
    assert np.all(batch[1, 0, :, :2] == 1) and np.all(batch[1, :, :, 2] == 0)


def test_rgb_models_get_rgb_channels():
    bgr = np.zeros((1, 1, 3), np.uint8)
    bgr[0, 0] = (1, 2, 3)
    out = make_batch([bgr], InputConfig(channel_order="RGB", mean=(0, 0, 0)))
    assert out[0, :, 0, 0].tolist() == [3, 2, 1]


def test_list_images_expands_dirs_and_globs(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("a.jpg", "sub/b.PNG", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images([tmp_path])] == ["a.jpg", "b.PNG"]
    assert [p.name for p in list_images([str(tmp_path / "*.jpg")])] == ["a.jpg"]
    assert [p.name for p in list_images([tmp_path / "nothing.jpg"])] == ["nothing.jpg"]
