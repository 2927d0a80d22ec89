"""Published RetinaFace checkpoints (yakhyo/retinaface-pytorch, biubug6 ResNet-50) load strictly.

No such file can be downloaded here, so each test builds a state dict with exactly the key names
and shapes the publishing project's code produces. The layouts below are written out from that
code (module trees, channel lists, anchor counts), independently of retinakit's own modules.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from retinakit.config import get_preset  # noqa: E402
from retinakit.models.checkpoints import load_model  # noqa: E402

Shapes = dict[str, tuple[int, ...]]


def _bn(prefix: str, c: int) -> Shapes:
    stats = ("weight", "bias", "running_mean", "running_var")
    return {**{f"{prefix}.{k}": (c,) for k in stats}, f"{prefix}.num_batches_tracked": ()}


def _conv_norm(prefix: str, cin: int, cout: int, k: int, groups: int = 1) -> Shapes:
    """A (conv ``0``, BatchNorm ``1``, optional activation) sequence."""
    return {f"{prefix}.0.weight": (cout, cin // groups, k, k), **_bn(f"{prefix}.1", cout)}


def _mobilenet_v1(p: str, width: float) -> Shapes:
    f = [int(c * width) for c in (32, 64, 128, 256, 512, 1024)]
    stages = {
        "stage1": [(f[0], f[1]), (f[1], f[2]), (f[2], f[2]), (f[2], f[3]), (f[3], f[3])],
        "stage2": [(f[3], f[4])] + [(f[4], f[4])] * 5,
        "stage3": [(f[4], f[5]), (f[5], f[5])],
    }
    out = _conv_norm(f"{p}.stage1.0", 3, f[0], 3)
    for stage, blocks in stages.items():
        offset = 1 if stage == "stage1" else 0
        for i, (cin, cout) in enumerate(blocks):
            out |= _conv_norm(f"{p}.{stage}.{i + offset}.0", cin, cin, 3, groups=cin)
            out |= _conv_norm(f"{p}.{stage}.{i + offset}.1", cin, cout, 1)
    return out


def _mobilenet_v2(p: str) -> Shapes:
    out = _conv_norm(f"{p}.features.0", 3, 32, 3)
    cin, i = 32, 1
    for t, c, n, _ in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2)):
        for _ in range(n):
            hidden, q = cin * t, f"{p}.features.{i}.conv"
            j = 0
            if t != 1:
                out |= _conv_norm(f"{q}.0", cin, hidden, 1)
                j = 1
            out |= _conv_norm(f"{q}.{j}", hidden, hidden, 3, groups=hidden)
            out[f"{q}.{j + 1}.weight"] = (c, hidden, 1, 1)
            out |= _bn(f"{q}.{j + 2}", c)
            cin, i = c, i + 1
    q = f"{p}.features.{i}.conv"  # features.17: 160 -> 320, expansion 6
    out |= _conv_norm(f"{q}.0", 160, 960, 1) | _conv_norm(f"{q}.1", 960, 960, 3, groups=960)
    out |= {f"{q}.2.weight": (320, 960, 1, 1)} | _bn(f"{q}.3", 320)
    return out | _conv_norm(f"{p}.features.18", 320, 1280, 1)


def _resnet(p: str, depth: int) -> Shapes:
    blocks = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3)}[depth]
    expansion = 1 if depth < 50 else 4
    out = {f"{p}.conv1.weight": (64, 3, 7, 7), **_bn(f"{p}.bn1", 64)}
    cin = 64
    for layer, (n, width) in enumerate(zip(blocks, (64, 128, 256, 512), strict=True), start=1):
        for b in range(n):
            q = f"{p}.layer{layer}.{b}"
            if expansion == 1:
                out |= {f"{q}.conv1.weight": (width, cin, 3, 3), f"{q}.conv2.weight": (width, width, 3, 3)}
                out |= _bn(f"{q}.bn1", width) | _bn(f"{q}.bn2", width)
            else:
                out |= {f"{q}.conv1.weight": (width, cin, 1, 1), f"{q}.conv2.weight": (width, width, 3, 3)}
                out |= {f"{q}.conv3.weight": (4 * width, width, 1, 1)}
                out |= _bn(f"{q}.bn1", width) | _bn(f"{q}.bn2", width) | _bn(f"{q}.bn3", 4 * width)
            if b == 0 and (layer > 1 or cin != width * expansion):
                out |= {f"{q}.downsample.0.weight": (width * expansion, cin, 1, 1)} | _bn(
                    f"{q}.downsample.1", width * expansion
                )
            cin = width * expansion
    return out


def _neck_and_heads(in_channels: tuple[int, int, int], c: int, head_names: tuple[str, str, str]) -> Shapes:
    out: Shapes = {}
    for i, cin in enumerate(in_channels, start=1):
        out |= _conv_norm(f"fpn.output{i}", cin, c, 1)
    out |= _conv_norm("fpn.merge1", c, c, 3) | _conv_norm("fpn.merge2", c, c, 3)
    for s in (1, 2, 3):
        out |= _conv_norm(f"ssh{s}.conv3X3", c, c // 2, 3) | _conv_norm(f"ssh{s}.conv5X5_1", c, c // 4, 3)
        out |= _conv_norm(f"ssh{s}.conv5X5_2", c // 4, c // 4, 3) | _conv_norm(f"ssh{s}.conv7X7_2", c // 4, c // 4, 3)
        out |= _conv_norm(f"ssh{s}.conv7x7_3", c // 4, c // 4, 3)
    for name, k in zip(head_names, (2, 4, 10), strict=True):  # 2 anchors per location
        for level in range(3):
            out |= {f"{name.format(level)}.weight": (2 * k, c, 1, 1), f"{name.format(level)}.bias": (2 * k,)}
    return out


YAKHYO_HEADS = ("class_head.class_head.{}", "bbox_head.bbox_head.{}", "landmark_head.landmark_head.{}")
# (preset, file published by yakhyo/retinaface-pytorch, backbone layout, FPN inputs, FPN channels)
YAKHYO = [
    ("yakhyo-mobilenet0.25", "retinaface_mv1_0.25.pth", lambda: _mobilenet_v1("fx", 0.25), (64, 128, 256), 64),
    ("yakhyo-mobilenet0.50", "retinaface_mv1_0.50.pth", lambda: _mobilenet_v1("fx", 0.5), (128, 256, 512), 128),
    ("yakhyo-mobilenet1.0", "retinaface_mv1.pth", lambda: _mobilenet_v1("fx", 1.0), (256, 512, 1024), 128),
    ("yakhyo-mobilenetv2", "retinaface_mv2.pth", lambda: _mobilenet_v2("fx"), (32, 96, 1280), 128),
    ("yakhyo-resnet18", "retinaface_r18.pth", lambda: _resnet("fx", 18), (128, 256, 512), 128),
    ("yakhyo-resnet34", "retinaface_r34.pth", lambda: _resnet("fx", 34), (128, 256, 512), 128),
    pytest.param(
        "yakhyo-resnet50", "(code only)", lambda: _resnet("fx", 50), (512, 1024, 2048), 256, marks=pytest.mark.slow
    ),
]


def _slope(act: torch.nn.Module) -> float:
    return 0.0 if isinstance(act, torch.nn.ReLU) else act.negative_slope


def _random_state(shapes: Shapes) -> dict[str, torch.Tensor]:
    """Distinct random values of sane scale (conv weights ~ 1/sqrt(fan-in), positive variances)."""
    gen = torch.Generator().manual_seed(0)
    out = {}
    for k, s in shapes.items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            out[k] = torch.rand(s, generator=gen) + 0.5
        else:
            fan_in = max(1, int(torch.tensor(s[1:]).prod())) if len(s) == 4 else 1
            out[k] = torch.randn(s, generator=gen) / fan_in**0.5
    return out


def test_layout_generators_match_known_torchvision_key_counts():
    # torchvision's state dicts without the classifier: resnet18 120 keys, resnet50 318, mobilenet_v2 312
    assert len(_resnet("x", 18)) == 120
    assert len(_resnet("x", 50)) == 318
    assert len(_mobilenet_v2("x")) == 312


@pytest.mark.parametrize(
    ("preset", "file", "backbone", "fpn_in", "channels"), YAKHYO, ids=[getattr(p, "values", p)[0] for p in YAKHYO]
)
def test_yakhyo_checkpoint_loads_strictly_and_is_recognised(tmp_path, preset, file, backbone, fpn_in, channels):
    state = _random_state(backbone() | _neck_and_heads(fpn_in, channels, YAKHYO_HEADS))
    path = tmp_path / "model.pth"
    torch.save(state, path)
    model = load_model(path)  # preset told by the key layout and shapes, strict load
    assert model.config == get_preset(preset)
    assert model.config.anchors.sizes == ((16.0, 32.0), (64.0, 128.0), (256.0, 512.0))
    assert model.config.input.mean == (104.0, 117.0, 123.0) and model.config.input.channel_order == "BGR"
    if preset == "yakhyo-mobilenet0.25":  # the same architecture as the built-in model: told only by the keys
        assert load_model(path, "mobilenet0.25").config.name == "mobilenet0.25"
    # values land where the names say
    assert torch.equal(model.heads.cls[2].bias, state["class_head.class_head.2.bias"])
    assert torch.equal(model.heads.landmarks[0].weight, state["landmark_head.landmark_head.0.weight"])
    assert torch.equal(model.fpn.lateral[2][0].weight, state["fpn.output3.0.weight"])
    assert torch.equal(model.fpn.merge[1][1].running_var, state["fpn.merge2.1.running_var"])
    assert torch.equal(model.context[1].conv7x7_2[0].weight, state["ssh2.conv7X7_2.0.weight"])
    if "mobilenet0" in preset or "mobilenet1" in preset:
        assert torch.equal(model.backbone.stage2[0][3].weight, state["fx.stage2.0.1.0.weight"])  # pointwise
        assert torch.equal(model.backbone.stage1[1][1].running_mean, state["fx.stage1.1.0.1.running_mean"])
        assert _slope(model.fpn.lateral[0][2]) == (0.1 if channels == 64 else 0.0)  # neck: 0.1 only when <= 64
        assert _slope(model.context[0].conv5x5_1[2]) == (0.1 if channels == 64 else 0.0)
        assert _slope(model.backbone.stage3[1][2]) == 0.1  # MobileNetV1: always 0.1
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 96))
    assert out.logits.shape == (1, 2 * (8 * 12 + 4 * 6 + 2 * 3), 2)


def test_yakhyo_alternative_names_body_and_conv1x1_heads(tmp_path):
    heads = ("class_head.{}.conv1x1", "bbox_head.{}.conv1x1", "landmark_head.{}.conv1x1")
    state = _random_state(_mobilenet_v2("body") | _neck_and_heads((32, 96, 1280), 128, heads))
    torch.save(state, tmp_path / "m.pth")
    model = load_model(tmp_path / "m.pth")
    assert model.config.name == "yakhyo-mobilenetv2"
    assert torch.equal(model.heads.box[1].weight, state["bbox_head.1.conv1x1.weight"])


@pytest.mark.slow
def test_biubug6_resnet50_checkpoint_loads_strictly(tmp_path):
    heads = ("ClassHead.{}.conv1x1", "BboxHead.{}.conv1x1", "LandmarkHead.{}.conv1x1")
    state = _random_state(_resnet("body", 50) | _neck_and_heads((512, 1024, 2048), 256, heads))
    state = {f"module.{k}": v for k, v in state.items()}  # saved from DataParallel, as biubug6 trains
    torch.save(state, tmp_path / "Resnet50_Final.pth")
    model = load_model(tmp_path / "Resnet50_Final.pth")
    assert model.config == get_preset("resnet50")
    assert torch.equal(model.backbone.layer4[2].conv3.weight, state["module.body.layer4.2.conv3.weight"])
    assert torch.equal(model.context[2].conv5x5_1[1].bias, state["module.ssh3.conv5X5_1.1.bias"])


@pytest.mark.slow
def test_yakhyo_checkpoint_exports_to_onnx(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import numpy as np

    from retinakit.models.export import export_onnx

    state = _random_state(_mobilenet_v2("fx") | _neck_and_heads((32, 96, 1280), 128, YAKHYO_HEADS))
    torch.save(state, tmp_path / "retinaface_mv2.pth")
    model = load_model(tmp_path / "retinaface_mv2.pth")
    export_onnx(model, tmp_path / "mv2.onnx")
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        want = model(x)
    got = ort.InferenceSession(str(tmp_path / "mv2.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"image": x.numpy()}
    )
    for g, w in zip(got, want, strict=True):
        assert np.abs(g - w.numpy()).max() <= 1e-3 * max(1.0, float(w.abs().max()))
