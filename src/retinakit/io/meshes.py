"""Writing a detected face's dense mesh as a Wavefront ``.obj`` or a ``.ply`` file (vertex colours)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from retinakit.result import Faces


def save_mesh(faces: Faces, index: int, path: str | os.PathLike) -> Path:
    """Write face ``index``'s mesh to ``path`` (``.obj`` or ``.ply`` by suffix); returns the path.

    Vertices are in image pixels (x right, y down, z away from the camera); colours RGB per vertex
    (``.obj`` as the common ``v x y z r g b`` extension). Raises ``ValueError`` when ``faces`` has
    no meshes (a model without the dense branch, or not the torch backend).
    """
    if faces.meshes is None:
        raise ValueError("these faces carry no meshes: use a model with the dense branch on the torch backend")
    path = Path(path)
    vertices, colours = faces.meshes.vertices[index], faces.meshes.colors[index]
    triangles = faces.meshes.triangles
    suffix = path.suffix.lower()
    if suffix == ".obj":
        lines = ["# retinakit dense face mesh: x, y in image pixels, z depth; r g b in [0, 1]"]
        lines += [
            f"v {x:.3f} {y:.3f} {z:.3f} {r:.4f} {g:.4f} {b:.4f}"
            for (x, y, z), (r, g, b) in zip(vertices, colours, strict=True)
        ]
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in triangles]
        path.write_text("\n".join(lines) + "\n")
    elif suffix == ".ply":
        rgb = np.clip(np.round(colours * 255), 0, 255).astype(int)
        header = [
            "ply",
            "format ascii 1.0",
            "comment retinakit dense face mesh: x, y in image pixels, z depth",
            f"element vertex {len(vertices)}",
            "property float x",
            "property float y",
            "property float z",
            "property uchar red",
            "property uchar green",
            "property uchar blue",
            f"element face {len(triangles)}",
            "property list uchar int vertex_indices",
            "end_header",
        ]
        body = [f"{x:.3f} {y:.3f} {z:.3f} {r} {g} {b}" for (x, y, z), (r, g, b) in zip(vertices, rgb, strict=True)]
        body += [f"3 {a} {b} {c}" for a, b, c in triangles]
        path.write_text("\n".join(header + body) + "\n")
    else:
        raise ValueError(f"{path}: mesh files must end in .obj or .ply")
    return path
