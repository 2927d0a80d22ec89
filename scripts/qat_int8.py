"""Quantisation-aware fine-tuning (distillation) so that the whole network but the heads runs in int8 (issue #14).

    PYTHONPATH=src python scripts/qat_int8.py --images ../shared/data/widerface/train-subset/images \
        --out runs/qat_int8

The student is the built-in model with fake int8 quantisation where the int8 ONNX model quantises:
the network input, and every convolution's (batch-norm folded) output and every LeakyReLU's output
of the modules under ``--simulate`` (per-tensor uint8, MSE ranges as :func:`quantize_onnx` measures
them, re-measured every ``--remeasure`` steps because the weights move), and the weights of their
convolutions (per-channel symmetric int8). The teacher is the float built-in model. The loss needs
no labels, so the student keeps the float model's behaviour instead of drifting towards a small
training set: on random crops of training images (at a random scale),

* the KL divergence of the student's face/background probabilities from the teacher's, and
* the squared difference of box and landmark regressions, weighted by the teacher's face probability,

each summed over anchors and divided by the teacher's soft face count. The parameters under
``--train`` learn (Adam, cosine schedule); batch norm stays in eval mode (its statistics are frozen,
as they are folded into the convolutions of the exported model). Writes ``model.safetensors``
(float weights), ``model.onnx`` and ``model_int8.onnx`` (made by :func:`quantize_onnx` with
``--keep-float`` left in fp32, the heads by default) into ``--out``. Training images only; never
val-dev.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from retinakit.core.images import read_image
from retinakit.inference.backends import builtin_weights
from retinakit.inference.preprocess import ResizePolicy, make_batch, resize
from retinakit.io.inputs import list_images
from retinakit.models.checkpoints import load_model, save_safetensors
from retinakit.models.export import export_onnx
from retinakit.onnx.quantize import QuantizeConfig, mse_range, pick_calibration, quantize_onnx, range_sample


class FakeQuantWeight(nn.Module):
    """Per-output-channel symmetric int8 fake quantisation (straight-through gradient)."""

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        scale = w.detach().abs().amax(dim=(1, 2, 3)).clamp(min=1e-8) / 127
        zero = torch.zeros_like(scale, dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, -127, 127)


def quant_points(model: nn.Module, scopes: list[str]) -> list[tuple[str, nn.Module, str]]:
    """(name, module, where) of every tensor the int8 model quantises under ``scopes``: the network
    input ('input' of the first convolution) and each batch norm's and LeakyReLU's 'output'."""
    first = model.backbone.stage1[0][0]
    points: list[tuple[str, nn.Module, str]] = [("input", first, "input")]
    for name, module in model.named_modules():
        if any(name.startswith(s + ".") for s in scopes) and isinstance(module, nn.BatchNorm2d | nn.LeakyReLU):
            points.append((name, module, "output"))
    return points


def _hook(module: nn.Module, where: str, fn):
    """Run ``fn`` on ``module``'s input (``where="input"``) or output and use what it returns instead."""
    if where == "input":
        return module.register_forward_pre_hook(lambda m, a: (fn(a[0]),))
    return module.register_forward_hook(lambda m, a, y: fn(y))


class FakeQuantActivations:
    """Hooks that fake-quantise the tensors of ``points`` with per-tensor uint8 ranges (settable)."""

    def __init__(self, points: list[tuple[str, nn.Module, str]]) -> None:
        self.points = points
        self.ranges: dict[str, tuple[float, int]] = {}
        self.enabled = True
        for name, module, where in points:
            _hook(module, where, lambda x, n=name: self._fq(n, x))

    def _fq(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled or name not in self.ranges:
            return x
        scale, zero = self.ranges[name]
        return torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, 255)

    def measure(self, model: nn.Module, images: list[torch.Tensor], seed: int) -> None:
        """MSE ranges of every point on the float activations of ``images`` (as quantize_onnx does)."""
        rng = np.random.default_rng(seed)
        samples: dict[str, list[np.ndarray]] = {name: [] for name, _, _ in self.points}

        def take(name: str, x: torch.Tensor) -> torch.Tensor:
            samples[name].append(range_sample(x.detach().numpy(), rng, 2048))
            return x

        grab = [_hook(module, where, lambda x, n=name: take(n, x)) for name, module, where in self.points]
        self.enabled = False
        try:
            with torch.no_grad():
                for x in images:
                    model(x)
        finally:
            self.enabled = True
            for h in grab:
                h.remove()
        for name, parts in samples.items():
            lo, hi = mse_range(np.concatenate(parts))
            scale = max((hi - lo) / 255, 1e-8)
            self.ranges[name] = (scale, round(-lo / scale))


def load_folded(model: nn.Module, graph) -> None:
    """Set ``model``'s weights to the exported ONNX ``graph``'s (batch norm folded, e.g. after
    equalisation): each convolution takes its node's weights, the batch norm after it becomes the
    identity plus the node's bias. Convolutions pair with Conv nodes in execution order; the heads
    (one Conv per level over the three heads' filters) must be unchanged."""
    from onnx import numpy_helper

    order: list[str] = []
    names = {m: n for n, m in model.named_modules()}
    convs = [m for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and not n.startswith("heads.")]
    hooks = [m.register_forward_hook(lambda m, a, y: order.append(names[m])) for m in convs]
    with torch.no_grad():
        model(torch.zeros(1, 3, 64, 64))
    for h in hooks:
        h.remove()
    weights = {i.name: numpy_helper.to_array(i) for i in graph.graph.initializer}
    # the heads run as one F.conv2d per level (no module call): they must be left unchanged
    heads = [n for n in graph.graph.node if n.op_type == "Conv" and n.name.startswith("/heads")]
    for j, node in enumerate(heads):
        level = 0 if model.heads.shared else j
        parts = [model.heads.box[level], model.heads.cls[level], model.heads.landmarks[level]]
        expected = torch.cat([c.weight.detach() for c in parts]).numpy()
        if not np.allclose(weights[node.input[1]], expected, rtol=1e-5, atol=1e-7):
            raise ValueError(f"{node.name}: the heads' weights changed; equalise only what feeds no head")
    nodes = [n for n in graph.graph.node if n.op_type == "Conv" and not n.name.startswith("/heads")]
    if len(nodes) != len(order):
        raise ValueError(f"{len(nodes)} Conv nodes for {len(order)} convolutions")
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, node in zip(order, nodes, strict=True):
            conv = modules[name]
            kernel = torch.from_numpy(weights[node.input[1]].copy())
            bias = torch.from_numpy(weights[node.input[2]].copy()) if len(node.input) > 2 else None
            if kernel.shape != conv.weight.shape:
                shapes = f"{tuple(conv.weight.shape)} against {node.name}'s {tuple(kernel.shape)}"
                raise ValueError(f"{name}: shape {shapes}")
            conv.weight.copy_(kernel)
            parent, _, index = name.rpartition(".")
            after = modules.get(f"{parent}.{int(index) + 1}") if index.isdigit() else None
            if isinstance(after, nn.BatchNorm2d):
                after.weight.fill_(1.0)
                after.running_mean.zero_()
                after.running_var.fill_(1.0 - after.eps)
                after.bias.copy_(bias if bias is not None else torch.zeros_like(after.bias))
            elif conv.bias is not None and bias is not None:
                conv.bias.copy_(bias)


def equalise_model(model: nn.Module, images: list[torch.Tensor], prefixes: list[str], strength: float) -> None:
    """Equalise ``model`` in place with :func:`retinakit.onnx.equalise.equalise_activations` (on
    its ONNX export, node-name ``prefixes``), checking that it still computes the same outputs."""
    import tempfile

    import onnx

    from retinakit.onnx.equalise import equalise_activations

    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(model, Path(tmp) / "model.onnx")
        graph = onnx.load(str(Path(tmp) / "model.onnx"))
    feeds = [{"image": x.numpy()} for x in images]
    graph, scales = equalise_activations(graph, feeds, prefixes, strength)
    with torch.no_grad():
        before = model(images[0])
        load_folded(model, graph)
        after = model(images[0])
    for field in ("logits", "box_deltas", "landmark_deltas"):
        a, b = getattr(before, field), getattr(after, field)
        if not torch.allclose(a, b, atol=1e-2, rtol=1e-3):
            raise ValueError(f"equalisation changed {field} by {(a - b).abs().max().item():.3g}")
    print(f"equalised {len(scales)} activations (smallest scale {min(float(s.min()) for s in scales.values()):.3g})")


def distill_loss(student, teacher) -> tuple[torch.Tensor, dict[str, float]]:
    """KL of the class probabilities + face-weighted squared box/landmark differences (module doc)."""
    p_t = teacher.logits.float().softmax(-1)
    log_s = student.logits.float().log_softmax(-1)
    face = p_t[..., 1]
    count = face.sum().clamp(min=1.0)
    kl = (p_t * (p_t.clamp(min=1e-8).log() - log_s)).sum(-1).sum() / count
    box = (face * ((student.box_deltas - teacher.box_deltas) ** 2).sum(-1)).sum() / count
    lmk = (face * ((student.landmark_deltas - teacher.landmark_deltas) ** 2).sum(-1)).sum() / count
    total = kl + box + lmk
    return total, {"kl": kl.item(), "box": box.item(), "lmk": lmk.item()}


def record_fine_tuning(path: Path, args: argparse.Namespace, images: list[Path]) -> None:
    """Add how the weights were fine-tuned (this script's options and images) to the int8 model's recipe."""
    import json

    import onnx

    from retinakit.inference.backends import QUANTIZATION_KEY

    model = onnx.load(str(path))
    entry = next(p for p in model.metadata_props if p.key == QUANTIZATION_KEY)
    recipe = json.loads(entry.value)
    options = {k: v for k, v in vars(args).items() if k not in ("images", "out")}
    recipe["fine_tuning"] = {
        "tool": "scripts/qat_int8.py (quantisation-aware distillation from the float built-in model, no labels)",
        "options": options,
        "images": sorted({f"{p.parent.name}/{p.name}" for p in images}),
    }
    entry.value = json.dumps(recipe)
    onnx.save(model, str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", required=True, help="training images (a folder)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--train-images", type=int, default=400)
    parser.add_argument("--calibration-images", type=int, default=16)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--crop", type=int, default=448, help="each sample is a random crop of this size")
    parser.add_argument("--min-scale", type=float, default=0.4, help="crops come from images resized by [this, 1]")
    parser.add_argument("--simulate", default="backbone,fpn,context", help="module prefixes quantised in training")
    parser.add_argument("--train", default="backbone,fpn,context,heads", help="module prefixes that learn")
    parser.add_argument("--keep-float", default="/heads", help="node prefixes the int8 ONNX model keeps in fp32")
    parser.add_argument("--equalise", default="", help="ONNX node prefixes equalised first (e.g. /backbone/stage1)")
    parser.add_argument("--equalise-strength", type=float, default=0.5)
    parser.add_argument("--remeasure", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    teacher = load_model(builtin_weights("safetensors"))
    student = load_model(builtin_weights("safetensors"))
    config = teacher.config
    every = list_images([args.images])
    calibration_paths = pick_calibration(every, args.calibration_images, args.seed)
    calibration = [
        torch.from_numpy(make_batch([resize(read_image(p), ResizePolicy(max_side=640))[0]], config.input))
        for p in calibration_paths
    ]
    photo_paths = pick_calibration(every, args.train_images, args.seed + 1)
    photos = [read_image(p) for p in photo_paths]
    for p in teacher.parameters():
        p.requires_grad_(False)
    trainable = tuple(s + "." for s in args.train.split(","))
    for name, p in student.named_parameters():
        p.requires_grad_(name.startswith(trainable))

    if args.equalise:
        equalise_model(student, calibration, args.equalise.split(","), args.equalise_strength)
    fake = FakeQuantActivations(quant_points(student, args.simulate.split(",")))
    fake.measure(student, calibration, args.seed)
    scopes = tuple(s + "." for s in args.simulate.split(","))
    convs = [m for n, m in student.named_modules() if n.startswith(scopes) and isinstance(m, nn.Conv2d)]
    for conv in convs:
        parametrize.register_parametrization(conv, "weight", FakeQuantWeight())
    print(f"{len(fake.points)} quantised activations, {len(convs)} quantised convolutions", flush=True)

    def sample() -> torch.Tensor:
        import cv2

        batch = []
        for _ in range(args.batch):
            photo = photos[int(rng.integers(0, len(photos)))]
            scale = float(rng.uniform(args.min_scale, 1.0))
            h, w = photo.shape[:2]
            image = cv2.resize(photo, (max(args.crop, round(w * scale)), max(args.crop, round(h * scale))))
            top = int(rng.integers(0, image.shape[0] - args.crop + 1))
            left = int(rng.integers(0, image.shape[1] - args.crop + 1))
            crop = image[top : top + args.crop, left : left + args.crop]
            batch.append(crop[:, ::-1] if rng.random() < 0.5 else crop)
        return torch.from_numpy(make_batch([np.ascontiguousarray(c) for c in batch], config.input))

    params = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.steps)
    tick = time.perf_counter()
    running: dict[str, float] = {}
    for step in range(args.steps):
        if step and step % args.remeasure == 0:
            fake.measure(student, calibration, args.seed)
        x = sample()
        with torch.no_grad():
            target = teacher(x)
        loss, parts = distill_loss(student(x), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        for k, v in parts.items():
            running[k] = 0.95 * running.get(k, v) + 0.05 * v
        if step % 50 == 0 or step == args.steps - 1:
            shown = "  ".join(f"{k} {v:.4f}" for k, v in running.items())
            print(f"step {step:5d}  {shown}  {time.perf_counter() - tick:.0f} s", flush=True)

    for conv in convs:
        parametrize.remove_parametrizations(conv, "weight", leave_parametrized=False)
    clean = load_model(builtin_weights("safetensors"))
    clean.load_state_dict(student.state_dict())
    save_safetensors(clean, out / "model.safetensors")
    export_onnx(clean.eval(), out / "model.onnx")
    keep = tuple(p for p in args.keep_float.split(",") if p)
    quantize_onnx(out / "model.onnx", out / "model_int8.onnx", every, None, QuantizeConfig(keep_float=keep))
    record_fine_tuning(out / "model_int8.onnx", args, photo_paths + calibration_paths)
    print(f"wrote {out / 'model_int8.onnx'} (fp32: {', '.join(keep) or 'nothing'})")


if __name__ == "__main__":
    main()
