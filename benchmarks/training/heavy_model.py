"""The heavy model with deformable convolutions on the CPU: per-step cost and a two-image overfit.

    python -m benchmarks.training.heavy_model [--shared ../shared] [--steps 300] [--size 320] [--lr 0.01]
        [--offset-lr-mult 0.1] [--check-every 10] [--overfit-preset resnet50] [--first-step]
        [--cost-presets resnet152-paper,resnet152-paper:standard]

1. Cost: one SGD step (forward, loss, backward, update) at 640x640, batch 1, for each preset in
   ``--cost-presets`` (``NAME:standard`` = the same network without DCN, the peer), each in a
   fresh process so its peak resident memory (ru_maxrss) is its own; mean of 3 steps after 1.
2. ``--first-step``: gradients at step 1 on the two photos and how far one plain SGD step moves
   the DCN sampling taps (pixels) at the full and at the offset learning rate.
3. Overfit: random initialisation, DCN on, two real WIDER training photos resized to ``--size``,
   SGD (lr 0.01, momentum 0.9, no weight decay, biubug6 loss) with the trainer's parameter groups
   (offset/mask predictors at ``--offset-lr-mult`` x lr, default ``OFFSET_LR_MULT`` = 0.1); every
   ``--check-every`` steps the ground-truth faces are looked for (IoU >= 0.5, score > 0.5, eval
   mode) and training stops once all are found (at most ``--steps``); then save (safetensors),
   load, export to ONNX, and detect on both images with the torch and ONNX Runtime backends.
   ``peak_rss_MiB`` there is the whole process's peak (320 px, batch 2).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from benchmarks.harness.data import SHARED
from benchmarks.harness.fresh import run_fresh

TWO_IMAGES = (
    "1--Handshaking/1_Handshaking_Handshaking_1_483.jpg",
    "1--Handshaking/1_Handshaking_Handshaking_1_666.jpg",
)


def _config(spec: str):
    from retinakit.config import get_preset

    name, _, kind = spec.partition(":")
    return replace(get_preset(name), context_conv=kind or "deformable")


def step_cost(spec: str, size: int = 640, steps: int = 3) -> dict[str, float]:
    """Seconds per SGD step and peak RSS (MiB) of this process for one preset at ``size``, batch 1."""
    from retinakit.core.anchors import generate_anchors
    from retinakit.models import build_model
    from retinakit.training.loss import MultiTaskLoss, get_loss_preset

    config = _config(spec)
    torch.manual_seed(0)
    model = build_model(config).train()
    loss_fn = MultiTaskLoss(get_loss_preset("paper"), config.anchors.variances)
    anchors = torch.from_numpy(generate_anchors(config.anchors, size, size).copy())
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    images = torch.randn(1, 3, size, size) * 50
    target = {
        "boxes": torch.tensor([[100.0, 120.0, 180.0, 220.0], [300.0, 300.0, 332.0, 340.0]]),
        "landmarks": torch.zeros(2, 5, 2),
        "has_landmarks": torch.tensor([False, False]),
    }
    times = []
    for _ in range(steps + 1):
        tick = time.perf_counter()
        losses = loss_fn(model(images), [target], anchors)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        times.append(time.perf_counter() - tick)
    return {
        "preset": spec,
        "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "anchors": int(anchors.shape[0]),
        "s_per_step": round(float(np.mean(times[1:])), 2),
        "peak_rss_MiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def _two_images(shared: Path, config, size: int):
    from retinakit.io.annotations import parse_label_txt
    from retinakit.training.augment import AugmentConfig
    from retinakit.training.dataset import FaceDataset, collate

    root = shared / "data" / "widerface" / "train-subset"
    anns = [a for a in parse_label_txt(root / "label.txt") if a.image in TWO_IMAGES]
    aug = AugmentConfig(size=size, crop=False, flip=False, photometric=False)
    return collate([*FaceDataset(anns, root / "images", aug, config.input)])


def _recall(model, config, images, targets, weights: str | None = None) -> list[str]:
    """Ground-truth faces found (IoU >= 0.5, score > 0.5) per image, as ``found/total``."""
    from retinakit import Detector
    from retinakit.core.boxes import box_iou
    from retinakit.models.backend import TorchBackend

    was_training = model.training
    model.eval()
    if weights is None:
        detector = Detector(score_threshold=0.5, backend_instance=TorchBackend(model=model))
    else:
        detector = Detector(score_threshold=0.5, weights=weights)
    mean = np.array(config.input.mean, np.float32)
    found = []
    for image, target in zip(images, targets, strict=True):
        bgr = np.clip(image.numpy().transpose(1, 2, 0) + mean, 0, 255).astype(np.uint8)
        faces = detector.detect_bgr([bgr])[0]
        hit = (box_iou(target["boxes"].numpy(), faces.boxes).max(axis=1) >= 0.5) if len(faces) else []
        found.append(f"{int(np.sum(hit))}/{len(target['boxes'])}")
    model.train(was_training)
    return found


def _all_found(found: list[str]) -> bool:
    return all(a == b for a, b in (f.split("/") for f in found))


def first_step(shared: Path, preset: str = "resnet50", size: int = 320, lr: float = 0.01) -> dict[str, object]:
    """Why offsets run away: gradients at step 1 (random init, the two photos) and how far one
    plain SGD step at ``lr`` (no momentum yet) moves the sampling taps, at 1x and at
    ``OFFSET_LR_MULT`` times the rate."""
    from retinakit.core.anchors import generate_anchors
    from retinakit.models import build_model
    from retinakit.models.dcn import OFFSET_LR_MULT, DeformConv2d
    from retinakit.training.loss import MultiTaskLoss, get_loss_preset

    config = _config(preset)
    images, targets = _two_images(shared, config, size)
    torch.manual_seed(0)
    model = build_model(config).train()
    loss_fn = MultiTaskLoss(get_loss_preset("biubug6"), config.anchors.variances)
    anchors = torch.from_numpy(generate_anchors(config.anchors, size, size).copy())
    inputs: dict[str, torch.Tensor] = {}
    layers = {name: m for name, m in model.named_modules() if isinstance(m, DeformConv2d)}
    hooks = [
        m.offset_mask.register_forward_hook(lambda mod, args, out, name=name: inputs.__setitem__(name, args[0]))
        for name, m in layers.items()
    ]
    loss_fn(model(images), targets, anchors)["total"].backward()
    for h in hooks:
        h.remove()
    main = [p.grad for n, p in model.named_parameters() if p.ndim > 1 and ".offset_mask." not in n]
    rows = []
    for name, m in layers.items():
        w, g, x = m.offset_mask.weight, m.offset_mask.weight.grad, inputs[name].detach()
        n_off = 2 * w.shape[0] // 3
        with torch.no_grad():  # offsets after one step W = -lr * grad (the predictor starts at zero)
            step = torch.nn.functional.conv2d(
                x, -lr * g, -lr * m.offset_mask.bias.grad, m.stride, m.padding, m.dilation
            )[:, :n_off]
        rows.append(
            {
                "layer": name,
                "offset_grad_max": float(g.abs().max()),
                "weight_grad_max": float(m.weight.grad.abs().max()),
                "input_mean": round(float(x.mean()), 3),
                "input_min": round(float(x.min()), 3),
                "taps_moved_px_max": round(float(step.abs().max()), 2),
                "taps_moved_px_mean": round(float(step.abs().mean()), 3),
            }
        )
    return {
        "preset": preset,
        "size": size,
        "lr": lr,
        "main_weight_grad_max": float(max(g.abs().max() for g in main)),
        "offset_grad_max": max(r["offset_grad_max"] for r in rows),
        "taps_moved_px_max_at_1x": max(r["taps_moved_px_max"] for r in rows),
        f"taps_moved_px_max_at_{OFFSET_LR_MULT}x": round(OFFSET_LR_MULT * max(r["taps_moved_px_max"] for r in rows), 2),
        "median_layer_taps_moved_px_mean_at_1x": float(np.median([r["taps_moved_px_mean"] for r in rows])),
        "layers": rows,
    }


def overfit(
    shared: Path,
    preset: str = "resnet50",
    steps: int = 100,
    size: int = 320,
    lr: float = 0.01,
    offset_lr_mult: float | None = None,
    check_every: int = 10,
    export: bool = True,
) -> dict[str, object]:
    """Train ``preset`` with DCN from random init on two real photos with the trainer's parameter
    groups (offsets at ``offset_lr_mult``), checking recall every ``check_every`` steps and
    stopping once every face is found (or after ``steps``); then save/load/export/detect."""
    from retinakit.core.anchors import generate_anchors
    from retinakit.models import build_model
    from retinakit.models.checkpoints import load_model, save_safetensors
    from retinakit.models.dcn import OFFSET_LR_MULT, DeformConv2d
    from retinakit.models.export import export_onnx
    from retinakit.training.loop import parameter_groups
    from retinakit.training.loss import MultiTaskLoss, get_loss_preset

    mult = OFFSET_LR_MULT if offset_lr_mult is None else offset_lr_mult
    config = _config(preset)
    images, targets = _two_images(shared, config, size)
    torch.manual_seed(0)
    model = build_model(config).train()
    num_dcn = sum(isinstance(m, DeformConv2d) for m in model.modules())
    loss_fn = MultiTaskLoss(get_loss_preset("biubug6"), config.anchors.variances)
    anchors = torch.from_numpy(generate_anchors(config.anchors, size, size).copy())
    optimizer = torch.optim.SGD(parameter_groups(model, lr, 0.0, mult), lr=lr, momentum=0.9)
    history: list[float] = []
    checks: dict[int, list[str]] = {}
    train_seconds, found_at = 0.0, None
    for step in range(1, steps + 1):
        tick = time.perf_counter()
        losses = loss_fn(model(images), targets, anchors)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        train_seconds += time.perf_counter() - tick
        history.append(losses["total"].item())
        if check_every and (step % check_every == 0 or step == steps):
            checks[step] = _recall(model, config, images, targets)
            if _all_found(checks[step]):
                found_at = step
                break
    done = len(history)
    dcn = [m for m in model.modules() if isinstance(m, DeformConv2d)]
    offsets = max((m.offset_mask.weight.abs().max().item() for m in dcn), default=0.0)
    with torch.no_grad():  # predicted tap shifts (px) on the training images, eval mode, per layer
        shifts: list[torch.Tensor] = [torch.zeros(1)] if not dcn else []
        hooks = [
            m.offset_mask.register_forward_hook(
                lambda mod, args, out: shifts.append(out[:, : 2 * out.shape[1] // 3].abs().flatten())
            )
            for m in dcn
        ]
        model.eval()(images)
        for h in hooks:
            h.remove()
    found: dict[str, list[str]] = {"torch": _recall(model, config, images, targets)}
    if export:
        with tempfile.TemporaryDirectory() as tmp:
            save_safetensors(model.eval(), Path(tmp) / "heavy.safetensors")
            loaded = load_model(Path(tmp) / "heavy.safetensors")
            export_onnx(loaded, Path(tmp) / "heavy.onnx")
            found["torch_reloaded"] = _recall(loaded, config, images, targets)
            found["onnx"] = _recall(loaded, config, images, targets, weights=str(Path(tmp) / "heavy.onnx"))
    return {
        "preset": preset,
        "deformable_layers": num_dcn,
        "size": size,
        "lr": lr,
        "offset_lr_mult": mult,
        "steps": done,
        "all_faces_found_at_step": found_at,
        "loss_first": round(history[0], 3),
        "loss_last": round(history[-1], 4),
        "loss_every_10": [round(v, 3) for v in history[::10]],
        "s_per_step": round(train_seconds / done, 2),
        "peak_rss_MiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "max_abs_offset_weight": round(offsets, 4),
        "tap_shift_px_max": round(max(float(v.max()) for v in shifts), 3),
        "tap_shift_px_mean": round(float(torch.cat(shifts).mean()), 3),
        "tap_shift_px_median_of_layer_means": round(float(np.median([float(v.mean()) for v in shifts])), 3),
        "recall_checks": checks,
        "faces_found": found,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--steps", type=int, default=300, help="most overfit steps (0: no overfit)")
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--offset-lr-mult", type=float, help="offset/mask lr multiplier (default OFFSET_LR_MULT)")
    parser.add_argument("--check-every", type=int, default=10, help="recall check interval; stop when all found")
    parser.add_argument("--overfit-preset", default="resnet50")
    parser.add_argument("--cost-presets", default="resnet152-paper,resnet152-paper:standard")
    parser.add_argument("--first-step", action="store_true", help="print the step-1 gradient/offset report")
    args = parser.parse_args()
    for spec in filter(None, args.cost_presets.split(",")):
        cost = run_fresh("benchmarks.training.heavy_model:step_cost", {"spec": spec})
        print("cost 640x640 batch 1:", json.dumps(cost), flush=True)
    if args.first_step:
        report = first_step(args.shared, args.overfit_preset, args.size, args.lr)
        print("first step:", json.dumps(report), flush=True)
    if args.steps:
        result = overfit(
            args.shared, args.overfit_preset, args.steps, args.size, args.lr, args.offset_lr_mult, args.check_every
        )
        print("overfit:", json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
