"""The paper's dense regression branch (RetinaFace §3.2): per-anchor shape-and-texture code,
camera and illumination parameters, a graph-convolutional mesh decoder, a differentiable renderer
and the self-supervised pixel loss. Optional: only built when ``ModelConfig.dense`` is on."""

from retinakit.models.dense.decoder import MeshDecoder
from retinakit.models.dense.head import DENSE_DIMS, DenseHead, split_params
from retinakit.models.dense.mesh import FaceMesh, load_face_mesh
from retinakit.models.dense.renderer import RenderConfig, render

__all__ = [
    "DENSE_DIMS",
    "DenseHead",
    "FaceMesh",
    "MeshDecoder",
    "RenderConfig",
    "load_face_mesh",
    "render",
    "split_params",
]
