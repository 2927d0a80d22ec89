"""Deformable convolution (DCN v2) against an independent per-pixel reference; the DCN presets."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from retinakit.config import get_preset  # noqa: E402
from retinakit.models import build_model  # noqa: E402
from retinakit.models.dcn import DeformConv2d, deform_conv2d  # noqa: E402
from retinakit.models.dcn_reference import CASES, reference_deform_conv  # noqa: E402


@pytest.mark.parametrize(("stride", "pad", "dil", "groups"), CASES)
def test_values_and_gradients_match_the_per_pixel_reference(stride, pad, dil, groups):
    gen = torch.Generator().manual_seed(stride * 10 + dil + groups)
    b, c, h, w, cout = 2, 4, 6, 7, 3
    ho = (h + 2 * pad - dil * 2 - 1) // stride + 1
    wo = (w + 2 * pad - dil * 2 - 1) // stride + 1

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).requires_grad_()

    x = rand(b, c, h, w)
    # offsets large enough to send taps across pixels and outside the image; non-integer almost surely
    offset = rand(b, 2 * groups * 9, ho, wo, scale=1.5)
    mask = torch.rand(b, groups * 9, ho, wo, generator=gen, dtype=torch.float64).requires_grad_()
    weight = rand(cout, c, 3, 3)
    bias = rand(cout)
    inputs = (x, offset, mask, weight, bias)

    ours = deform_conv2d(x, offset, mask, weight, bias, stride, pad, dil)
    ref = reference_deform_conv(x, offset, mask, weight, bias, stride, pad, dil)
    assert ours.shape == ref.shape == (b, cout, ho, wo)
    assert (ours - ref).abs().max().item() < 1e-12

    seed = torch.randn(ours.shape, generator=gen, dtype=torch.float64)
    g_ours = torch.autograd.grad((ours * seed).sum(), inputs)
    g_ref = torch.autograd.grad((ref * seed).sum(), inputs)
    for name, a, r in zip(("input", "offset", "mask", "weight", "bias"), g_ours, g_ref, strict=True):
        assert r.abs().max() > 0, name  # a gradient that is really there
        assert (a - r).abs().max().item() < 1e-10, name


def test_gradcheck_against_finite_differences():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1, 2, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    offset = (torch.randn(1, 18, 4, 5, generator=gen, dtype=torch.float64) * 0.7).requires_grad_()
    mask = torch.rand(1, 9, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(2, 2, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda *a: deform_conv2d(*a, stride=1, padding=1), (x, offset, mask, weight), eps=1e-6, atol=1e-6
    )


@pytest.mark.parametrize(("stride", "dilation"), [(1, 1), (2, 1), (1, 2)])
def test_fresh_layer_equals_a_plain_conv(stride, dilation):
    torch.manual_seed(0)
    layer = DeformConv2d(16, 8, 3, stride=stride, dilation=dilation, offset_groups=2)
    x = torch.randn(2, 16, 23, 17)
    plain = F.conv2d(x, layer.weight, layer.bias, stride=stride, padding=dilation, dilation=dilation)
    out = layer(x)
    assert out.shape == plain.shape
    assert (out - plain).abs().max().item() < 1e-5
    # and the offsets/masks do learn: the predictor receives a gradient at zero init
    out.pow(2).sum().backward()
    assert layer.offset_mask.weight.grad.abs().max() > 0


def test_bad_offset_shape_is_reported():
    x = torch.zeros(1, 4, 5, 5)
    with pytest.raises(ValueError, match="offset has 10 channels"):
        deform_conv2d(x, torch.zeros(1, 10, 5, 5), torch.zeros(1, 9, 5, 5), torch.zeros(2, 4, 3, 3), padding=1)


def test_onnx_deform_conv_runs_in_onnx_runtime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from retinakit.models.dcn import DEFORM_CONV_OPSET, register_onnx_symbolic

    torch.manual_seed(1)
    layer = DeformConv2d(8, 6, 3, stride=2, offset_groups=2).eval()
    torch.nn.init.normal_(layer.offset_mask.weight, std=0.3)  # real deformation, not the identity
    register_onnx_symbolic()
    path = tmp_path / "dcn.onnx"
    torch.onnx.export(
        layer,
        (torch.zeros(1, 8, 12, 12),),
        str(path),
        opset_version=DEFORM_CONV_OPSET,
        dynamo=False,
        input_names=["x"],
        dynamic_axes={"x": {0: "b", 2: "h", 3: "w"}},
    )
    assert [n.op_type for n in onnx.load(str(path)).graph.node].count("DeformConv") == 1
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in ((1, 8, 12, 12), (2, 8, 19, 14)):
        x = torch.randn(shape)
        with torch.no_grad():
            want = layer(x).numpy()
        got = session.run(None, {"x": x.numpy()})[0]
        assert np.abs(got - want).max() < 1e-4


def test_paper_preset_uses_dcn_in_fpn_merges_and_context():
    model = build_model(get_preset("resnet152-paper"))
    dcn = [name for name, m in model.named_modules() if isinstance(m, DeformConv2d)]
    # 3 FPN merges (P2-P4) + 5 convs in each of 5 context modules
    assert len(dcn) == 3 + 5 * 5
    assert "fpn.merge.0.0" in dcn and "context.4.conv7x7_3.0" in dcn


def test_dcn_is_an_option_for_the_light_preset_and_starts_as_the_plain_model():
    plain_config = get_preset("mobilenet0.25")
    torch.manual_seed(0)
    plain = build_model(plain_config).eval()
    dcn = build_model(replace(plain_config, context_conv="deformable")).eval()
    state = plain.state_dict()
    missing, unexpected = dcn.load_state_dict(state, strict=False)
    assert not unexpected and missing and all(".offset_mask." in k for k in missing)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        a, b = plain(x), dcn(x)
    for u, v in zip(a, b, strict=True):
        assert (u - v).abs().max().item() < 1e-4


@pytest.mark.slow
def test_heavy_preset_with_dcn_saves_loads_and_exports(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from retinakit.models.checkpoints import load_model, save_safetensors
    from retinakit.models.export import export_onnx

    torch.manual_seed(0)
    model = build_model("resnet152-paper").eval()
    for m in model.modules():  # a trained-looking deformation, not the zero start
        if isinstance(m, DeformConv2d):
            torch.nn.init.normal_(m.offset_mask.weight, std=0.01)
    save_safetensors(model, tmp_path / "heavy.safetensors")
    loaded = load_model(tmp_path / "heavy.safetensors")
    assert loaded.config.context_conv == "deformable"
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        want = model(x)
        got = loaded(x)
    assert all(torch.equal(a, b) for a, b in zip(want, got, strict=True))
    with pytest.raises(ValueError, match="opset >= 19"):
        export_onnx(loaded, tmp_path / "old.onnx", opset=17)
    export_onnx(loaded, tmp_path / "heavy.onnx")  # opset 19, DeformConv nodes
    session = ort.InferenceSession(str(tmp_path / "heavy.onnx"), providers=["CPUExecutionProvider"])
    out = session.run(None, {"image": x.numpy()})
    for a, b in zip(out, want, strict=True):
        assert np.abs(a - b.numpy()).max() <= 1e-4 * max(1.0, float(b.abs().max()))
