"""The PyTorch network: presets build, run forward/backward, load the biubug6 checkpoint, export."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import need_shared  # noqa: E402
from retinakit.config import ModelConfig, get_preset  # noqa: E402
from retinakit.models import build_model  # noqa: E402
from retinakit.models.checkpoints import CheckpointError, load_model, read_weights, save_safetensors  # noqa: E402


@pytest.mark.parametrize(("preset", "size"), [("mobilenet0.25", 96), ("resnet50", 96), ("resnet152-paper", 64)])
def test_presets_forward_backward_and_anchor_count(preset, size):
    model = build_model(preset)
    x = torch.randn(2, 3, size, size + 32)
    out = model(x)
    n = model.config.count_anchors(size, size + 32)
    assert out.box_deltas.shape == (2, n, 4)
    assert out.logits.shape == (2, n, 2)
    assert out.landmark_deltas.shape == (2, n, 10)
    loss = sum(o.float().pow(2).mean() for o in out)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)


def test_paper_preset_layout():
    config = get_preset("resnet152-paper")
    assert config.pyramid_strides == (4, 8, 16, 32, 64)
    assert config.anchors.num_per_location == 3
    model = build_model(config)
    assert len(model.heads.cls) == 1  # shared heads
    assert model.fpn.extra is not None and model.fpn.extra[0].stride == (2, 2)


def test_config_json_roundtrip():
    for name in ("mobilenet0.25", "mobilenet0.25-relu", "resnet50", "resnet152-paper"):
        config = get_preset(name)
        assert ModelConfig.from_json(config.to_json()) == config


def test_biubug6_checkpoint_loads_strictly():
    path = need_shared("weights", "biubug6_mobilenet0.25_Final.pth")
    model = load_model(path)
    assert model.config.name == "mobilenet0.25"
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert torch.equal(model.heads.cls[2].weight, raw["ClassHead.2.conv1x1.weight"])
    assert torch.equal(model.fpn.merge[0][0].weight, raw["fpn.merge1.0.weight"])
    assert torch.equal(model.context[1].conv7x7_3[1].running_var, raw["ssh2.conv7x7_3.1.running_var"])


def test_biubug6_checkpoint_finds_the_astronaut_with_its_preset(detector, astronaut_rgb):
    """The shared checkpoint follows the ReLU / small-anchor convention: with that preset it finds
    the same single face as the built-in model; with the built-in preset's conventions it does not."""
    from retinakit import Detector
    from retinakit.core.boxes import box_iou
    from retinakit.models.backend import TorchBackend

    path = need_shared("weights", "biubug6_mobilenet0.25_Final.pth")
    reference = detector(astronaut_rgb, color="rgb")
    reference = reference[reference.scores > 0.9]
    model = load_model(path, get_preset("mobilenet0.25-relu"))
    faces = Detector(backend_instance=TorchBackend(model=model))(astronaut_rgb, color="rgb")
    confident = faces[faces.scores > 0.9]
    assert len(confident) == 1
    assert box_iou(confident.boxes, reference.boxes)[0, 0] > 0.7
    points = confident.landmarks[0]
    assert points[0, 0] < points[1, 0]
    wrong = Detector(backend_instance=TorchBackend(model=load_model(path)))(astronaut_rgb, color="rgb")
    assert len(wrong[wrong.scores > 0.9]) != 1 or box_iou(wrong.boxes[:1], reference.boxes)[0, 0] < 0.5


def test_safetensors_roundtrip_keeps_config(tmp_path):
    model = build_model("resnet50")
    save_safetensors(model, tmp_path / "m.safetensors")
    state, config = read_weights(tmp_path / "m.safetensors")
    assert config == model.config
    assert torch.equal(state["heads.box.1.weight"], model.state_dict()["heads.box.1.weight"])


def test_unusable_weights_are_reported_with_the_file(tmp_path):
    bad = tmp_path / "junk.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pth"):
        load_model(bad)
    model = build_model("mobilenet0.25")
    save_safetensors(model, tmp_path / "m.safetensors")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(tmp_path / "m.safetensors", get_preset("resnet50"))


@pytest.mark.parametrize("preset", ["mobilenet0.25", "resnet50"])
def test_onnx_export_matches_eager_at_two_sizes(tmp_path, preset):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from retinakit.models.export import export_onnx

    torch.manual_seed(0)
    model = build_model(preset).eval()
    for m in model.modules():  # non-trivial BatchNorm statistics, so folding is exercised
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "m.onnx"
    export_onnx(model, path, sample_size=(64, 64))
    session = ort.InferenceSession(str(path))
    assert [o.name for o in session.get_outputs()] == ["box_deltas", "logits", "landmark_deltas"]
    for shape in [(1, 3, 96, 128), (2, 3, 75, 61)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            expect = [t.numpy() for t in model(x)]
        got = session.run(None, {"image": x.numpy()})
        for e, g in zip(expect, got, strict=True):
            np.testing.assert_allclose(g, e, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("shared", [False, True])
def test_heads_run_as_one_conv_with_the_same_outputs_as_three(shared):
    import torch
    import torch.nn.functional as F

    from retinakit.models.heads import Heads

    torch.manual_seed(0)
    heads = Heads(channels=8, num_levels=2, anchors_per_location=2, num_landmarks=5, shared=shared).eval()
    feats = [torch.randn(1, 8, 4, 6), torch.randn(1, 8, 2, 3)]
    boxes, logits, points = heads(feats)
    assert boxes.shape == (1, 2 * (24 + 6), 4) and logits.shape[-1] == 2 and points.shape[-1] == 10
    j = -1 if shared else 1  # the second level's anchors come last; its convs are [0] when shared
    level = feats[1]
    one = {  # each head alone, as three separate 1x1 convs: (B, A*k, H, W) -> (B, H*W*A, k)
        k: F.conv2d(level, conv.weight, conv.bias).permute(0, 2, 3, 1).reshape(1, -1, n)
        for k, conv, n in (("box", heads.box[j], 4), ("cls", heads.cls[j], 2), ("lmk", heads.landmarks[j], 10))
    }
    torch.testing.assert_close(boxes[:, -12:], one["box"], rtol=0, atol=1e-6)
    torch.testing.assert_close(logits[:, -12:], one["cls"], rtol=0, atol=1e-6)
    torch.testing.assert_close(points[:, -12:], one["lmk"], rtol=0, atol=1e-6)
