"""Train every preset for a few hundred steps on the WIDER training subset and print the figures.

    python -m benchmarks.training.gpu_check [--shared ../shared] [--steps 200] [--budget 540] [--dry]

On a CUDA GPU: mixed precision, the real training pipeline (:class:`retinakit.training.loop.Trainer`:
augmentation in worker processes, matching, OHEM loss, SGD), per preset the images/s after the
first 10 steps, the peak GPU memory (``torch.cuda.max_memory_allocated``) and the loss curve
(mean of every 10 steps). Each preset gets an equal share of ``--budget`` seconds and stops early
when it runs out, so the whole check ends in time. ``--dry`` (or no GPU): 3 steps per preset at
160 px on the CPU, to check that the script and every preset run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from benchmarks.harness.data import SHARED

BATCH = {"resnet152-paper": 8, "resnet50": 16, "yakhyo-resnet50": 16}  # per-GPU batch; others 32


def check_preset(name: str, shared: Path, steps: int, budget: float, device: str, size: int) -> dict[str, object]:
    from retinakit.training.distributed import Runtime
    from retinakit.training.loop import TrainConfig, Trainer

    root = shared / "data" / "widerface" / "train-subset"
    cuda = device == "cuda"
    config = TrainConfig(
        labels=str(root / "label.txt"),
        images=str(root / "images"),
        out=f"/tmp/gpu_check/{name}",
        model=name,
        loss="paper",
        epochs=1000,  # the schedule: warm-up over the first epochs' steps, no decay within this check
        batch_size=BATCH.get(name, 32) if cuda else 2,
        image_size=size,
        workers=8 if cuda else 0,
        device=device,
        amp=cuda,
    )
    trainer = Trainer(config, runtime=Runtime(torch.device(device)))
    trainer.build()
    trainer.set_train_mode()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    losses: list[float] = []
    start = time.perf_counter()
    timed_from, timed_images = None, 0
    epoch = 0
    while len(losses) < steps and time.perf_counter() - start < budget:
        trainer.dataset.set_epoch(epoch)
        trainer.sampler.set_epoch(epoch)
        for images, targets in trainer.loader:
            out = trainer.train_step(images, targets)
            losses.append(out["total"].item())  # .item() synchronises, so the timing is honest
            if len(losses) == 10:
                timed_from = time.perf_counter()
            elif len(losses) > 10:
                timed_images += len(images)
            if len(losses) >= steps or time.perf_counter() - start >= budget:
                break
        epoch += 1
    elapsed = time.perf_counter() - timed_from if timed_from else float("nan")
    curve = [round(sum(losses[i : i + 10]) / len(losses[i : i + 10]), 3) for i in range(0, len(losses), 10)]
    return {
        "preset": name,
        "deformable": trainer.model_config.context_conv == "deformable",
        "batch": config.batch_size,
        "steps": len(losses),
        "images_per_s": round(timed_images / elapsed, 1) if timed_images else None,
        "peak_gpu_MiB": round(torch.cuda.max_memory_allocated() / 2**20) if cuda else None,
        "loss_every_10_steps": curve,
        "seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    from retinakit.config import PRESETS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--budget", type=float, default=540.0, help="seconds for all presets together")
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--dry", action="store_true", help="3 CPU steps per preset at 160 px")
    args = parser.parse_args()
    cuda = torch.cuda.is_available() and not args.dry
    device, steps, size = ("cuda", args.steps, 640) if cuda else ("cpu", 3, 160)
    names = [n for n in args.presets.split(",") if n]
    print(f"device: {torch.cuda.get_device_name() if cuda else 'cpu (dry run)'}, torch {torch.__version__}")
    begin = time.perf_counter()
    for i, name in enumerate(names):
        share = (args.budget - (time.perf_counter() - begin)) / (len(names) - i)
        print(json.dumps(check_preset(name, args.shared, steps, max(share, 5.0), device, size)), flush=True)
    print(f"total {time.perf_counter() - begin:.0f} s")


if __name__ == "__main__":
    main()
