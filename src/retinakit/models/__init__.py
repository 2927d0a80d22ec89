"""PyTorch implementation of the RetinaFace network (needs the ``torch`` extra).

``RetinaFace`` and ``build_model`` are imported on first use, so that the modules here that work on
ONNX graphs without PyTorch (:mod:`~retinakit.models.quantize`, :mod:`~retinakit.models.fused_input`,
:mod:`~retinakit.models.equalise`) stay importable in a base install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retinakit.models.retinaface import RetinaFace, build_model

__all__ = ["RetinaFace", "build_model"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from retinakit.models import retinaface

        return getattr(retinaface, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
