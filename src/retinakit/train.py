"""Training loop (``retinakit train``): SGD with warm-up and step decay, checkpoints and resume,
JSON-lines log, periodic WIDER evaluation, worker processes, CPU or CUDA (AMP; DDP via torchrun).

The paper's schedule: lr 1e-3 rising linearly to 1e-2 over 5 epochs, divided by 10 at epochs 55
and 68, stop at 80. With fewer ``epochs`` the warm-up and milestones scale proportionally
unless given explicitly.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from retinakit.anchors import generate_anchors
from retinakit.checkpoints import read_weights, save_safetensors
from retinakit.config import get_preset
from retinakit.data.augment import AugmentConfig
from retinakit.data.dataset import FaceDataset, collate, load_annotations
from retinakit.io_utils import Progress, no_progress
from retinakit.loss import MultiTaskLoss, get_loss_preset
from retinakit.models import RetinaFace, build_model

PAPER_EPOCHS = 80


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; ``retinakit train`` flags map onto these fields.

    ``init``: ``none`` (random), ``builtin`` (the built-in weights), ``backbone:PATH`` (ImageNet
    backbone, e.g. biubug6's ``mobilenetV1X0.25_pretrain.tar``) or ``checkpoint:PATH``.
    ``milestones`` / ``warmup_epochs`` left as None scale the paper's 55/68 and 5 of 80 epochs.
    ``val_*`` and ``eval_every``: WIDER evaluation every N epochs (0: never). ``freeze_bn``: keep
    BatchNorm statistics fixed (small batches may benefit). ``unfold_batches``: training batches
    used to re-parameterise the built-in weights' folded BatchNorm (see
    :mod:`retinakit.models.batchnorm`) when ``init="builtin"``.
    """

    labels: str
    images: str
    out: str = "runs/train"
    model: str = "mobilenet0.25"
    loss: str = "paper"
    init: str = "none"
    epochs: int = PAPER_EPOCHS
    batch_size: int = 32
    lr: float = 1e-2
    warmup_lr: float = 1e-3
    warmup_epochs: float | None = None
    milestones: tuple[int, ...] | None = None
    gamma: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    image_size: int = 640
    min_crop: float = 0.3
    workers: int = 2
    device: str = "auto"
    amp: bool = True
    seed: int = 0
    resume: bool = False
    log_every: int = 10
    max_steps_per_epoch: int | None = None
    val_images: str | None = None
    val_ground_truth: str | None = None
    val_list: str | None = None
    val_max_side: int | None = 1024
    eval_every: int = 0
    freeze_bn: bool = False
    unfold_batches: int = 8

    def schedule(self) -> tuple[float, tuple[int, ...]]:
        """Warm-up length (epochs) and lr milestones (epochs) for this run's length."""
        scale = self.epochs / PAPER_EPOCHS
        warmup = self.warmup_epochs if self.warmup_epochs is not None else 5 * scale
        milestones = self.milestones if self.milestones is not None else (round(55 * scale), round(68 * scale))
        return warmup, tuple(milestones)

    def lr_at(self, epoch_float: float) -> float:
        """Learning rate at a (fractional) epoch."""
        warmup, milestones = self.schedule()
        if epoch_float < warmup:
            return self.warmup_lr + (self.lr - self.warmup_lr) * epoch_float / warmup
        return self.lr * self.gamma ** sum(epoch_float >= m for m in milestones)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def initialise(model: RetinaFace, init: str) -> None:
    """Load the starting weights named by ``init`` (see :class:`TrainConfig`)."""
    if init == "none":
        return
    if init == "builtin":
        from retinakit.backends import builtin_weights

        state, _ = read_weights(builtin_weights("safetensors"))
        model.load_state_dict(state, strict=True)
        return
    kind, _, path = init.partition(":")
    if kind == "checkpoint" and path:
        state, _ = read_weights(path)
        model.load_state_dict(state, strict=True)
    elif kind == "backbone" and path:
        obj = torch.load(path, map_location="cpu", weights_only=False)
        state = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
        state = {
            k.removeprefix("module."): v for k, v in state.items() if not k.removeprefix("module.").startswith("fc.")
        }
        try:
            model.backbone.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"{path}: not a backbone for {model.config.backbone}: {exc}") from None
    else:
        raise ValueError(f"init must be none, builtin, backbone:PATH or checkpoint:PATH, got {init!r}")


def _save_atomic(obj: dict[str, Any], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(config: TrainConfig, progress: Progress = no_progress) -> Path:
    """Run training; returns the path of the final ``model.safetensors``.

    Writes ``out/last.pt`` (model, optimizer, scheduler, scaler, epoch, configs) after every
    epoch, so ``resume`` after a kill loses at most the current epoch; ``out/log.jsonl`` holds one
    record per ``log_every`` steps, one summary per epoch, and one ``val_ap`` record per evaluation.
    """
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank = int(os.environ.get("RANK", "0"))
    if distributed:
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local)
        device = torch.device(f"cuda:{local}") if torch.cuda.is_available() else torch.device("cpu")
    else:
        device = _device(config.device)
    main_process = rank == 0
    torch.manual_seed(config.seed)

    model_config = get_preset(config.model)
    loss_config = get_loss_preset(config.loss)
    model = build_model(model_config)
    initialise(model, config.init)
    model.to(device)
    annotations = load_annotations(config.labels)
    dataset = FaceDataset(
        annotations,
        config.images,
        AugmentConfig(size=config.image_size, min_crop=config.min_crop),
        model_config.input,
        seed=config.seed,
    )
    sampler = torch.utils.data.distributed.DistributedSampler(dataset, seed=config.seed) if distributed else None
    generator = torch.Generator().manual_seed(config.seed)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        num_workers=config.workers,
        collate_fn=collate,
        drop_last=len(dataset) >= config.batch_size,
        # not persistent: workers are re-created each epoch with the dataset's new epoch number
        persistent_workers=False,
        generator=generator,
        pin_memory=device.type == "cuda",
    )
    if config.init == "builtin":  # folded BatchNorm: make it trainable first (same function)
        from itertools import islice

        from retinakit.models.batchnorm import unfold_batchnorm

        unfold_batchnorm(model, (images.to(device) for images, _ in islice(loader, config.unfold_batches)))
    steps_per_epoch = (
        len(loader) if config.max_steps_per_epoch is None else min(len(loader), config.max_steps_per_epoch)
    )
    criterion = MultiTaskLoss(loss_config, model_config.anchors.variances)
    anchors = torch.from_numpy(generate_anchors(model_config.anchors, config.image_size, config.image_size).copy()).to(
        device
    )
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        momentum=config.momentum,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: config.lr_at(step / max(steps_per_epoch, 1)) / config.lr
    )
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    net = (
        torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        if distributed
        else model
    )

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    start_epoch = 0
    if config.resume and (out / "last.pt").is_file():
        ckpt = torch.load(out / "last.pt", map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch = ckpt["epoch"] + 1
    log = (out / "log.jsonl").open("a") if main_process else None

    def write(record: dict[str, Any]) -> None:
        if log is not None:
            log.write(json.dumps(record) + "\n")
            log.flush()

    for epoch in range(start_epoch, config.epochs):
        dataset.set_epoch(epoch)
        if sampler is not None:
            sampler.set_epoch(epoch)
        net.train()
        if config.freeze_bn:
            for module in model.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.eval()
        sums: dict[str, float] = {}
        seen, tick = 0, time.perf_counter()
        batches = progress(loader, steps_per_epoch) if main_process else iter(loader)
        for step, (images, targets) in enumerate(batches):
            if step >= steps_per_epoch:
                break
            images = images.to(device, non_blocking=True)
            targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
            with torch.autocast(device.type, enabled=use_amp):
                raw = net(images)
            losses = criterion(raw, targets, anchors)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(losses["total"]).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            if not math.isfinite(losses["total"].item()):
                raise FloatingPointError(f"loss became {losses['total'].item()} at epoch {epoch} step {step}")
            seen += len(images)
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v.item()
            if (step + 1) % config.log_every == 0:
                elapsed = time.perf_counter() - tick
                write(
                    {
                        "epoch": epoch,
                        "step": step + 1,
                        "lr": optimizer.param_groups[0]["lr"],
                        **{k: round(v.item(), 5) for k, v in losses.items()},
                        "images_per_s": round(seen / elapsed, 2),
                    }
                )
        n = max(step + 1, 1)
        record: dict[str, Any] = {
            "epoch": epoch,
            "summary": True,
            "lr": optimizer.param_groups[0]["lr"],
            **{f"mean_{k}": round(v / n, 5) for k, v in sums.items()},
            "images_per_s": round(seen / (time.perf_counter() - tick), 2),
        }
        if main_process:
            _save_atomic(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "epoch": epoch,
                    "config": model_config.to_dict(),
                    "train_config": asdict(config),
                    "loss_config": asdict(loss_config),
                },
                out / "last.pt",
            )
            write(record)  # before the evaluation, so a kill during it loses nothing of the epoch
            due = config.eval_every and (epoch + 1) % config.eval_every == 0
            if due and config.val_images and config.val_ground_truth:
                write({"epoch": epoch, "val_ap": evaluate_during_training(model, config)})
    if log is not None:
        log.close()
    final = out / "model.safetensors"
    if main_process:
        save_safetensors(model.eval(), final)
    if distributed:
        torch.distributed.destroy_process_group()
    return final


def evaluate_during_training(model: RetinaFace, config: TrainConfig) -> dict[str, float]:
    """WIDER AP (easy/medium/hard, %) of the current weights on the validation images."""
    from retinakit.backends import TorchBackend
    from retinakit.detector import Detector
    from retinakit.evaluation.run import wider_ap

    was_training = model.training
    detector = Detector(
        score_threshold=0.02,
        max_side=config.val_max_side,
        backend_instance=TorchBackend(model=model, device=str(next(model.parameters()).device)),
    )
    result = wider_ap(detector, config.val_images, config.val_ground_truth, config.val_list)  # type: ignore[arg-type]
    model.train(was_training)
    return {k: round(100 * v, 2) for k, v in result.ap.items()}
