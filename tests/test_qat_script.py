"""scripts/qat_int8.py: equalisation folded back into PyTorch keeps the function; fake quantisation points."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def qat():
    path = Path(__file__).resolve().parents[1] / "scripts" / "qat_int8.py"
    spec = importlib.util.spec_from_file_location("qat_int8", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def model_and_image(astronaut_rgb):
    import cv2

    from retinakit.inference.backends import builtin_weights
    from retinakit.inference.preprocess import make_batch
    from retinakit.models.checkpoints import load_model

    model = load_model(builtin_weights("safetensors"))
    image = cv2.resize(np.ascontiguousarray(astronaut_rgb[:, :, ::-1]), (160, 160))
    return model, torch.from_numpy(make_batch([image], model.config.input))


def test_equalise_model_keeps_the_outputs_and_folds_batch_norm(qat, model_and_image):
    model, x = model_and_image
    with torch.no_grad():
        before = model(x)
    first_conv, first_bn = model.backbone.stage1[0][0], model.backbone.stage1[0][1]
    kernel = first_conv.weight.detach().clone()
    qat.equalise_model(model, [x], ["/backbone/stage1"], 0.5)
    with torch.no_grad():
        after = model(x)
    for field in ("logits", "box_deltas", "landmark_deltas"):
        np.testing.assert_allclose(getattr(after, field).numpy(), getattr(before, field).numpy(), atol=2e-3)
    # batch norm became identity + bias, and the first convolution's channels were rescaled
    assert torch.equal(first_bn.weight, torch.ones_like(first_bn.weight))
    assert torch.count_nonzero(first_bn.running_mean) == 0
    gain = (first_conv.weight.detach().abs().amax(dim=(1, 2, 3)) / kernel.abs().amax(dim=(1, 2, 3))).numpy()
    assert gain.max() > 2 * gain.min()  # small channels were amplified more than large ones


def test_fake_quantisation_points_and_switch(qat, model_and_image):
    model, x = model_and_image
    fake = qat.FakeQuantActivations(qat.quant_points(model, ["backbone"]))
    names = [name for name, _, _ in fake.points]
    assert names[0] == "input" and "backbone.stage1.0.1" in names and "backbone.stage1.0.2" in names
    assert not any(n.startswith(("fpn", "context", "heads")) for n in names)
    with torch.no_grad():
        reference = model(x).logits
        fake.measure(model, [x], seed=0)
        quantised = model(x).logits
        fake.enabled = False
        plain = model(x).logits
    assert torch.equal(plain, reference)  # off: the float model, exactly
    assert not torch.equal(quantised, reference)  # on: int8 noise
    scale, zero = fake.ranges["input"]
    assert 100 < scale * 255 < 300 and 0 < zero < 255  # the centred image's range: about 274 wide
