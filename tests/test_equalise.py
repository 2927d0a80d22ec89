"""Activation equalisation keeps the function and evens out the channel ranges (hand-built graphs)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from retinakit.onnx.equalise import equalise_activations  # noqa: E402


def _chain(rng: np.random.Generator, channel_gain: np.ndarray) -> onnx.ModelProto:
    """image -> conv (3->4) -> LeakyRelu -> depthwise 3x3 -> LeakyRelu -> pointwise (4->2) -> output."""
    c = channel_gain.size
    w0 = rng.normal(size=(c, 3, 3, 3)).astype(np.float32) * channel_gain.reshape(-1, 1, 1, 1).astype(np.float32)
    b0 = (rng.normal(size=c) * channel_gain).astype(np.float32)
    w1 = rng.normal(size=(c, 1, 3, 3)).astype(np.float32)
    b1 = rng.normal(size=c).astype(np.float32)
    w2 = rng.normal(size=(2, c, 1, 1)).astype(np.float32)
    b2 = rng.normal(size=2).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in ((w0, "w0"), (b0, "b0"), (w1, "w1"), (b1, "b1"))]
    inits += [numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(b2, "b2")]
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], name="/a/conv0", pads=[1, 1, 1, 1]),
        helper.make_node("LeakyRelu", ["c0"], ["r0"], name="/a/act0", alpha=0.1),
        helper.make_node("Conv", ["r0", "w1", "b1"], ["c1"], name="/a/dw1", group=c, pads=[1, 1, 1, 1]),
        helper.make_node("LeakyRelu", ["c1"], ["r1"], name="/a/act1", alpha=0.1),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["y"], name="/b/pw2"),
    ]
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 8, 8])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto, feed: dict[str, np.ndarray], name: str = "y") -> np.ndarray:
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    if name != "y":
        probe.graph.output.append(helper.make_empty_tensor_value_info(name))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run([name], feed)[0]


def test_same_function_and_even_ranges() -> None:
    rng = np.random.default_rng(0)
    gain = np.array([100.0, 1.0, 0.01, 3.0])
    model = _chain(rng, gain)
    feeds = [{"x": rng.normal(size=(1, 3, 8, 8)).astype(np.float32)} for _ in range(3)]
    out, scales = equalise_activations(model, feeds, ["/a/"], strength=0.5, percentile=100.0)
    assert set(scales) == {"r0", "r1"}  # /b/pw2 is not named; both activations feed convolutions
    for feed in feeds:
        np.testing.assert_allclose(_run(out, feed), _run(model, feed), rtol=1e-4, atol=1e-4)
    # r0 feeds a depthwise conv only: fully equalised, every channel's max |x| equal on the calibration data
    ranges = np.max([np.abs(_run(out, f, "r0")).max(axis=(0, 2, 3)) for f in feeds], axis=0)
    before = np.max([np.abs(_run(model, f, "r0")).max(axis=(0, 2, 3)) for f in feeds], axis=0)
    assert before.max() / before.min() > 100  # the test graph really has uneven channels
    np.testing.assert_allclose(ranges, ranges.max(), rtol=1e-4)
    # r1 feeds a dense conv: half-way (strength 0.5), the spread becomes its square root
    r1_before = np.max([np.abs(_run(model, f, "r1")).max(axis=(0, 2, 3)) for f in feeds], axis=0)
    r1_after = np.max([np.abs(_run(out, f, "r1")).max(axis=(0, 2, 3)) for f in feeds], axis=0)
    np.testing.assert_allclose(r1_after.max() / r1_after.min(), np.sqrt(r1_before.max() / r1_before.min()), rtol=1e-3)


def test_leaves_unnamed_and_graph_outputs_alone() -> None:
    rng = np.random.default_rng(1)
    model = _chain(rng, np.ones(4))
    feeds = [{"x": rng.normal(size=(1, 3, 8, 8)).astype(np.float32)}]
    _, scales = equalise_activations(model, feeds, ["/b/"])  # pw2 writes the graph output: nothing to do
    assert scales == {}
    with pytest.raises(ValueError, match="strength"):
        equalise_activations(model, feeds, ["/a/"], strength=2.0)


def test_builtin_network_keeps_its_outputs(astronaut_rgb) -> None:
    from retinakit.config import get_preset
    from retinakit.inference.backends import builtin_weights
    from retinakit.inference.preprocess import ResizePolicy, make_batch, resize

    image, _ = resize(np.ascontiguousarray(astronaut_rgb[:, :, ::-1]), ResizePolicy(max_side=320))
    feed = {"image": make_batch([image], get_preset("mobilenet0.25").input)}
    model = onnx.load(builtin_weights("onnx"))
    out, scales = equalise_activations(model, [feed], ["/backbone/stage1"])
    assert len(scales) == 11  # the first conv and the 5 depthwise + 5 pointwise convolutions of stage 1
    assert min(float(s.min()) for s in scales.values()) < 0.1  # channels really were uneven
    before = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)
    after = ort.InferenceSession(out.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)
    for a, b in zip(before, after, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * float(np.abs(a).max()))
