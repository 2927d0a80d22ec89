"""Injected detection failures for the batch tests, importable by Ray workers (``worker_process_setup_hook``).

A *poisoned* image carries :data:`MARK` in its top-left 4 x 4 pixels (saved losslessly as PNG);
:func:`install` makes every forward pass that holds a poisoned image fail, as a pass that runs out of
memory or hits a broken kernel would, so the image is its own error and its pass-mates must survive.
"""

from __future__ import annotations

import numpy as np

MARK = (255, 0, 255)
MESSAGE = "injected failure"


def poison(image: np.ndarray) -> np.ndarray:
    """A copy of a BGR image with :data:`MARK` in its corner."""
    out = image.copy()
    out[:4, :4] = MARK
    return out


def is_poisoned(image: np.ndarray) -> bool:
    return bool((image[:4, :4] == MARK).all())


def install() -> None:
    """Patch :meth:`retinakit.Detector.detect_bgr` to raise for any pass holding a poisoned image."""
    from retinakit.detector import Detector

    original = Detector.detect_bgr
    if getattr(original, "poisoned", False):
        return

    def detect_bgr(self, images):  # type: ignore[no-untyped-def]
        calls.append(len(images))
        if any(is_poisoned(image) for image in images):
            raise RuntimeError(MESSAGE)
        return original(self, images)

    detect_bgr.poisoned = True  # type: ignore[attr-defined]
    Detector.detect_bgr = detect_bgr  # type: ignore[method-assign]


#: Sizes of the passes run since :func:`install` (in this process).
calls: list[int] = []
