"""Activation equalisation of an ONNX graph before int8 quantisation (same function, better-scaled channels).

Per-tensor uint8 activations share one scale across all channels of a tensor; where one channel
spans 0..40 and its neighbour 0..0.5, the small channel keeps only a few quantisation levels.
This rescales channels so their ranges match, without changing what the network computes:

- a convolution ``A`` whose output (after an optional ``LeakyRelu``/``Relu``, which commute with a
  positive scale: ``f(x / s) = f(x) / s``) feeds only convolutions ``B`` gets output channel
  ``c`` divided by ``s_c`` (weights and bias);
- every consumer ``B`` gets input channel ``c`` multiplied by ``s_c``: for a depthwise ``B`` that
  is its own output channel ``c``, so its per-channel int8 weights lose nothing; for a dense ``B``
  it stretches one column of each filter, which costs weight precision, hence the ``strength``
  exponent below;
- ``s_c = (r_c / max_k r_k) ** a`` with ``r_c`` the channel's high percentile of ``|x|`` on
  calibration batches, ``a = 1`` when all consumers are depthwise and ``a = strength`` otherwise
  (0.5 balances activation and weight ranges, as in Nagel et al. 2019 and SmoothQuant).

Channels that never activate (``r_c = 0``) keep ``s_c = 1``. Equalising ``A`` leaves ``B``'s
output unchanged (only ``B``'s weights absorb the scale), so every activation's ranges are
measured once, on the original graph, and a chain (conv -> depthwise -> pointwise -> ...) is
equalised link by link, each consumer's weights taking its producer's scale on the input axis and
its own on the output axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: Element-wise activations that commute with a positive per-channel scale.
HOMOGENEOUS_OPS = frozenset({"LeakyRelu", "Relu"})


def _group(node: Any) -> int:
    for attribute in node.attribute:
        if attribute.name == "group":
            return int(attribute.i)
    return 1


def _equalisable(model: Any, prefixes: Sequence[str]) -> list[tuple[Any, str, list[Any]]]:
    """``(producer conv, activation tensor, consumer convs)`` for every producer named by ``prefixes``."""
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in model.graph.output}
    initialisers = {i.name for i in model.graph.initializer}
    uses = {name: len(nodes) for name, nodes in consumers.items()}
    found = []
    for node in model.graph.node:
        if node.op_type != "Conv" or not any(node.name.startswith(p) for p in prefixes) or len(node.input) < 3:
            continue
        if any(uses.get(name, 0) != 1 or name not in initialisers for name in node.input[1:3]):
            continue  # shared or computed weights: leave alone
        tensor, chain = node.output[0], consumers.get(node.output[0], [])
        if len(chain) == 1 and chain[0].op_type in HOMOGENEOUS_OPS and tensor not in outputs:
            tensor = chain[0].output[0]
        after = consumers.get(tensor, [])
        if (
            tensor in outputs
            or not after
            or any(b.op_type != "Conv" or b.input[0] != tensor or uses.get(b.input[1], 0) != 1 for b in after)
            or any(b.input[1] not in initialisers for b in after)
        ):
            continue
        found.append((node, tensor, after))
    return found


def _channel_ranges(
    model: Any, tensors: Sequence[str], batches: Sequence[dict[str, np.ndarray]], percentile: float
) -> dict[str, np.ndarray]:
    """Per tensor, each channel's ``percentile`` of ``|x|`` (the largest over ``batches``), in one pass."""
    from retinakit.onnx.quantize import probe_session

    session, names = probe_session(model, tensors)
    per_batch: dict[str, list[np.ndarray]] = {t: [] for t in names}
    for feed in batches:
        for tensor, value in zip(names, session.run(names, feed), strict=True):
            channels = np.moveaxis(np.abs(value), 1, 0).reshape(value.shape[1], -1)
            per_batch[tensor].append(np.percentile(channels, percentile, axis=1))
    return {t: np.max(v, axis=0) for t, v in per_batch.items()}


def equalise_activations(
    model: Any,
    batches: Sequence[dict[str, np.ndarray]],
    prefixes: Sequence[str],
    strength: float = 0.5,
    percentile: float = 99.99,
) -> tuple[Any, dict[str, np.ndarray]]:
    """A copy of the ONNX ``model`` with the channels of the named convolutions' activations equalised.

    ``batches``: calibration feeds (input name -> array); ``prefixes``: node-name prefixes of the
    producing convolutions; returns the model and, per activation tensor, the scales ``s`` used
    (the new activation is the old one divided by ``s`` per channel).
    """
    import onnx
    from onnx import numpy_helper

    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must lie in [0, 1], got {strength}")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    weights = {i.name: i for i in out.graph.initializer}
    scales: dict[str, np.ndarray] = {}
    found = _equalisable(out, prefixes)
    if not found:
        return out, scales
    measured = _channel_ranges(model, [tensor for _, tensor, _ in found], batches, percentile)
    for producer, tensor, after in found:
        ranges = measured[tensor]
        if ranges.max() <= 0:
            continue
        kernels = [numpy_helper.to_array(weights[b.input[1]]) for b in after]
        if any(_group(b) > 1 and k.shape[1] != 1 for b, k in zip(after, kernels, strict=True)):
            continue  # grouped (not depthwise) consumer: channel c is not one filter's own input
        depthwise = all(_group(b) > 1 for b in after)
        exponent = 1.0 if depthwise else strength
        s = np.where(ranges > 0, (ranges / ranges.max()) ** exponent, 1.0).astype(np.float32)
        for name, axis_scale in ((producer.input[1], s), (producer.input[2], s)):
            array = numpy_helper.to_array(weights[name])
            shape = (-1,) + (1,) * (array.ndim - 1)
            weights[name].CopyFrom(numpy_helper.from_array(array / axis_scale.reshape(shape), name))
        for b, kernel in zip(after, kernels, strict=True):
            # depthwise: input channel c is output channel c; dense: column c of every filter
            shape = (-1, 1, 1, 1) if _group(b) > 1 else (1, -1, 1, 1)
            scaled = (kernel * s.reshape(shape)).astype(np.float32)
            weights[b.input[1]].CopyFrom(numpy_helper.from_array(scaled, b.input[1]))
        scales[tensor] = s
    return out, scales
