"""Multi-process training helpers: who trains what, and how numbers are combined across processes.

The design goal is that ``W`` processes with batch ``B`` each compute what one process computes
with batch ``W * B`` on the same images:

- :class:`GlobalBatchSampler` cuts one seeded permutation per epoch into global batches of
  ``W * B`` images and hands rank ``r`` the ``r``-th slice of each, so every image is used once
  per epoch (the last ``N mod W*B`` images of the permutation are left out of that epoch, as a
  single process with ``drop_last`` does) and the global batches equal the single-process ones;
- the loss normalisers (number of positive anchors, of landmark anchors) are summed over all
  processes (:func:`global_count`), so DDP's gradient averaging gives exactly the gradient of the
  global batch;
- logged losses are averaged over processes (:func:`mean_over_processes`);
- BatchNorm statistics are per process unless ``sync_bn`` converts the model to SyncBatchNorm,
  which PyTorch implements for GPUs only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Runtime:
    """Where and how this process trains: device, distributed rank and world size."""

    device: torch.device
    distributed: bool = False
    rank: int = 0
    world_size: int = 1

    @property
    def main_process(self) -> bool:
        return self.rank == 0

    @staticmethod
    def from_environment(device: str) -> Runtime:
        """Single process, or one rank of a ``torchrun`` job (``WORLD_SIZE`` > 1: nccl on CUDA, else gloo)."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        cuda = torch.cuda.is_available() and device in ("auto", "cuda")
        if world_size <= 1:
            if device == "auto":
                return Runtime(torch.device("cuda" if cuda else "cpu"))
            return Runtime(torch.device(device))
        if not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if cuda:
            torch.cuda.set_device(local)
        dev = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
        return Runtime(dev, True, dist.get_rank(), dist.get_world_size())


class GlobalBatchSampler(torch.utils.data.Sampler[int]):
    """Indices for one rank: its slice of each global batch of a seeded per-epoch permutation.

    With ``world_size=1`` this is ordinary shuffled, drop-last batching. A dataset smaller than
    one global batch gives one (partial) global batch split as evenly as possible.
    """

    def __init__(
        self, size: int, batch_size: int, world_size: int = 1, rank: int = 0, seed: int = 0, shuffle: bool = True
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.size, self.batch_size, self.world_size, self.rank = size, batch_size, world_size, rank
        self.seed, self.shuffle, self.epoch = seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _global_batches(self) -> list[list[int]]:
        if self.shuffle:
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + self.epoch)).tolist()
        else:
            order = list(range(self.size))
        step = self.batch_size * self.world_size
        if self.size < step:
            return [order] if order else []
        return [order[i : i + step] for i in range(0, self.size - step + 1, step)]

    def _slice(self, batch: list[int]) -> list[int]:
        per = -(-len(batch) // self.world_size)  # ceil: equal slices except the last of a partial batch
        return batch[self.rank * per : (self.rank + 1) * per]

    def __iter__(self) -> Iterator[int]:
        for batch in self._global_batches():
            yield from self._slice(batch)

    def __len__(self) -> int:
        return sum(len(self._slice(b)) for b in self._global_batches())

    @property
    def steps(self) -> int:
        """Optimizer steps per epoch (the same on every rank)."""
        return len(self._global_batches())


def global_count(count: torch.Tensor) -> torch.Tensor:
    """A per-process count turned into the normaliser that makes DDP's averaged gradient global.

    DDP averages gradients over ``W`` processes, so each process divides its sum by
    ``(sum of the counts over processes) / W``; outside a process group the count is returned.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return count
    total = count.detach().float().clone()
    dist.all_reduce(total)
    return total / dist.get_world_size()


def mean_over_processes(values: dict[str, float]) -> dict[str, float]:
    """Average named numbers over all processes (identity outside a process group)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1 or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    return {k: float(v) / dist.get_world_size() for k, v in zip(keys, t.tolist(), strict=True)}


def convert_sync_batchnorm(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """SyncBatchNorm over all processes; PyTorch runs it on GPUs only, so CPU runs are refused."""
    if device.type != "cuda":
        raise ValueError("--sync-bn needs CUDA: PyTorch's SyncBatchNorm runs on GPUs only")
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
