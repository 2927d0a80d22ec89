"""The optional inference paths give the same faces as the default one."""

import numpy as np
import pytest

from retinakit import Detector
from retinakit.inference.backends import builtin_weights, make_backend


def _same_face(a, b, atol):
    a, b = a[a.scores > 0.9], b[b.scores > 0.9]
    assert len(a) == len(b) == 1
    np.testing.assert_allclose(a.boxes, b.boxes, atol=atol)
    np.testing.assert_allclose(a.landmarks, b.landmarks, atol=atol)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8", "auto"])
def test_openvino_backend(detector, astronaut_rgb, precision):
    pytest.importorskip("openvino")
    from retinakit.inference.backends import resolve_precision

    ov = Detector(backend="openvino", precision=precision)
    used = resolve_precision("openvino", None, precision)  # auto: bf16, int8 or fp32 for this CPU
    assert ov.precision == used and ov.backend.input_layout == "nhwc_uint8"
    assert ov.backend.path.name == (
        "retinaface_mobilenet0.25_int8.onnx" if used == "int8" else "retinaface_mobilenet0.25_fused.onnx"
    )
    tolerance = {"fp32": 0.05, "bf16": 3.0, "int8": 4.0}[used]
    _same_face(detector(astronaut_rgb, color="rgb"), ov(astronaut_rgb, color="rgb"), atol=tolerance)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "onnx", "precision": "bf16"}, "needs backend='openvino'"),
        ({"backend": "onnx", "precision": "fp16"}, "precision must be one of"),
        ({"backend": "torch", "precision": "int8"}, "built-in int8 model on backend='onnx' or 'openvino'"),
        ({"backend": "openvino", "precision": "int8", "weights": "model.onnx"}, "retinakit quantize"),
        ({"backend": "onnx", "precision": "int8", "weights": "model.onnx"}, "retinakit quantize"),
        ({"backend": "tensorrt"}, "unknown backend"),
        ({"backend": "onnx", "weights": "model.pth"}, "needs backend='torch'"),
    ],
)
def test_invalid_combinations_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_backend(**kwargs)


def test_quantize_onnx_keeps_config_and_detects(tmp_path, astronaut_rgb):
    pytest.importorskip("onnx")
    import cv2

    from retinakit.config import get_preset
    from retinakit.onnx.quantize import quantize_onnx

    photo = tmp_path / "a.jpg"
    cv2.imwrite(str(photo), astronaut_rgb[:, :, ::-1])
    out = tmp_path / "q.onnx"
    recipe = quantize_onnx(builtin_weights("onnx"), out, [photo, photo], get_preset("mobilenet0.25"))
    assert recipe["calibration"] == [f"{tmp_path.name}/a.jpg"] * 2
    det = Detector(weights=str(out))
    assert det.model_config == get_preset("mobilenet0.25")
    assert det.precision == "int8" and det.backend.input_layout == "nhwc_uint8"
    faces = det(photo)
    assert len(faces[faces.scores > 0.9]) == 1
