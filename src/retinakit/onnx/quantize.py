"""int8 static quantisation of an exported model with ONNX Runtime, calibrated on real images.

Calibration images must come from the training distribution (the built-in int8 model was
calibrated on WIDER FACE *training* images), never from the evaluation set.

The recipe (:class:`QuantizeConfig`): QDQ format, int8 per-channel symmetric weights, uint8
per-tensor activations, each activation's range chosen to minimise the mean squared quantisation
error (clipping + rounding) on the calibration activations (``ranges="mse"``) rather than the
plain min/max, which a few extreme pixels stretch; nodes whose name starts with one of
``keep_float`` stay in fp32 (mixed precision). The result optionally takes the uint8 image
directly (:mod:`retinakit.onnx.fused_input`). Needs the ``onnx`` package (``torch`` extra).
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from retinakit.config import CONFIG_KEY, ModelConfig, stored_config
from retinakit.core.images import read_image
from retinakit.core.outputs import INPUT_NAME
from retinakit.inference.backends import QUANTIZATION_KEY
from retinakit.inference.preprocess import ResizePolicy, make_batch, resize

#: Operators whose float outputs are quantised activations in this network.
ACTIVATION_OPS = frozenset({"Conv", "LeakyRelu", "Relu", "Add", "Resize", "Concat"})


@dataclass(frozen=True)
class QuantizeConfig:
    """How :func:`quantize_onnx` quantises.

    ``num_images``: calibration images used (a seeded sample of those given); ``max_side``: their
    long side is shrunk to this; ``ranges``: ``mse`` or ``minmax`` activation ranges;
    ``keep_float``: node-name prefixes left in fp32 (default: the first backbone stage, whose
    quantisation costs 3-6 AP on WIDER FACE, and the small heads; see the README's sensitivity
    table); ``fused_input``: uint8 NHWC BGR input; ``equalise``: node-name prefixes of
    convolutions whose output channels are equalised first (:mod:`retinakit.onnx.equalise`,
    ``equalise_strength`` its exponent for activations feeding dense convolutions, measured on
    ``equalise_images`` of the calibration images); off by default: on WIDER FACE it recovers
    part, not all, of the first stage's loss (README).
    """

    num_images: int = 64
    max_side: int = 640
    ranges: Literal["mse", "minmax"] = "mse"
    keep_float: tuple[str, ...] = ("/backbone/stage1", "/heads")
    fused_input: bool = True
    seed: int = 0
    samples_per_image: int = 2048
    equalise: tuple[str, ...] = ()
    equalise_strength: float = 0.5
    equalise_images: int = 16

    def __post_init__(self) -> None:
        if self.num_images < 1 or self.max_side < 16:
            raise ValueError(f"num_images must be >= 1 and max_side >= 16, got {self.num_images}, {self.max_side}")
        if not 0.0 <= self.equalise_strength <= 1.0 or self.equalise_images < 1:
            raise ValueError("equalise_strength must lie in [0, 1] and equalise_images be >= 1")
        if self.ranges not in ("mse", "minmax"):
            raise ValueError(f"ranges must be 'mse' or 'minmax', got {self.ranges!r}")


def pick_calibration(paths: Sequence[str | os.PathLike], count: int, seed: int = 0) -> list[Path]:
    """``count`` of ``paths`` (sorted, then a seeded shuffle), so a run is reproducible."""
    chosen = sorted(Path(p) for p in paths)
    random.Random(seed).shuffle(chosen)
    return chosen[:count]


def mse_range(values: np.ndarray, levels: int = 255, steps: int = 32) -> tuple[float, float]:
    """The ``[low, high]`` clipping range of uniform ``levels``-step quantisation with least squared error.

    Searches each end over ``steps`` fractions (1/steps .. 1) of the observed min / max, twice in
    turn (coordinate descent); the range always contains 0, as quantised zero must be exact.
    """
    low, high = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    if high - low <= 0:
        return low, high

    def error(lo: float, hi: float) -> float:
        scale = (hi - lo) / levels
        zero = np.round(-lo / scale)
        q = np.clip(np.round(values / scale) + zero, 0, levels)
        return float(np.mean(((q - zero) * scale - values) ** 2))

    fractions = np.arange(1, steps + 1) / steps
    best_lo, best_hi = low, high
    for _ in range(2):
        if high > 0:
            best_hi = min((high * f for f in fractions), key=lambda h: error(best_lo, h))
        if low < 0:
            best_lo = min((low * f for f in fractions), key=lambda lo: error(lo, best_hi))
    return best_lo, best_hi


def _calibration_batches(paths: Sequence[Path], config: ModelConfig, max_side: int) -> Iterator[np.ndarray]:
    policy = ResizePolicy(max_side=max_side)
    for path in paths:
        image, _ = resize(read_image(path), policy)
        yield make_batch([image], config.input)


def range_sample(values: np.ndarray, rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` random entries of ``values`` plus its min and max, flat: what :func:`mse_range`
    searches over for one batch (the extremes matter for the search bounds)."""
    flat = values.ravel()
    return np.concatenate([flat[rng.integers(0, flat.size, count)], [flat.min(), flat.max()]])


def probe_session(model: Any, tensors: Sequence[str]) -> tuple[Any, list[str]]:
    """An ONNX Runtime session over a copy of the ONNX ``model`` whose outputs are its intermediate
    ``tensors``, and those of them the runtime exposes (in the given order)."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    present = {o.name for o in probe.graph.output}
    probe.graph.output.extend(onnx.helper.make_empty_tensor_value_info(t) for t in tensors if t not in present)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    valid = {o.name for o in session.get_outputs()}
    return session, [t for t in tensors if t in valid]


def activation_ranges(
    model_path: str | os.PathLike, batches: Sequence[np.ndarray], samples_per_image: int = 2048, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """MSE-optimal ``(rmin, rmax)`` of every activation tensor of the float graph over ``batches``."""
    import onnx

    model = onnx.load(os.fspath(model_path))
    wanted = [out for node in model.graph.node if node.op_type in ACTIVATION_OPS for out in node.output]
    session, names = probe_session(model, wanted)
    rng = np.random.default_rng(seed)
    samples: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for batch in batches:
        for name, value in zip(names, session.run(names, {INPUT_NAME: batch}), strict=True):
            samples[name].append(range_sample(value, rng, samples_per_image))
    return {name: mse_range(np.concatenate(parts)) for name, parts in samples.items()}


def quantize_onnx(
    model_path: str | os.PathLike,
    output_path: str | os.PathLike,
    calibration_images: Sequence[str | os.PathLike],
    config: ModelConfig | None = None,
    options: QuantizeConfig | None = None,
) -> dict[str, Any]:
    """Write an int8 copy of the float ONNX file ``model_path`` to ``output_path``; returns its recipe.

    ``calibration_images``: training images (``options.num_images`` of them are used); ``config``:
    the model's config (default: the one stored in the graph). The config metadata is kept and the
    recipe (options and the calibration file names) is stored under ``retinakit.quantization``.
    """
    try:
        import onnx
    except ImportError:
        raise ImportError("quantisation needs the onnx package: pip install 'retinakit[torch]'") from None
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    options = options or QuantizeConfig()
    if not calibration_images:
        raise ValueError("quantisation needs at least one calibration image")
    source = onnx.load(os.fspath(model_path))
    meta = {p.key: p.value for p in source.metadata_props}
    config = stored_config(model_path, meta.get(CONFIG_KEY), config)
    chosen = pick_calibration(calibration_images, options.num_images, options.seed)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        graph, batches = _prepare(model_path, prepared, chosen, config, options)
        excluded = [n.name for n in graph.graph.node if any(n.name.startswith(p) for p in options.keep_float)]
        extra = _range_overrides(prepared, batches, options)
        # with mse ranges every activation is overridden; one image only lets the calibrator run
        reader = _calibration_reader(chosen[: 1 if options.ranges == "mse" else len(chosen)], config, options.max_side)
        quantize_static(
            os.fspath(prepared),
            os.fspath(output_path),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=excluded,
            extra_options=extra,
        )
    recipe = {
        "tool": "retinakit.onnx.quantize.quantize_onnx (ONNX Runtime quantize_static, QDQ)",
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in options.__dict__.items()},
        "calibration": [f"{p.parent.name}/{p.name}" for p in chosen],
    }
    _store_recipe(output_path, source, recipe, config, options.fused_input)
    return recipe


def _prepare(
    model_path: str | os.PathLike, prepared: Path, chosen: Sequence[Path], config: ModelConfig, options: QuantizeConfig
) -> tuple[Any, list[np.ndarray]]:
    """Write ONNX Runtime's pre-processed (and, if asked, equalised) graph to ``prepared``; returns it and the
    decoded calibration batches the range search and the equalisation need (decoded once: the
    equalisation's images are the first of the MSE ranges' ones)."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(os.fspath(model_path), os.fspath(prepared))
    graph = onnx.load(os.fspath(prepared))
    count = len(chosen) if options.ranges == "mse" else options.equalise_images if options.equalise else 0
    batches = list(_calibration_batches(chosen[:count], config, options.max_side))
    if options.equalise:
        from retinakit.onnx.equalise import equalise_activations

        feeds = [{INPUT_NAME: b} for b in batches[: options.equalise_images]]
        graph, _ = equalise_activations(graph, feeds, options.equalise, options.equalise_strength)
        onnx.save(graph, os.fspath(prepared))
    return graph, batches


def _range_overrides(prepared: Path, batches: Sequence[np.ndarray], options: QuantizeConfig) -> dict[str, Any]:
    """``quantize_static``'s ``extra_options``: with ``ranges="mse"`` every activation's range, else none."""
    if options.ranges != "mse":
        return {}
    ranges = activation_ranges(prepared, batches, options.samples_per_image, options.seed)
    overrides = {name: [{"rmin": np.float32(lo), "rmax": np.float32(hi)}] for name, (lo, hi) in ranges.items()}
    return {"TensorQuantOverrides": overrides}


def _calibration_reader(paths: Sequence[Path], config: ModelConfig, max_side: int) -> Any:
    """An ONNX Runtime ``CalibrationDataReader`` over ``paths``, decoded one at a time."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = _calibration_batches(paths, config, max_side)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    return Reader()


def _store_recipe(
    output_path: str | os.PathLike, source: Any, recipe: dict[str, Any], config: ModelConfig, fused_input: bool
) -> None:
    """Give the quantised file at ``output_path`` the metadata of ``source`` plus ``recipe`` and, if
    ``fused_input``, the uint8 input."""
    import json

    import onnx

    quantized = onnx.load(os.fspath(output_path))
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(source.metadata_props)
    entry = quantized.metadata_props.add()
    entry.key, entry.value = QUANTIZATION_KEY, json.dumps(recipe)
    if fused_input:
        from retinakit.onnx.fused_input import fuse_preprocessing

        quantized = fuse_preprocessing(quantized, config)
    onnx.save(quantized, os.fspath(output_path))
