"""The heavy model with deformable convolutions on the CPU: per-step cost and a two-image overfit.

    python benchmarks/heavy_model.py [--shared ../shared] [--steps 100] [--size 320]
        [--overfit-preset resnet50] [--cost-presets resnet152-paper,resnet152-paper:standard]

1. Cost: one SGD step (forward, loss, backward, update) at 640x640, batch 1, for each preset in
   ``--cost-presets`` (``NAME:standard`` = the same network without DCN, the peer), each in a
   fresh process so its peak resident memory (ru_maxrss) is its own; mean of 3 steps after 1.
2. Overfit: random initialisation, DCN on, two real WIDER training photos, SGD (lr 0.01,
   momentum 0.9, biubug6 loss) for ``--steps`` steps; then save (safetensors), load, export to
   ONNX, and detect on both images with the torch and ONNX Runtime backends: every ground-truth
   face must be found (IoU >= 0.5, score > 0.5), as the light model's overfit test requires.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

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
    from retinakit.inference.anchors import generate_anchors
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


def overfit(shared: Path, preset: str = "resnet50", steps: int = 100, size: int = 320) -> dict[str, object]:
    """Train ``preset`` with DCN from random init on two real photos, then save/load/export/detect."""
    from retinakit import Detector
    from retinakit.inference.anchors import generate_anchors
    from retinakit.inference.backends import TorchBackend
    from retinakit.inference.boxes import box_iou
    from retinakit.io.annotations import parse_label_txt
    from retinakit.models import build_model
    from retinakit.models.checkpoints import load_model, save_safetensors
    from retinakit.models.dcn import DeformConv2d
    from retinakit.models.export import export_onnx
    from retinakit.training.augment import AugmentConfig
    from retinakit.training.dataset import FaceDataset, collate
    from retinakit.training.loss import MultiTaskLoss, get_loss_preset

    root = shared / "data" / "widerface" / "train-subset"
    anns = [a for a in parse_label_txt(root / "label.txt") if a.image in TWO_IMAGES]
    config = _config(preset)
    aug = AugmentConfig(size=size, crop=False, flip=False, photometric=False)
    images, targets = collate([*FaceDataset(anns, root / "images", aug, config.input)])
    torch.manual_seed(0)
    model = build_model(config).train()
    num_dcn = sum(isinstance(m, DeformConv2d) for m in model.modules())
    loss_fn = MultiTaskLoss(get_loss_preset("biubug6"), config.anchors.variances)
    anchors = torch.from_numpy(generate_anchors(config.anchors, size, size).copy())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    history, tick = [], time.perf_counter()
    for _ in range(steps):
        losses = loss_fn(model(images), targets, anchors)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        history.append(losses["total"].item())
    seconds = (time.perf_counter() - tick) / steps
    offsets = max(m.offset_mask.weight.abs().max().item() for m in model.modules() if isinstance(m, DeformConv2d))
    with tempfile.TemporaryDirectory() as tmp:
        save_safetensors(model.eval(), Path(tmp) / "heavy.safetensors")
        loaded = load_model(Path(tmp) / "heavy.safetensors")
        export_onnx(loaded, Path(tmp) / "heavy.onnx")
        detectors = {
            "torch": Detector(score_threshold=0.5, backend_instance=TorchBackend(model=loaded)),
            "onnx": Detector(score_threshold=0.5, weights=str(Path(tmp) / "heavy.onnx")),
        }
        mean = np.array(config.input.mean, np.float32)
        found: dict[str, list[str]] = {}
        for name, detector in detectors.items():
            found[name] = []
            for image, target in zip(images, targets, strict=True):
                bgr = np.clip(image.numpy().transpose(1, 2, 0) + mean, 0, 255).astype(np.uint8)
                faces = detector.detect_bgr([bgr])[0]
                hit = (box_iou(target["boxes"].numpy(), faces.boxes).max(axis=1) >= 0.5) if len(faces) else []
                found[name].append(f"{int(np.sum(hit))}/{len(target['boxes'])}")
    return {
        "preset": preset,
        "deformable_layers": num_dcn,
        "max_abs_offset_weight": round(offsets, 4),
        "size": size,
        "steps": steps,
        "loss_first": round(history[0], 3),
        "loss_last": round(history[-1], 4),
        "s_per_step": round(seconds, 2),
        "faces_found": found,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--overfit-preset", default="resnet50")
    parser.add_argument("--cost-presets", default="resnet152-paper,resnet152-paper:standard")
    parser.add_argument("--cost-only", metavar="PRESET", help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.cost_only:
        print(json.dumps(step_cost(args.cost_only)))
        return
    for spec in filter(None, args.cost_presets.split(",")):
        out = subprocess.run(
            [sys.executable, __file__, "--cost-only", spec], capture_output=True, text=True, check=True
        )
        print("cost 640x640 batch 1:", out.stdout.strip(), flush=True)
    if args.steps:
        print("overfit:", json.dumps(overfit(args.shared, args.overfit_preset, args.steps, args.size)), flush=True)


if __name__ == "__main__":
    main()
