"""What the service holds while it runs: the loaded model, the detectors derived from it, the engine, metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from retinakit.apps.serve.config import ServeConfig
from retinakit.apps.serve.engine import Engine, PixelBudget, make_engine
from retinakit.apps.serve.metrics import Metrics
from retinakit.apps.serve.output import decode
from retinakit.detector import Detector
from retinakit.inference.backends import Backend


class PassCounter:
    """A backend that reports the images of each forward pass (``on_pass``, from the worker thread)."""

    def __init__(self, inner: Backend, on_pass: Callable[[int], None]) -> None:
        self.inner = inner
        self.on_pass = on_pass

    def __call__(self, batch: np.ndarray) -> Any:
        out = self.inner(batch)
        self.on_pass(len(batch))
        return out

    def __getattr__(self, name: str) -> Any:  # config, input_layout, decode_meshes ... of the real backend
        return getattr(self.inner, name)


class ServiceState:
    """The loaded detector (one model, loaded once), the detectors derived from it per request options,
    the engine that runs them and the metrics."""

    def __init__(self, config: ServeConfig, detector: Detector | None) -> None:
        self.config = config
        self.detector = detector
        self.load_error: str | None = None
        self._derived: dict[tuple[Any, ...], Detector] = {}
        self._counted: Backend | None = None
        self.metrics = Metrics(queue_depth=lambda: self.engine.depth, in_flight=lambda: self.engine.running)
        self.engine: Engine = make_engine(
            config.engine,
            config.max_queue,
            config.workers,
            decode,
            config.max_batch,
            config.batch_window_ms / 1000,
            PixelBudget(config.max_pass_pixels),
        )

    def load(self) -> None:
        config = self.config.detector
        if config.threads is None and self.config.workers > 1:  # workers x threads within the cores
            from retinakit.inference.backends import physical_cores

            config = replace(config, threads=max(1, physical_cores() // self.config.workers))
        try:
            self.detector = Detector(config)
        except Exception as exc:  # reported by /readyz; the process stays up to say why
            self.load_error = f"{type(exc).__name__}: {exc}"

    def _backend(self) -> Backend:
        """The loaded model's backend, counting forward passes into the metrics (on the event loop)."""
        if self._counted is None:
            assert self.detector is not None
            loop = asyncio.get_running_loop()

            def on_pass(images: int) -> None:  # from a worker thread: the metrics live on the event loop
                loop.call_soon_threadsafe(self.metrics.batches.observe, images)

            self._counted = PassCounter(self.detector.backend, on_pass)
        return self._counted

    def detector_for(
        self, max_side: int | None, tta: bool, threshold: float, orientations: tuple[int, ...] | str = (0,)
    ) -> Detector:
        """The detector for these options, sharing the loaded model (its backend) with the base detector.

        It runs at the request's ``threshold``: merged passes (TTA voting) give other faces at another
        threshold, so filtering the base detector's faces would not give what the API gives.
        """
        base = self.detector
        assert base is not None
        key = (max_side, tta, round(threshold, 6), orientations)
        found = self._derived.get(key)
        if found is None:
            changes: dict[str, Any] = {"max_side": max_side, "score_threshold": threshold, "orientations": orientations}
            if tta:
                changes.update(scales=self.config.tta_scales, flip=self.config.tta_flip)
            found = Detector(replace(base.config, **changes), backend_instance=self._backend())
            if len(self._derived) >= 64:  # request options are bounded, but keep the cache bounded too
                self._derived.pop(next(iter(self._derived)))
            self._derived[key] = found
        return found

    def floor(self) -> float:
        """The lowest threshold a request may ask for: the loaded detector's."""
        return (self.detector.config if self.detector is not None else self.config.detector).score_threshold

    def model_info(self) -> dict[str, str]:
        from retinakit import __version__

        assert self.detector is not None
        weights = self.detector.config.weights
        return {
            "name": self.detector.model_config.name,
            "weights": Path(weights).name if weights else "built-in",
            "backend": self.detector.config.backend,
            "version": __version__,
        }
