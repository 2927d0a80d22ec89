"""The PyTorch implementation of the RetinaFace network (needs the ``torch`` extra).

Pure PyTorch: the tools on exported graphs are in :mod:`retinakit.onnx`. ``RetinaFace`` and
``build_model`` are imported on first use, so ``import retinakit.models`` alone needs no PyTorch.
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
