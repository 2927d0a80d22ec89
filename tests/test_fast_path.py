"""The fast inference path: preprocessing inside the graph, int8 quantisation, precision selection."""

from __future__ import annotations

import numpy as np
import pytest

from retinakit import Detector
from retinakit.config import InputConfig
from retinakit.inference import backends
from retinakit.inference.backends import builtin_weights, resolve_precision
from retinakit.inference.preprocess import make_uint8_batch


def test_uint8_batch_pads_with_the_mean_colour():
    config = InputConfig(channel_order="RGB", mean=(10.4, 20.0, 30.6), std=(1.0, 1.0, 1.0))
    a = np.full((2, 3, 3), 200, np.uint8)
    b = np.full((1, 4, 3), 7, np.uint8)
    batch = make_uint8_batch([a, b], config)
    assert batch.shape == (2, 2, 4, 3) and batch.dtype == np.uint8
    assert (batch[0, :, :3] == 200).all() and (batch[1, :1] == 7).all()
    # padding in BGR order: the RGB mean reversed and rounded
    assert batch[0, 0, 3].tolist() == [31, 20, 10] and batch[1, 1, 0].tolist() == [31, 20, 10]
    single = make_uint8_batch([a], config)
    assert single.shape == (1, 2, 3, 3)


def test_fuse_preprocessing_computes_the_normalisation():
    onnx = pytest.importorskip("onnx")
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from retinakit.config import get_preset
    from retinakit.onnx.fused_input import fuse_preprocessing

    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["out"])],
        "identity",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["b", 3, "h", "w"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["b", 3, "h", "w"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    preset = get_preset("mobilenet0.25")
    config = type(preset)(**{**preset.__dict__, "input": InputConfig("RGB", (1.0, 2.0, 3.0), (2.0, 2.0, 4.0))})
    fused = fuse_preprocessing(model, config)
    onnx.checker.check_model(fused)
    image = np.array([[[10, 20, 30], [0, 255, 7]]], np.uint8)  # (1, 2, 3) BGR
    out = ort.InferenceSession(fused.SerializeToString())
    (result,) = out.run(None, {"image": image[None]})
    assert result.shape == (1, 3, 1, 2)
    # channel 0 is R = BGR[2]: (30 - 1) / 2, (7 - 1) / 2; channel 2 is B: (10 - 3) / 4, (0 - 3) / 4
    np.testing.assert_allclose(result[0, 0, 0], [14.5, 3.0])
    np.testing.assert_allclose(result[0, 1, 0], [9.0, 126.5])
    np.testing.assert_allclose(result[0, 2, 0], [1.75, -0.75])
    with pytest.raises(ValueError, match="not float32"):
        fuse_preprocessing(fused, config)


def _identity_model(opset: int = 17):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["out"])],
        "identity",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["b", 3, "h", "w"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["b", 3, "h", "w"])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _with_input(channel_order: str, mean: tuple[float, float, float]):
    from retinakit.config import get_preset

    preset = get_preset("mobilenet0.25")
    return type(preset)(**{**preset.__dict__, "input": InputConfig(channel_order, mean, (1.0, 1.0, 1.0))})


@pytest.mark.parametrize(
    ("channel_order", "mean", "opset", "ops"),
    [
        ("BGR", (104.0, 117.0, 123.0), 17, ["Transpose", "DequantizeLinear", "Identity"]),  # the built-in model
        ("RGB", (104.0, 117.0, 123.0), 17, ["Transpose", "Gather", "DequantizeLinear", "Identity"]),
        ("RGB", (104.5, 117.0, 123.0), 17, ["Transpose", "Gather", "Cast", "Sub", "Identity"]),  # not whole
        ("BGR", (104.0, 117.0, 123.0), 11, ["Transpose", "Cast", "Sub", "Identity"]),  # no per-channel DQ
    ],
)
def test_mean_subtraction_is_exact_in_every_form(channel_order, mean, opset, ops):
    pytest.importorskip("onnx")
    import onnxruntime as ort

    from retinakit.onnx.fused_input import fuse_preprocessing

    fused = fuse_preprocessing(_identity_model(opset), _with_input(channel_order, mean))
    assert [n.op_type for n in fused.graph.node] == ops
    image = np.array([[[0, 117, 255], [104, 0, 123]]], np.uint8)  # (1, 2, 3) BGR
    (result,) = ort.InferenceSession(fused.SerializeToString()).run(None, {"image": image[None]})
    # network channel k is stored channel k (BGR) or 2 - k (RGB), minus the k-th mean
    order = [0, 1, 2] if channel_order == "BGR" else [2, 1, 0]
    expected = np.stack([image[0, :, c].astype(np.float32) - m for c, m in zip(order, mean, strict=True)])
    np.testing.assert_array_equal(result[0, :, 0], expected)
    if channel_order == "BGR" and opset == 17:
        np.testing.assert_array_equal(result[0, :, 0], [[-104, 0], [0, -117], [132, 0]])  # by hand


def test_shipped_fused_model_is_the_float_model_with_the_preprocessing_in_front():
    onnx = pytest.importorskip("onnx")
    from retinakit.onnx.fused_input import fuse_preprocessing

    rebuilt = fuse_preprocessing(onnx.load(str(builtin_weights("onnx"))))
    assert rebuilt.SerializeToString() == onnx.load(str(builtin_weights("fused"))).SerializeToString()


def test_fused_fp32_path_gives_the_same_faces_as_numpy_preprocessing(wider_images):
    import cv2

    from retinakit.inference.backends import OnnxBackend

    fused = Detector(precision="fp32", score_threshold=0.3)
    plain = Detector(backend_instance=OnnxBackend(builtin_weights("onnx")), score_threshold=0.3)
    assert fused.backend.input_layout == "nhwc_uint8" and plain.backend.input_layout == "nchw_float"
    big = cv2.imread(str(wider_images[0]))
    small = cv2.resize(big, (300, 200))
    for a, b in zip(fused.detect_bgr([big, small]), plain.detect_bgr([big, small]), strict=True):
        assert len(a) == len(b) > 0
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
        np.testing.assert_allclose(a.landmarks, b.landmarks, atol=1e-3)


def test_auto_precision_rules(monkeypatch):
    assert resolve_precision("onnx", None, "fp32") == "fp32"
    assert resolve_precision("openvino", None, "bf16") == "bf16"
    monkeypatch.setattr(backends, "cpu_has_int8_dot", lambda: True)
    monkeypatch.setattr(backends, "AUTO_PICKS_INT8", False)
    assert resolve_precision("onnx", None, "auto") == "fp32"  # int8 never chosen unless it held the AP
    monkeypatch.setattr(backends, "AUTO_PICKS_INT8", True)
    expected = "int8" if builtin_weights("int8").is_file() else "fp32"
    assert resolve_precision("onnx", None, "auto") == expected
    assert resolve_precision("onnx", "mine.onnx", "auto") == "fp32"  # user weights: as they are
    assert resolve_precision("torch", None, "auto") == "fp32"
    monkeypatch.setattr(backends, "cpu_has_bf16", lambda: True)
    assert resolve_precision("openvino", None, "auto") == "bf16"  # openvino: bf16 first where the CPU has it
    assert resolve_precision("onnx", None, "auto") == expected  # never bf16 on onnx
    assert resolve_precision("openvino", "mine.onnx", "auto") == "fp32"
    monkeypatch.setattr(backends, "cpu_has_bf16", lambda: False)
    assert resolve_precision("openvino", None, "auto") == expected
    monkeypatch.setattr(backends, "cpu_has_int8_dot", lambda: False)
    assert resolve_precision("onnx", None, "auto") == "fp32"
    assert resolve_precision("openvino", None, "auto") == "fp32"


def test_mse_range_clips_outliers_and_keeps_zero():
    from retinakit.onnx.quantize import mse_range

    def error(lo: float, hi: float) -> float:
        scale = (hi - lo) / 255
        zero = np.round(-lo / scale)
        return float(np.mean(((np.clip(np.round(values / scale) + zero, 0, 255) - zero) * scale - values) ** 2))

    values = np.random.default_rng(0).laplace(0.0, 1.0, 100_000)  # heavy tails, like activations
    low, high = mse_range(values)
    assert values.min() < low < 0 < high < values.max()  # the rare tail is clipped
    assert error(low, high) < 0.95 * error(values.min(), values.max())
    low, high = mse_range(np.linspace(0.5, 2.0, 100))
    assert low == 0.0 and high <= 2.0


@pytest.mark.skipif(not builtin_weights("int8").is_file(), reason="no built-in int8 model")
def test_builtin_int8_agrees_with_fp32(astronaut_rgb):
    fp32 = Detector(precision="fp32")(astronaut_rgb, color="rgb")
    int8_detector = Detector(precision="int8")
    assert int8_detector.precision == "int8" and "int8" in repr(int8_detector)
    int8 = int8_detector(astronaut_rgb, color="rgb")
    a, b = fp32[fp32.scores > 0.9], int8[int8.scores > 0.9]
    assert len(a) == len(b) == 1
    np.testing.assert_allclose(a.boxes, b.boxes, atol=4.0)
    np.testing.assert_allclose(a.landmarks, b.landmarks, atol=4.0)


@pytest.mark.skipif(not builtin_weights("int8").is_file(), reason="no built-in int8 model")
def test_builtin_int8_was_calibrated_on_training_images_only():
    onnx = pytest.importorskip("onnx")
    import json

    from conftest import WIDER

    meta = {p.key: p.value for p in onnx.load(str(builtin_weights("int8"))).metadata_props}
    recipe = json.loads(meta[backends.QUANTIZATION_KEY])
    assert len(recipe["calibration"]) == recipe["options"]["num_images"] > 0
    val = WIDER / "val-dev" / "image_list.txt"
    if val.is_file():
        names = {line.split("/")[-1] for line in val.read_text().split()}
        assert not names & {c.split("/")[-1] for c in recipe["calibration"]}
    train = WIDER / "train-subset" / "images"
    if train.is_dir():
        assert all((train / c).is_file() for c in recipe["calibration"])


def test_cli_verbose_names_the_path(tmp_path, astronaut_rgb, capsys):
    import cv2

    from retinakit.cli import main

    photo = tmp_path / "a.jpg"
    cv2.imwrite(str(photo), astronaut_rgb[:, :, ::-1])
    assert main(["detect", str(photo), "--verbose", "--precision", "fp32", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "precision='fp32'" in err and "preprocessing in the graph" in err


@pytest.fixture
def calibration_dir(tmp_path, astronaut_rgb):
    """A folder with one calibration photo."""
    import cv2

    folder = tmp_path / "calib"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), astronaut_rgb[:, :, ::-1])
    return folder


@pytest.mark.slow
def test_cli_quantize_writes_an_int8_model(tmp_path, calibration_dir, astronaut_rgb, capsys):
    pytest.importorskip("onnx")
    from retinakit.cli import main

    out = tmp_path / "q.onnx"
    assert main(["quantize", str(calibration_dir), "-o", str(out), "--num-images", "1", "--keep-float", ""]) == 0
    assert "1 calibration images of 1" in capsys.readouterr().out
    det = Detector(weights=str(out))
    assert det.precision == "int8" and det.backend.input_layout == "nhwc_uint8"
    assert len(det(astronaut_rgb, color="rgb")) >= 1


@pytest.mark.slow
def test_cli_quantize_equalise_is_recorded(tmp_path, calibration_dir, astronaut_rgb):
    pytest.importorskip("onnx")
    import json

    import onnx

    from retinakit.cli import main
    from retinakit.inference.backends import QUANTIZATION_KEY

    out = tmp_path / "q.onnx"
    args = ["quantize", str(calibration_dir), "-o", str(out), "--num-images", "1", "--keep-float", "/heads"]
    assert main([*args, "--equalise", "/backbone/stage1", "--equalise-strength", "0.5"]) == 0
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    options = json.loads(meta[QUANTIZATION_KEY])["options"]
    assert options["equalise"] == ["/backbone/stage1"] and options["keep_float"] == ["/heads"]
    assert len(Detector(weights=str(out))(astronaut_rgb, color="rgb")) >= 1
