"""Training loop (``retinakit train``): SGD with warm-up and step decay, checkpoints and resume,
JSON-lines log, validation (WIDER or one's own labels) keeping the best weights, worker processes,
CPU or CUDA (AMP; DDP via torchrun).

Two recipes fill the settings a run leaves unset (:data:`RECIPES`): ``scratch``, the paper's
schedule (lr 1e-3 rising linearly to 1e-2 over 5 epochs, divided by 10 at epochs 55 and 68, stop at
80; with fewer ``epochs`` the warm-up and milestones scale proportionally), and ``finetune``, used
when starting from trained weights (``init`` builtin or a checkpoint): a learning rate a hundred
times smaller with a warm-up of a quarter epoch and no decay, the loss the built-in weights were
trained with (``biubug6``), BatchNorm in training mode, and gradient clipping.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from retinakit.config import ContextConv, get_preset
from retinakit.core.anchors import generate_anchors
from retinakit.errors import CheckpointError, TrainingError
from retinakit.io.batching import Progress, no_progress
from retinakit.io.labels import LabelOptions
from retinakit.models import RetinaFace, build_model
from retinakit.models.checkpoints import read_weights, save_safetensors
from retinakit.models.dcn import OFFSET_LR_MULT, offset_mask_parameters
from retinakit.training.augment import AugmentConfig
from retinakit.training.dataset import FaceDataset, collate, load_annotations
from retinakit.training.distributed import (
    GlobalBatchSampler,
    Runtime,
    convert_sync_batchnorm,
    global_count,
    mean_over_processes,
)
from retinakit.training.loss import MultiTaskLoss, get_loss_preset
from retinakit.training.recipes import PAPER_EPOCHS, RECIPES


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; ``retinakit train`` flags map onto these fields.

    ``init``: ``none`` (random), ``builtin`` (the built-in weights), ``backbone:PATH`` (ImageNet
    backbone, e.g. biubug6's ``mobilenetV1X0.25_pretrain.tar``) or ``checkpoint:PATH``.
    ``milestones`` / ``warmup_epochs`` left as None scale the paper's 55/68 and 5 of 80 epochs.
    ``val_*`` and ``eval_every``: WIDER evaluation every N epochs (0: never). ``freeze_bn``: keep
    BatchNorm statistics fixed (small batches may benefit). ``unfold_batches``: training batches
    used to re-parameterise the built-in weights' folded BatchNorm (see
    :mod:`retinakit.models.batchnorm`) when ``init="builtin"``. ``dense``: add the dense
    regression branch to the preset (trained by the pixel loss, weight ``pixel_weight`` = λ3, on at
    most ``pixel_faces`` faces per image); starting weights without it leave it randomly initialised.
    ``deformable``: DCN v2 in the
    FPN merges and context modules (None: the preset's choice, on for ``resnet152-paper``);
    ``dcn_offset_lr_mult``: learning-rate multiplier of their offset/mask predictors (0.1, as the
    reference DCN v2 and RetinaFace code; see :func:`parameter_groups`).
    ``batch_size`` is per process: under ``torchrun`` with ``W`` processes a step sees ``W *
    batch_size`` images. ``sync_bn``: SyncBatchNorm across processes (CUDA only).

    ``labels``: a label set in any format :mod:`retinakit.io.labels` reads (``data_format``,
    ``category``, ``keypoints`` as in :class:`~retinakit.io.labels.LabelOptions`; ``images`` is the
    image root where the format does not give one). Settings left as None come from the recipe
    (``recipe``, default chosen by ``init``, see :meth:`resolved`). ``grad_clip``: clip the gradient
    norm to this. ``val_labels``: one's own validation labels (``val_split`` of a YOLO data.yaml),
    evaluated before training and after the last epoch; ``out/model.safetensors`` is then the
    better-scoring of the starting and the trained weights.
    """

    labels: str
    images: str | None = None
    out: str = "runs/train"
    model: str = "mobilenet0.25"
    loss: str | None = None
    init: str = "none"
    recipe: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    warmup_lr: float | None = None
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
    freeze_bn: bool | None = None
    grad_clip: float | None = None
    unfold_batches: int = 8
    dense: bool = False
    pixel_weight: float = 0.001
    pixel_faces: int = 8
    deformable: bool | None = None
    dcn_offset_lr_mult: float = OFFSET_LR_MULT
    sync_bn: bool = False
    data_format: str | None = None
    category: str | None = None
    keypoints: tuple[str, ...] | None = None
    val_labels: str | None = None
    val_split: str = "val"

    def recipe_name(self) -> str:
        """``recipe`` if given, else ``finetune`` when starting from trained weights, else ``scratch``."""
        if self.recipe is not None:
            return self.recipe
        return "finetune" if self.init == "builtin" or self.init.startswith("checkpoint:") else "scratch"

    def resolved(self) -> TrainConfig:
        """This config with every setting left as None taken from its recipe (see :data:`RECIPES`)."""
        name = self.recipe_name()
        if name not in RECIPES:
            raise ValueError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}")
        recipe = RECIPES[name]
        epochs = self.epochs if self.epochs is not None else recipe.epochs
        scale = epochs / PAPER_EPOCHS
        warmup = self.warmup_epochs if self.warmup_epochs is not None else recipe.warmup_epochs
        milestones = self.milestones if self.milestones is not None else recipe.milestones
        return replace(
            self,
            recipe=name,
            epochs=epochs,
            lr=self.lr if self.lr is not None else recipe.lr,
            warmup_lr=self.warmup_lr if self.warmup_lr is not None else recipe.warmup_lr,
            warmup_epochs=warmup if warmup is not None else 5 * scale,
            milestones=tuple(milestones) if milestones is not None else (round(55 * scale), round(68 * scale)),
            loss=self.loss if self.loss is not None else recipe.loss,
            freeze_bn=self.freeze_bn if self.freeze_bn is not None else recipe.freeze_bn,
            grad_clip=self.grad_clip if self.grad_clip is not None else recipe.grad_clip,
            batch_size=self.batch_size if self.batch_size is not None else recipe.batch_size,
        )

    def schedule(self) -> tuple[float, tuple[int, ...]]:
        """Warm-up length (epochs) and lr milestones (epochs) for this run's length."""
        r = self.resolved()
        assert r.warmup_epochs is not None and r.milestones is not None
        return r.warmup_epochs, r.milestones

    def lr_at(self, epoch_float: float) -> float:
        """Learning rate at a (fractional) epoch."""
        r = self.resolved()
        assert r.lr is not None and r.warmup_lr is not None and r.warmup_epochs is not None
        warmup, milestones = r.warmup_epochs, r.milestones or ()
        if epoch_float < warmup:
            return r.warmup_lr + (r.lr - r.warmup_lr) * epoch_float / warmup
        return r.lr * self.gamma ** sum(epoch_float >= m for m in milestones)


def initialise(model: RetinaFace, init: str) -> None:
    """Load the starting weights named by ``init`` (see :class:`TrainConfig`)."""
    if init == "none":
        return
    if init == "builtin":
        from retinakit.inference.backends import builtin_weights

        state, _ = read_weights(builtin_weights("safetensors"))
        _load(model, state)
        return
    kind, _, path = init.partition(":")
    if kind == "checkpoint" and path:
        state, _ = read_weights(path)
        _load(model, state)
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


def _load(model: RetinaFace, state: dict[str, torch.Tensor]) -> None:
    """Strict loading, except that weights without the dense branch leave it as initialised."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("dense.")]
    if missing or unexpected:
        raise RuntimeError(f"weights do not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}")


def parameter_groups(
    model: torch.nn.Module, lr: float, weight_decay: float, offset_lr_mult: float = OFFSET_LR_MULT
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: weights with ``weight_decay``, then biases and norm parameters
    without; for a model with deformable convolutions two more groups, the same split of the
    offset/mask predictors, at ``offset_lr_mult * lr``.

    Each group carries its own ``lr``, so a ``LambdaLR`` schedule (which multiplies every group's
    initial lr by the same factor) keeps the offsets at ``offset_lr_mult`` times the rest.
    Models without DCN get exactly the two groups they always had (old checkpoints still resume).
    """
    offsets = {id(p) for p in offset_mask_parameters(model)}
    groups: list[dict[str, Any]] = []
    for is_offset, mult in ((False, 1.0), (True, offset_lr_mult)):
        params = [p for p in model.parameters() if (id(p) in offsets) == is_offset]
        if is_offset and not params:
            break
        for decay in (True, False):
            groups.append(
                {
                    "params": [p for p in params if (p.ndim > 1) == decay],
                    "lr": lr * mult,
                    "weight_decay": weight_decay if decay else 0.0,
                }
            )
    return groups


def _save_atomic(obj: dict[str, Any], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Trainer:
    """The training loop in named steps: :meth:`build`, :meth:`resume`, :meth:`train_epoch`,
    :meth:`save_checkpoint`, :meth:`evaluate`, :meth:`finish`; :meth:`run` calls them in order.

    Writes ``out/last.pt`` (model, optimizer, scheduler, scaler, epoch, configs) after every
    epoch, so ``resume`` after a kill loses at most the current epoch; ``out/log.jsonl`` holds one
    record per ``log_every`` steps, one summary per epoch, and one ``val_ap`` record per evaluation.
    Only the main process writes files. Under ``torchrun`` each process trains on its slice of
    every global batch (see :mod:`retinakit.training.distributed`); losses are normalised and
    logged over all processes.
    """

    def __init__(self, config: TrainConfig, progress: Progress = no_progress, runtime: Runtime | None = None) -> None:
        self.config = config.resolved()
        self.progress = progress
        self.runtime = runtime or Runtime.from_environment(config.device)
        self.out = Path(config.out)
        self.start_epoch = 0
        self._log: Any = None
        self.start_state: dict[str, torch.Tensor] | None = None

    # -- steps -------------------------------------------------------------------------------------
    def build(self) -> None:
        """Model, data, loss, optimizer, schedule, AMP scaler and (under torchrun) the DDP wrapper."""
        config, device = self.config, self.runtime.device
        torch.manual_seed(config.seed)
        self.model_config = get_preset(config.model)
        if config.dense:
            self.model_config = replace(self.model_config, dense=True)
        if config.deformable is not None:
            kind: ContextConv = "deformable" if config.deformable else "standard"
            self.model_config = replace(self.model_config, context_conv=kind)
        self.loss_config = replace(
            get_loss_preset(config.loss or "paper"), pixel_weight=config.pixel_weight, pixel_faces=config.pixel_faces
        )
        model = build_model(self.model_config)
        initialise(model, config.init)
        model.to(device)
        self.model = model
        self.dataset = self.build_dataset()
        world, rank = self.runtime.world_size, self.runtime.rank
        assert config.batch_size is not None and config.lr is not None
        self.sampler = GlobalBatchSampler(len(self.dataset), config.batch_size, world, rank, config.seed)
        self.loader = self._loader(self.sampler, config.batch_size)
        if config.init == "builtin":  # folded BatchNorm: make it trainable first (same function)
            self.unfold_builtin(config.batch_size * world)
        if config.sync_bn and self.runtime.distributed:
            model = self.model = convert_sync_batchnorm(model, device)  # type: ignore[assignment]
        steps = self.sampler.steps
        self.steps_per_epoch = steps if config.max_steps_per_epoch is None else min(steps, config.max_steps_per_epoch)
        self.criterion = MultiTaskLoss(
            self.loss_config,
            self.model_config.anchors.variances,
            dense=model.dense,
            input_config=self.model_config.input,
            count=global_count if self.runtime.distributed else None,
        )
        anchors = generate_anchors(self.model_config.anchors, config.image_size, config.image_size)
        self.anchors = torch.from_numpy(anchors.copy()).to(device)
        self.optimizer = torch.optim.SGD(
            parameter_groups(model, config.lr, config.weight_decay, config.dcn_offset_lr_mult),
            lr=config.lr,
            momentum=config.momentum,
        )
        steps = max(self.steps_per_epoch, 1)
        peak = config.lr
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: config.lr_at(step / steps) / peak
        )
        self.use_amp = config.amp and device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.net: torch.nn.Module = (
            torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
            if self.runtime.distributed
            else model
        )
        self.out.mkdir(parents=True, exist_ok=True)
        if self.runtime.main_process:
            self._log = (self.out / "log.jsonl").open("a")

    def unfold_builtin(self, size: int) -> None:
        """Re-parameterise the built-in weights' folded BatchNorm on ``unfold_batches`` global batches;
        every process measures on the same batches, so all start from the same weights."""
        from itertools import islice

        from retinakit.models.batchnorm import unfold_batchnorm

        whole = self._loader(GlobalBatchSampler(len(self.dataset), size, seed=self.config.seed), size)
        batches = islice(whole, self.config.unfold_batches)
        unfold_batchnorm(self.model, (images.to(self.runtime.device) for images, _ in batches))

    def build_dataset(self) -> FaceDataset:
        """The training labels (any format), images in name order so that every format trains alike."""
        config = self.config
        options = LabelOptions(config.data_format, config.images, config.category, config.keypoints)
        self.labels = load_annotations(config.labels, options)
        return FaceDataset(
            sorted(self.labels.images, key=lambda a: a.image),
            self.labels.root,
            AugmentConfig(size=config.image_size, min_crop=config.min_crop),
            self.model_config.input,
            seed=config.seed,
        )

    def _loader(self, sampler: GlobalBatchSampler, batch_size: int) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(
            self.dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.config.workers,
            collate_fn=collate,
            # not persistent: workers are re-created each epoch with the dataset's new epoch number
            persistent_workers=False,
            pin_memory=self.runtime.device.type == "cuda",
        )

    def resume(self) -> None:
        """Continue from ``out/last.pt`` when ``config.resume`` and the file exists."""
        path = self.out / "last.pt"
        if not (self.config.resume and path.is_file()):
            return
        ckpt = torch.load(path, map_location=self.runtime.device, weights_only=False)
        self.model.load_state_dict(ckpt["model"])
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except ValueError as exc:  # e.g. a DCN run saved before the offsets had their own groups
            raise CheckpointError(f"{path}: optimizer state does not fit this run's parameter groups: {exc}") from None
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.start_epoch = ckpt["epoch"] + 1

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """One pass over the data; returns the epoch summary record."""
        config = self.config
        self.dataset.set_epoch(epoch)
        self.sampler.set_epoch(epoch)
        self.set_train_mode()
        sums: dict[str, float] = {}
        seen, tick, step = 0, time.perf_counter(), -1
        batches = self.progress(self.loader, self.steps_per_epoch) if self.runtime.main_process else iter(self.loader)
        for step, (images, targets) in enumerate(batches):
            if step >= self.steps_per_epoch:
                break
            losses = self.train_step(images, targets)
            if not math.isfinite(losses["total"].item()):
                self.diverged(epoch, step, losses)
            seen += len(images)
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v.item()
            if (step + 1) % config.log_every == 0:  # every process logs at the same steps
                values = mean_over_processes({k: v.item() for k, v in losses.items()})
                self.write(
                    {
                        "epoch": epoch,
                        "step": step + 1,
                        "lr": self.optimizer.param_groups[0]["lr"],
                        **{k: round(v, 5) for k, v in values.items()},
                        "images_per_s": round(seen * self.runtime.world_size / (time.perf_counter() - tick), 2),
                    }
                )
        n = max(step + 1, 1)
        means = mean_over_processes({k: v / n for k, v in sums.items()})
        return {
            "epoch": epoch,
            "summary": True,
            "lr": self.optimizer.param_groups[0]["lr"],
            **{f"mean_{k}": round(v, 5) for k, v in means.items()},
            "images_per_s": round(seen * self.runtime.world_size / (time.perf_counter() - tick), 2),
        }

    def diverged(self, epoch: int, step: int, losses: dict[str, torch.Tensor]) -> None:
        """Raise :class:`TrainingError`: one line with where the loss stopped being finite and what to try."""
        bad = ", ".join(f"{k} {v.item():g}" for k, v in losses.items() if not math.isfinite(v.item()))
        lr = self.optimizer.param_groups[0]["lr"]
        clip = "" if self.config.grad_clip else ", or clip gradients (--grad-clip 5)"
        raise TrainingError(
            f"loss became {bad} at epoch {epoch} step {step + 1} (lr {lr:.3g}): try a lower --lr{clip}; "
            "`retinakit labels check` finds bad labels"
        )

    def set_train_mode(self) -> None:
        """Train mode, with BatchNorm statistics frozen when ``freeze_bn``."""
        self.net.train()
        if self.config.freeze_bn:
            for module in self.model.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def train_step(self, images: torch.Tensor, targets: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Forward, loss, backward and optimizer step on one batch; returns the losses by name."""
        device = self.runtime.device
        images = images.to(device, non_blocking=True)
        targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        with torch.autocast(device.type, enabled=self.use_amp):
            raw = self.net(images)
        losses = self.criterion(raw, targets, self.anchors, images)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses["total"]).backward()
        if self.config.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return losses

    def save_checkpoint(self, epoch: int) -> None:
        """``out/last.pt`` with everything :meth:`resume` needs (main process only, written atomically)."""
        if not self.runtime.main_process:
            return
        _save_atomic(
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "epoch": epoch,
                "config": self.model_config.to_dict(),
                "train_config": asdict(self.config),
                "loss_config": asdict(self.loss_config),
            },
            self.out / "last.pt",
        )

    def evaluate(self, epoch: int) -> None:
        """Validation AP every ``eval_every`` epochs (main process only)."""
        due = self.config.eval_every and (epoch + 1) % self.config.eval_every == 0
        if due and epoch + 1 < (self.config.epochs or 0):  # the last epoch is validated by :meth:`run`
            self.validate(f"epoch {epoch}", epoch)

    def validate(self, when: str, epoch: int = -1) -> float | None:
        """AP (%) on the validation set, logged as a ``val_ap`` record; returns their mean, or None
        without a validation set (or off the main process)."""
        if not (self.runtime.main_process and has_validation(self.config)):
            return None
        figures = evaluate_during_training(self.model, self.config)
        score = sum(figures.values()) / len(figures)
        self.write({"epoch": epoch, "when": when, "val_ap": figures, "val_score": round(score, 2)})
        return score

    def finish(self, before: float | None = None, after: float | None = None) -> Path:
        """Close the log, write ``out/model.safetensors`` (main process), leave the process group.

        With validation scores ``before`` and ``after`` training, ``model.safetensors`` holds the
        better weights (the starting ones if training made the validation AP fall) and
        ``last.safetensors`` the trained ones."""
        final = self.out / "model.safetensors"
        if self.runtime.main_process:
            self.model.eval()
            save_safetensors(self.model, self.out / "last.safetensors")
            keep_start = before is not None and after is not None and before > after and self.start_state is not None
            if keep_start:
                self.model.load_state_dict(self.start_state)  # type: ignore[arg-type]
            save_safetensors(self.model, final)
            if before is not None and after is not None:
                self.write({"best": "start" if keep_start else "trained", "val_before": before, "val_after": after})
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.runtime.distributed:
            torch.distributed.destroy_process_group()
        return final

    # -- driver ------------------------------------------------------------------------------------
    def write(self, record: dict[str, Any]) -> None:
        """Append one JSON record to ``out/log.jsonl`` (main process only)."""
        if self._log is not None:
            self._log.write(json.dumps(record) + "\n")
            self._log.flush()

    def run(self) -> Path:
        """Train from :attr:`start_epoch` to ``config.epochs``, validating before and after when
        there is a validation set; returns the path of the kept weights."""
        self.build()
        self.resume()
        before = None
        if self.start_epoch == 0 and has_validation(self.config):
            self.start_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            before = self.validate("before training")
        for epoch in range(self.start_epoch, self.config.epochs or 0):
            summary = self.train_epoch(epoch)
            self.save_checkpoint(epoch)
            self.write(summary)  # before the evaluation, so a kill during it loses nothing of the epoch
            self.evaluate(epoch)
        after = self.validate("after training", (self.config.epochs or 0) - 1)
        return self.finish(before, after)


def train(config: TrainConfig, progress: Progress = no_progress) -> Path:
    """Run training (see :class:`Trainer`); returns the path of the final ``model.safetensors``."""
    return Trainer(config, progress).run()


def has_validation(config: TrainConfig) -> bool:
    """Whether a run has a validation set: its own labels, or WIDER images with the .mat files."""
    return bool(config.val_labels or (config.val_images and config.val_ground_truth))


def evaluate_during_training(model: RetinaFace, config: TrainConfig) -> dict[str, float]:
    """AP (%) of the current weights on the validation set: ``val_labels`` (setting ``all``) or
    WIDER (easy/medium/hard)."""
    from retinakit.detector import Detector
    from retinakit.evaluation.run import labels_ap, wider_ap
    from retinakit.io.labels import read_labels
    from retinakit.models.backend import TorchBackend

    was_training = model.training
    detector = Detector(
        score_threshold=0.02,
        max_side=config.val_max_side,
        backend_instance=TorchBackend(model=model, device=str(next(model.parameters()).device)),
    )
    if config.val_labels:
        options = LabelOptions(None, config.val_images, config.category, config.keypoints, config.val_split)
        result = labels_ap(detector, read_labels(config.val_labels, options))
    else:
        result = wider_ap(detector, config.val_images, config.val_ground_truth, config.val_list)  # type: ignore[arg-type]
    model.train(was_training)
    return {k: round(100 * v, 2) for k, v in result.ap.items()}
