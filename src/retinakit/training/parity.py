"""First-step gradient parity: 2 processes (gloo) x B images against 1 process x 2B, same images.

The check of the design in :mod:`retinakit.training.distributed` on real data: the gradients of
the first SGD step of two processes, averaged by DDP, must equal those of one process with the
global batch. Used by ``tests/test_distributed.py`` and ``benchmarks/training/ddp_parity.py``.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import torch

from retinakit.training.distributed import Runtime, mean_over_processes
from retinakit.training.loop import TrainConfig, Trainer


@dataclass(frozen=True)
class Parity:
    """Max |gradient difference| and max |gradient| over all parameters; the losses of both runs."""

    max_diff: float
    max_grad: float
    two_losses: dict[str, float]
    one_losses: dict[str, float]


def first_images_labels(root: Path, out: Path, n: int) -> Path:
    """A ``label.txt`` in ``out`` with the first ``n`` images of ``root/label.txt`` that have faces."""
    lines, kept, faces = [], 0, 0
    for line in (root / "label.txt").read_text().splitlines():
        if line.startswith("#"):
            if kept == n and faces:
                break
            kept, faces = kept + 1, 0
        else:
            faces += 1
        lines.append(line)
    path = out / "label.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def small_config(labels: Path, images: Path, out: Path, batch_size: int) -> TrainConfig:
    """160 px, BatchNorm frozen (per-process statistics differ by design), no workers, CPU."""
    return TrainConfig(
        labels=str(labels),
        images=str(images),
        out=str(out),
        batch_size=batch_size,
        image_size=160,
        workers=0,
        device="cpu",
        freeze_bn=True,
        lr=1e-3,
        warmup_lr=1e-3,
    )


def first_step(config: TrainConfig, runtime: Runtime) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Gradients of every parameter and the (process-averaged) losses after one training step."""
    trainer = Trainer(config, runtime=runtime)
    trainer.build()
    trainer.set_train_mode()
    images, targets = next(iter(trainer.loader))
    losses = trainer.train_step(images, targets)
    grads = {name: p.grad.detach().clone() for name, p in trainer.model.named_parameters() if p.grad is not None}
    values = mean_over_processes({k: v.item() for k, v in losses.items()})
    trainer.finish()
    return grads, values


def _worker(rank: int, port: int, config: TrainConfig, result: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    grads, values = first_step(config, Runtime(torch.device("cpu"), True, rank, 2))
    if rank == 0:
        torch.save({"grads": grads, "losses": values}, result)


def parity(root: Path, workdir: Path) -> Parity:
    """2 processes x 2 images against 1 process x 4 images of the training set in ``root``."""
    labels = first_images_labels(root, workdir, 4)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    two = small_config(labels, root / "images", workdir / "two", batch_size=2)
    torch.multiprocessing.spawn(_worker, args=(port, two, str(workdir / "two.pt")), nprocs=2, join=True)
    got = torch.load(workdir / "two.pt")
    torch.set_num_threads(1)
    one = small_config(labels, root / "images", workdir / "one", batch_size=4)
    want_grads, want_losses = first_step(one, Runtime(torch.device("cpu")))
    if got["grads"].keys() != want_grads.keys():
        raise RuntimeError("the two runs have different parameters")
    diff = max((got["grads"][k] - g).abs().max().item() for k, g in want_grads.items())
    scale = max(g.abs().max().item() for g in want_grads.values())
    return Parity(diff, scale, got["losses"], want_losses)
