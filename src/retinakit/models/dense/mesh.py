"""The fixed-topology face mesh (``face_mesh.npz``, made by ``scripts/make_face_mesh.py``; see
``MESH_NOTICE.txt``) and the graph operators the mesh decoder needs.

Coordinates: x right, y down, z away from the viewer; the mean shape is centred with its x/y
extent in [-1, 1]. Level 0 is the full mesh (468 vertices), levels 1 and 2 are coarser (117, 30).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

MESH_FILE = Path(__file__).with_name("face_mesh.npz")


@dataclass(frozen=True)
class FaceMesh:
    """Mean shape ``vertices (V, 3)``, mean colours ``colours (V, 3)`` RGB in [0, 1],
    ``triangles (F, 3)`` (``cross(b - a, c - a)`` points out of the face), ``edges[l] (E_l, 2)`` per level,
    ``up_index[l]`` / ``up_weight[l]`` ``(V_l, 3)``: level-``l`` vertex as a weighted sum of three
    level-``l+1`` vertices; ``lambda_max[l]``: largest eigenvalue of level ``l``'s Laplacian."""

    vertices: np.ndarray
    colours: np.ndarray
    triangles: np.ndarray
    edges: tuple[np.ndarray, ...]
    up_index: tuple[np.ndarray, ...]
    up_weight: tuple[np.ndarray, ...]
    lambda_max: tuple[float, ...]

    @property
    def level_sizes(self) -> tuple[int, ...]:
        """Vertices per level, finest first."""
        return (len(self.vertices), *(int(e.max()) + 1 for e in self.edges[1:]))


@lru_cache(maxsize=1)
def load_face_mesh(path: str | None = None) -> FaceMesh:
    """The packaged face mesh (or the ``.npz`` at ``path``)."""
    data = np.load(path or MESH_FILE)
    levels = sum(1 for k in data.files if k.startswith("edges_"))
    return FaceMesh(
        vertices=data["vertices"],
        colours=data["colours"],
        triangles=data["triangles"].astype(np.int64),
        edges=tuple(data[f"edges_{i}"].astype(np.int64) for i in range(levels)),
        up_index=tuple(data[f"up_index_{i}"].astype(np.int64) for i in range(1, levels)),
        up_weight=tuple(data[f"up_weight_{i}"] for i in range(1, levels)),
        lambda_max=tuple(float(data[f"lambda_max_{i}"]) for i in range(levels)),
    )


def laplacian(edges: np.ndarray, num_vertices: int) -> np.ndarray:
    """Combinatorial graph Laplacian ``L = D - E`` (dense, ``(V, V)``) of an undirected edge list."""
    adj = np.zeros((num_vertices, num_vertices))
    adj[edges[:, 0], edges[:, 1]] = 1.0
    adj[edges[:, 1], edges[:, 0]] = 1.0
    return np.diag(adj.sum(1)) - adj


def scaled_laplacian(edges: np.ndarray, num_vertices: int, lam_max: float | None = None) -> torch.Tensor:
    """``L̃ = 2 L / λ_max - I`` as a sparse COO tensor (float32): its spectrum lies in [-1, 1],
    where Chebyshev polynomials are bounded. ``lam_max`` (stored with the mesh) saves the
    eigenvalue computation."""
    lap = laplacian(edges, num_vertices)
    if lam_max is None:
        lam_max = float(np.linalg.eigvalsh(lap)[-1])
    scaled = 2.0 * lap / lam_max - np.eye(num_vertices)
    return torch.from_numpy(scaled).float().to_sparse_coo().coalesce()


def upsampling_matrix(index: np.ndarray, weight: np.ndarray, num_coarse: int) -> torch.Tensor:
    """Sparse ``(V_fine, V_coarse)`` matrix with rows ``weight`` at columns ``index``."""
    rows = np.repeat(np.arange(len(index)), index.shape[1])
    ind = torch.from_numpy(np.stack([rows, index.reshape(-1)]))
    values = torch.from_numpy(weight.reshape(-1).astype(np.float32))
    return torch.sparse_coo_tensor(ind, values, (len(index), num_coarse), check_invariants=True).coalesce()
