"""PyTorch implementation of the RetinaFace network (needs the ``torch`` extra)."""

from retinakit.models.retinaface import RetinaFace, build_model

__all__ = ["RetinaFace", "build_model"]
