"""Quantisation-aware distillation of backbone stage 1, so that it can run in int8 (experiment for issue #14).

    PYTHONPATH=src python scripts/distill_stage1.py --images ../shared/data/widerface/train-subset/images \
        --out runs/distill_stage1

The student is the built-in model with fake int8 quantisation on every activation of backbone
stage 1 that the int8 ONNX model quantises (the input, each convolution's output, each
LeakyReLU's output: per-tensor uint8, MSE ranges measured once on calibration images) and on its
weights (per-channel symmetric int8). Only stage 1's parameters train; the loss is the mean squared
difference (per output, over its variance) between the student's raw outputs and the float built-in
model's on a random crop of a training image (no labels, so the
network keeps the float model's behaviour instead of drifting towards a small training set).
Writes ``model.safetensors`` (float weights), ``model.onnx`` and ``model_int8.onnx`` (stage 1 int8,
heads fp32) into ``--out``. Training images only; never val-dev.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from retinakit.config import ModelConfig
from retinakit.inference.backends import builtin_weights
from retinakit.inference.preprocess import ResizePolicy, make_batch, resize
from retinakit.io.images import read_image
from retinakit.io.inputs import list_images
from retinakit.models.checkpoints import load_model, save_safetensors
from retinakit.models.export import export_onnx
from retinakit.models.quantize import QuantizeConfig, mse_range, pick_calibration, quantize_onnx


class FakeQuantWeight(nn.Module):
    """Per-output-channel symmetric int8 fake quantisation (straight-through gradient)."""

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        scale = w.detach().abs().amax(dim=(1, 2, 3)).clamp(min=1e-8) / 127
        zero = torch.zeros_like(scale, dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, -127, 127)


def stage1_points(model: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """(name, module, where) of every tensor the int8 model quantises in stage 1: 'input' or 'output'."""
    stage1 = model.backbone.stage1
    points: list[tuple[str, nn.Module, str]] = [("input", stage1[0][0], "input")]
    for b, block in enumerate(stage1):
        for i, layer in enumerate(block):
            if isinstance(layer, nn.BatchNorm2d | nn.LeakyReLU):
                points.append((f"stage1.{b}.{i}", layer, "output"))
    return points


def load_images(paths: list[Path], max_side: int, config: ModelConfig) -> list[torch.Tensor]:
    out = []
    for path in paths:
        image, _ = resize(read_image(path), ResizePolicy(max_side=max_side))
        out.append(torch.from_numpy(make_batch([image], config.input)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", required=True, help="training images (a folder)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--train-images", type=int, default=128)
    parser.add_argument("--calibration-images", type=int, default=16)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--max-side", type=int, default=640)
    parser.add_argument("--crop", type=int, default=320, help="each step trains on a random crop of this size")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    teacher = load_model(builtin_weights("safetensors"))
    student = load_model(builtin_weights("safetensors"))
    paths = pick_calibration(list_images([args.images]), args.train_images, args.seed)
    images = load_images(paths, args.max_side, teacher.config)
    for p in teacher.parameters():
        p.requires_grad_(False)
    for name, p in student.named_parameters():
        p.requires_grad_(name.startswith("backbone.stage1."))

    # activation ranges of the float stage 1 on the calibration images (as the int8 model will)
    points = stage1_points(student)
    samples: dict[str, list[np.ndarray]] = {name: [] for name, _, _ in points}
    rng = np.random.default_rng(args.seed)
    handles = []
    for name, module, where in points:

        def grab(x: torch.Tensor, name: str = name) -> None:
            flat = x.detach().reshape(-1).numpy()
            samples[name].append(np.concatenate([flat[rng.integers(0, flat.size, 4096)], [flat.min(), flat.max()]]))

        if where == "input":
            handles.append(module.register_forward_pre_hook(lambda m, a, grab=grab: grab(a[0])))
        else:
            handles.append(module.register_forward_hook(lambda m, a, y, grab=grab: grab(y)))
    with torch.no_grad():
        for x in images[: args.calibration_images]:
            student(x)
    for h in handles:
        h.remove()
    quant: dict[str, tuple[float, int]] = {}
    for name, parts in samples.items():
        lo, hi = mse_range(np.concatenate(parts))
        scale = (hi - lo) / 255
        quant[name] = (scale, round(-lo / scale))

    for name, module, where in points:
        scale, zero = quant[name]

        def fq(x: torch.Tensor, scale: float = scale, zero: int = zero) -> torch.Tensor:
            return torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, 255)

        if where == "input":
            module.register_forward_pre_hook(lambda m, a, fq=fq: (fq(a[0]),))
        else:
            module.register_forward_hook(lambda m, a, y, fq=fq: fq(y))
    convs = [m for m in student.backbone.stage1.modules() if isinstance(m, nn.Conv2d)]
    for conv in convs:
        parametrize.register_parametrization(conv, "weight", FakeQuantWeight())

    fields = ("box_deltas", "logits", "landmark_deltas")
    with torch.no_grad():
        whole = [teacher(x) for x in images[: args.calibration_images]]
    spread = [torch.stack([getattr(t, f).float().var() for t in whole]).mean() for f in fields]
    params = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.steps)
    tick = time.perf_counter()
    for step in range(args.steps):
        x = images[int(rng.integers(0, len(images)))]
        h, w = x.shape[2:]
        top, left = int(rng.integers(0, max(h - args.crop, 0) + 1)), int(rng.integers(0, max(w - args.crop, 0) + 1))
        x = x[:, :, top : top + args.crop, left : left + args.crop]
        with torch.no_grad():
            target = teacher(x)
        raw = student(x)
        loss = torch.stack(
            [((getattr(raw, f) - getattr(target, f)) ** 2).mean() / s for f, s in zip(fields, spread, strict=True)]
        ).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 25 == 0 or step == args.steps - 1:
            print(f"step {step:4d} loss {loss.item():.5f}  {time.perf_counter() - tick:.0f} s", flush=True)

    for conv in convs:
        parametrize.remove_parametrizations(conv, "weight", leave_parametrized=False)
    clean = load_model(builtin_weights("safetensors"))
    clean.load_state_dict(student.state_dict())
    save_safetensors(clean, out / "model.safetensors")
    export_onnx(clean.eval(), out / "model.onnx")
    options = QuantizeConfig(keep_float=("/heads",))
    quantize_onnx(out / "model.onnx", out / "model_int8.onnx", list_images([args.images]), None, options)
    print(f"wrote {out / 'model_int8.onnx'} (stage 1 int8, heads fp32)")


if __name__ == "__main__":
    main()
