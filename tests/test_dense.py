"""The dense regression branch: Chebyshev filtering, renderer geometry and gradients, pixel loss,
anchor selection and the optional model output."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from retinakit.config import InputConfig, get_preset  # noqa: E402
from retinakit.models.dense.chebconv import ChebConv  # noqa: E402
from retinakit.models.dense.mesh import laplacian, load_face_mesh, scaled_laplacian  # noqa: E402
from retinakit.models.dense.pixel_loss import crop_boxes, pixel_loss, to_rgb01  # noqa: E402
from retinakit.models.dense.renderer import RenderConfig, project, render, to_camera  # noqa: E402
from retinakit.training.loss import select_faces  # noqa: E402

# a 4-vertex, 2-triangle square in the mesh frame (x right, y down, z away), facing the camera
QUAD = torch.tensor([[-0.6, -0.5, 0.0], [0.5, -0.6, 0.1], [0.6, 0.5, 0.0], [-0.5, 0.6, -0.1]], dtype=torch.float64)
QUAD_TRIS = torch.tensor([[0, 2, 1], [0, 3, 2]])


def test_face_mesh_is_a_closed_manifold_patch_with_consistent_orientation() -> None:
    mesh = load_face_mesh()
    assert mesh.level_sizes == (468, 117, 30)
    assert mesh.triangles.shape == (898, 3)  # as mediapipe's canonical face mesh
    directed = {(int(a), int(b)) for t in mesh.triangles for a, b in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0]))}
    assert len(directed) == 3 * len(mesh.triangles)  # no edge walked twice in one direction: consistent
    boundary = {a for a, b in directed if (b, a) not in directed}
    assert len(boundary) == 36  # one loop, the face outline: eyes and mouth are closed
    assert len(mesh.edges[0]) == (len(directed) + len(boundary)) // 2  # the graph convolved on is the mesh's
    a, b, c = (mesh.vertices[mesh.triangles[:, i]] for i in range(3))
    normals = np.cross(b - a, c - a)
    assert (normals[:, 2] < 0).mean() > 0.9  # most face the viewer (-z) on a frontal mean face
    for w in mesh.up_weight:
        np.testing.assert_allclose(w.sum(1), 1.0, rtol=1e-5)


def test_chebyshev_filter_equals_the_dense_spectral_formula() -> None:
    mesh = load_face_mesh()
    edges, n = mesh.edges[2], mesh.level_sizes[2]
    lap = laplacian(edges, n)
    lam, vecs = np.linalg.eigh(lap)
    scaled_eigs = np.clip(2 * lam / lam[-1] - 1, -1, 1)
    torch.manual_seed(0)
    k = 5
    conv = ChebConv(3, 2, k, scaled_laplacian(edges, n)).double()
    x = torch.randn(2, n, 3, dtype=torch.float64)
    got = conv(x).detach().numpy()
    # T_k(L̃) = U cos(k arccos Λ) U^T, independent of the recursion
    theta = conv.weight.detach().numpy()
    want = np.zeros((2, n, 2)) + conv.bias.detach().numpy()
    for j in range(k):
        t_k = vecs @ np.diag(np.cos(j * np.arccos(scaled_eigs))) @ vecs.T
        want += np.einsum("vw,bwc,cd->bvd", t_k, x.numpy(), theta[j])
    np.testing.assert_allclose(got, want, atol=1e-5)  # the sparse Laplacian is float32


def test_a_vertex_at_a_known_point_projects_to_the_computed_pixel() -> None:
    config = RenderConfig(size=32, distance=5.0)
    # zero camera: X_c = X + (0, 0, 5), u = 16 (1 + 5 x / 5) - 1/2
    point = torch.tensor([[[0.53125, -0.21875, 0.0]]], dtype=torch.float64)
    cam = torch.zeros(1, 7, dtype=torch.float64)
    uv = project(to_camera(point, cam, config), cam, config)
    np.testing.assert_allclose(uv[0, 0].numpy(), [24.0, 12.0], atol=1e-9)
    # yaw 90 degrees turns +x into -z (towards the camera): x = 0, z = 4; focal doubled by log 2
    cam = torch.tensor([[0.0, 0.0, 0.0, 0.0, math.pi / 2, 0.0, math.log(2.0)]], dtype=torch.float64)
    uv = project(to_camera(torch.tensor([[[1.0, 0.5, 0.0]]], dtype=torch.float64), cam, config), cam, config)
    np.testing.assert_allclose(uv[0, 0].numpy(), [15.5, 16 * (1 + 10 * 0.5 / 4) - 0.5], atol=1e-9)


def test_a_rendered_triangle_lands_where_projected() -> None:
    config = RenderConfig(size=32, distance=5.0)
    centre = torch.tensor([0.53125, -0.21875, 0.0], dtype=torch.float64)
    tri = centre + 0.04 * torch.tensor([[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [0.0, 1.2, 0.0]], dtype=torch.float64)
    _, mask = render(
        tri[None],
        torch.ones(1, 3, 3, dtype=torch.float64),
        torch.tensor([[0, 2, 1]]),
        torch.zeros(1, 7, dtype=torch.float64),
        torch.zeros(1, 9, dtype=torch.float64),
        config,
    )
    row, col = np.unravel_index(int(mask[0].argmax()), (32, 32))
    assert (row, col) == (12, 24)
    assert mask[0, 12, 24] > 0.5 and mask[0, 0, 0] < 1e-6


def _scene_loss(vertices: torch.Tensor, colours: torch.Tensor, cam: torch.Tensor, ill: torch.Tensor) -> torch.Tensor:
    config = RenderConfig(size=10, sigma=0.5, distance=5.0)
    image, mask = render(vertices[None], colours[None], QUAD_TRIS, cam[None], ill[None], config)
    weights = torch.linspace(-1, 1, image.numel(), dtype=torch.float64).reshape(image.shape).cos()
    return (image * weights).sum() + (mask * weights[:, 0]).sum()


def test_rendering_gradients_match_finite_differences() -> None:
    vertices = QUAD.clone().requires_grad_()
    colours = torch.tensor([[0.9, 0.2, 0.1], [0.2, 0.8, 0.3], [0.1, 0.3, 0.9], [0.7, 0.7, 0.2]], dtype=torch.float64)
    colours.requires_grad_()
    cam = torch.tensor([0.1, -0.05, 0.05, 0.1, -0.15, 0.05, 0.1], dtype=torch.float64, requires_grad=True)
    ill = torch.tensor([0.3, -0.4, -0.2, 0.1, -0.1, 0.2, 0.05, -0.2, 0.1], dtype=torch.float64, requires_grad=True)
    loss = _scene_loss(vertices, colours, cam, ill)
    loss.backward()
    eps = 1e-6

    def numeric(tensor: torch.Tensor, index: tuple[int, ...]) -> float:
        with torch.no_grad():
            tensor[index] += eps
            up = float(_scene_loss(vertices, colours, cam, ill))
            tensor[index] -= 2 * eps
            down = float(_scene_loss(vertices, colours, cam, ill))
            tensor[index] += eps
        return (up - down) / (2 * eps)

    checks = [(cam, (i,)) for i in range(7)] + [(ill, (i,)) for i in range(9)]
    checks += [(vertices, (2, j)) for j in range(3)] + [(colours, (1, 1))]
    for tensor, index in checks:
        analytic = float(tensor.grad[index])
        assert abs(analytic - numeric(tensor, index)) <= 1e-5 * max(1.0, abs(analytic)), (index, analytic)
    assert all(float(cam.grad[i]) != 0.0 for i in range(7))  # every camera parameter matters
    assert float(vertices.grad[2].abs().sum()) > 0 and float(ill.grad.abs().sum()) > 0


def test_pixel_loss_is_zero_when_the_crop_is_the_rendering() -> None:
    mesh = load_face_mesh()
    config = RenderConfig(size=16)
    vertices = torch.from_numpy(mesh.vertices)[None].double()
    albedo = torch.from_numpy(mesh.colours)[None].double()
    rendered, _ = render(
        vertices,
        albedo,
        torch.from_numpy(mesh.triangles),
        torch.zeros(1, 7, dtype=torch.float64),
        torch.zeros(1, 9, dtype=torch.float64),
        config,
        torch.full((1, 3), 0.5, dtype=torch.float64),
    )
    # paste it 2x (nearest) into a network input at box (20, 12)-(52, 44), normalised as BGR - mean
    rgb = torch.rand(1, 3, 64, 80, dtype=torch.float64)
    rgb[:, :, 12:44, 20:52] = rendered.repeat_interleave(2, 2).repeat_interleave(2, 3)
    cfg = InputConfig()
    mean = torch.tensor(cfg.mean, dtype=torch.float64)[None, :, None, None]
    images = rgb.flip(1) * 255 - mean
    np.testing.assert_allclose(to_rgb01(images, cfg).numpy(), rgb.numpy(), atol=1e-12)
    box = torch.tensor([[20.0, 12.0, 52.0, 44.0]], dtype=torch.float64)
    crop = crop_boxes(images, torch.tensor([0]), box, 16)
    crop = to_rgb01(crop, cfg)  # linear: cropping and un-normalising commute
    assert float(pixel_loss(rendered, crop)) < 1e-9
    shifted = to_rgb01(crop_boxes(images, torch.tensor([0]), box + 4, 16), cfg)
    assert float(pixel_loss(rendered, shifted)) > 0.01


def test_select_faces_takes_one_anchor_per_face_largest_first() -> None:
    anchors = torch.tensor(
        [[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 40, 40], [2, 2, 38, 38], [50, 50, 60, 60], [0, 0, 5, 5]],
        dtype=torch.float32,
    )
    boxes = torch.tensor([[0, 0, 10, 10], [0, 0, 40, 40], [50, 50, 61, 61]], dtype=torch.float32)
    matches = torch.tensor([0, 0, 1, 1, 2, -1])
    assert select_faces(matches, anchors, boxes, 8).tolist() == [2, 4, 0]
    assert select_faces(matches, anchors, boxes, 2).tolist() == [2, 4]
    assert select_faces(torch.full((6,), -1), anchors, boxes, 8).tolist() == []


def test_models_without_the_branch_are_unchanged_and_with_it_add_one_output() -> None:
    from retinakit.models import build_model

    plain = get_preset("mobilenet0.25")
    assert "dense" not in plain.to_dict()
    model = build_model(plain)
    assert not any(k.startswith("dense.") for k in model.state_dict())
    x = torch.zeros(1, 3, 64, 64)
    out = model(x)
    assert type(out).__name__ == "RawOutputs" and len(out) == 3  # exactly the outputs as before
    dense = build_model(replace(plain, dense=True)).eval()
    raw = dense(x)
    assert raw.dense_params.shape == (1, raw.logits.shape[1], 144)
    from retinakit.models.retinaface import without_dense

    stripped = without_dense(dense)(x)
    assert type(stripped).__name__ == "RawOutputs"
    for a, b in zip(stripped, raw[:3], strict=True):
        torch.testing.assert_close(a, b)
    # an untrained decoder gives the mean face
    vertices, _ = dense.dense.reconstruct(torch.zeros(1, 144))
    np.testing.assert_allclose(vertices[0].detach().numpy(), load_face_mesh().vertices, atol=1e-6)


def test_pixel_loss_enters_the_multitask_loss_by_name() -> None:
    from retinakit.core.anchors import generate_anchors
    from retinakit.models import build_model
    from retinakit.training.loss import MultiTaskLoss, get_loss_preset

    torch.manual_seed(0)
    config = replace(get_preset("mobilenet0.25"), dense=True)
    model = build_model(config)
    images = torch.randn(1, 3, 128, 128) * 40
    anchors = torch.from_numpy(generate_anchors(config.anchors, 128, 128).copy())
    target = {
        "boxes": torch.tensor([[30.0, 30.0, 94.0, 100.0]]),
        "landmarks": torch.zeros(1, 5, 2),
        "has_landmarks": torch.zeros(1, dtype=torch.bool),
    }
    assert get_loss_preset("biubug6").pixel_weight == 0.001  # the paper's λ3
    loss_config = replace(get_loss_preset("biubug6"), pixel_weight=0.5)
    loss = MultiTaskLoss(loss_config, config.anchors.variances, model.dense, config.input)
    out = loss(model(images), [target], anchors, images)
    assert set(out) == {"cls", "box", "landmarks", "pixel", "total"}
    assert out["pixel"].item() > 0.01
    base = out["cls"] * 1.0 + out["box"] * 2.0 + out["landmarks"] * 1.0
    assert (out["total"] - base).item() == pytest.approx(0.5 * out["pixel"].item(), abs=1e-5)
    out["total"].backward()
    assert sum(float(c.weight.grad.abs().sum()) for c in model.dense.head.convs) > 0


@pytest.fixture(scope="module")
def dense_detector():
    """The built-in weights plus an untrained dense branch (it renders the mean face in each box)."""
    from retinakit import Detector
    from retinakit.core.builtin import builtin_weights
    from retinakit.models import build_model
    from retinakit.models.backend import TorchBackend
    from retinakit.models.checkpoints import read_weights

    torch.manual_seed(0)
    model = build_model(replace(get_preset("mobilenet0.25"), dense=True))
    missing, unexpected = model.load_state_dict(read_weights(builtin_weights("safetensors"))[0], strict=False)
    assert not unexpected and missing and all(k.startswith("dense.") for k in missing)
    for conv in model.dense.head.convs:  # exact zero parameters: the mean face, frontal
        torch.nn.init.zeros_(conv.weight)
    return Detector(backend_instance=TorchBackend(model=model), max_side=256)


def test_faces_carry_meshes_in_image_pixels_and_export(dense_detector, astronaut_rgb, tmp_path) -> None:
    from retinakit.io.draw import draw_faces
    from retinakit.io.meshes import save_mesh

    faces = dense_detector(astronaut_rgb, color="rgb")
    assert len(faces) >= 1 and faces.meshes is not None
    assert faces.meshes.vertices.shape == (len(faces), 468, 3) and faces.meshes.triangles.shape == (898, 3)
    # zero parameters: the mean face at distance 5, focal 5, in the crop of the box: u = 5 X / (Z + 5) in [-1, 1]
    x0, y0, x1, y1 = faces.boxes[0]
    mean = load_face_mesh().vertices
    want_x = x0 + (1 + 5 * mean[:, 0] / (mean[:, 2] + 5)) / 2 * (x1 - x0)
    want_y = y0 + (1 + 5 * mean[:, 1] / (mean[:, 2] + 5)) / 2 * (y1 - y0)
    v = faces.meshes.vertices[0]
    np.testing.assert_allclose(v[:, 0], want_x, atol=0.05)
    np.testing.assert_allclose(v[:, 1], want_y, atol=0.05)
    assert len(faces[[0]].meshes) == 1
    obj = save_mesh(faces, 0, tmp_path / "face.obj").read_text().splitlines()
    assert sum(line.startswith("v ") for line in obj) == 468 and sum(line.startswith("f ") for line in obj) == 898
    ply = save_mesh(faces, 0, tmp_path / "face.ply").read_text().splitlines()
    assert "element vertex 468" in ply and len(ply) == ply.index("end_header") + 1 + 468 + 898
    bgr = np.ascontiguousarray(astronaut_rgb[:, :, ::-1])
    drawn = draw_faces(bgr, faces[[0]], show_scores=False)
    cx, cy = int((x0 + x1) / 2), int((y0 + y1) / 2)
    assert np.abs(drawn[cy - 5 : cy + 5, cx - 5 : cx + 5].astype(int) - bgr[cy - 5 : cy + 5, cx - 5 : cx + 5]).sum() > 0
    with pytest.raises(ValueError, match="no meshes"):
        save_mesh(faces[[0]].__class__(faces.boxes, faces.scores, faces.landmarks), 0, tmp_path / "x.obj")


def test_models_without_the_branch_give_no_meshes(torch_detector, astronaut_rgb) -> None:
    faces = torch_detector(astronaut_rgb, color="rgb")
    assert len(faces) >= 1 and faces.meshes is None


def test_detect_paths_saves_meshes_and_draws_them(dense_detector, astronaut_rgb, tmp_path) -> None:
    import cv2

    from retinakit.apps.files import detect_paths

    image = tmp_path / "in" / "astronaut.png"
    image.parent.mkdir()
    cv2.imwrite(str(image), astronaut_rgb[:, :, ::-1])
    records = list(
        detect_paths([image], dense_detector, save_images=tmp_path / "drawn", save_meshes=tmp_path / "meshes")
    )
    assert "error" not in records[0] and len(records[0]["faces"]) >= 1
    objs = sorted((tmp_path / "meshes").rglob("*.obj"))
    assert [p.name for p in objs] == [f"astronaut.png_{i}.obj" for i in range(len(records[0]["faces"]))]
    assert len(list((tmp_path / "drawn").rglob("*.jpg"))) == 1


@pytest.mark.slow
def test_a_dense_model_exports_to_onnx_with_a_fourth_output_and_detects(tmp_path) -> None:
    pytest.importorskip("onnx")
    from retinakit import Detector
    from retinakit.inference.backends import OnnxBackend
    from retinakit.models import build_model
    from retinakit.models.export import export_onnx
    from retinakit.models.retinaface import without_dense

    model = build_model(replace(get_preset("mobilenet0.25"), dense=True)).eval()
    export_onnx(model, tmp_path / "dense.onnx", sample_size=(64, 64))
    backend = OnnxBackend(tmp_path / "dense.onnx")
    assert backend.config.dense
    raw = backend(np.zeros((1, 3, 64, 96), np.float32))
    assert raw.dense_params.shape == (1, raw.logits.shape[1], 144)
    faces = Detector(backend_instance=backend, score_threshold=0.4)(np.zeros((64, 96, 3), np.uint8), color="bgr")
    assert faces.meshes is None  # meshes need the PyTorch decoder
    export_onnx(without_dense(model), tmp_path / "plain.onnx", sample_size=(64, 64))
    plain = OnnxBackend(tmp_path / "plain.onnx")
    assert not plain.config.dense and len(plain(np.zeros((1, 3, 64, 96), np.float32))) == 3
