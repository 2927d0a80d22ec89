"""Multi-process training: the sampler, the normalisers, and 2 processes x B == 1 process x 2B."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from conftest import need_shared  # noqa: E402
from retinakit.training.distributed import (  # noqa: E402
    GlobalBatchSampler,
    Runtime,
    global_count,
    mean_over_processes,
)


@pytest.mark.parametrize(("size", "batch", "world"), [(10, 2, 2), (9, 1, 3), (4, 2, 2), (3, 2, 2), (7, 3, 1)])
def test_ranks_split_the_single_process_global_batches(size, batch, world):
    single = GlobalBatchSampler(size, batch * world, seed=5)
    ranks = [GlobalBatchSampler(size, batch, world, r, seed=5) for r in range(world)]
    for epoch in (0, 1):
        for s in (single, *ranks):
            s.set_epoch(epoch)
        step = batch * world
        whole = list(single)
        per_rank = [list(r) for r in ranks]
        assert len({r.steps for r in ranks}) == 1 and ranks[0].steps == single.steps
        # the global batch of every step is the single process's batch, ranks in order
        for i in range(single.steps):
            merged = [j for rank in per_rank for j in rank[i * batch : (i + 1) * batch]]
            assert sorted(merged) == sorted(whole[i * step : (i + 1) * step])
        # each image at most once per epoch; all but the N mod (W*B) remainder used
        used = [j for rank in per_rank for j in rank]
        assert len(used) == len(set(used)) == (size if size < step else size - size % step)
    assert list(GlobalBatchSampler(10, 2, seed=5)) != whole  # epoch 1 differs from epoch 0


def test_counts_and_means_are_unchanged_outside_a_process_group():
    assert global_count(torch.tensor(7)).item() == 7
    assert mean_over_processes({"a": 1.5}) == {"a": 1.5}


def _labels(root: Path, tmp_path: Path, n: int) -> Path:
    """A label.txt with the first ``n`` images of the training subset that have faces."""
    out, kept, faces = [], 0, 0
    for line in (root / "label.txt").read_text().splitlines():
        if line.startswith("#"):
            if kept == n and faces:
                break
            kept, faces = kept + 1, 0
        else:
            faces += 1
        out.append(line)
    path = tmp_path / "label.txt"
    path.write_text("\n".join(out) + "\n")
    return path


def _config(labels: Path, images: Path, out: Path, batch_size: int):
    from retinakit.training.loop import TrainConfig

    return TrainConfig(
        labels=str(labels),
        images=str(images),
        out=str(out),
        batch_size=batch_size,
        image_size=160,
        workers=0,
        device="cpu",
        freeze_bn=True,  # per-process BatchNorm statistics differ by design; SyncBatchNorm is GPU-only
        lr=1e-3,
        warmup_lr=1e-3,
    )


def _first_step(config, runtime: Runtime) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    from retinakit.training.loop import Trainer

    trainer = Trainer(config, runtime=runtime)
    trainer.build()
    trainer.set_train_mode()
    images, targets = next(iter(trainer.loader))
    losses = trainer.train_step(images, targets)
    grads = {name: p.grad.detach().clone() for name, p in trainer.model.named_parameters()}
    values = mean_over_processes({k: v.item() for k, v in losses.items()})
    trainer.finish()
    return grads, values


def _worker(rank: int, port: int, config, result: str) -> None:
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    grads, values = _first_step(config, Runtime(torch.device("cpu"), True, rank, 2))
    if rank == 0:
        torch.save({"grads": grads, "losses": values}, result)


def parity(root: Path, tmp_path: Path) -> tuple[float, float, dict[str, float], dict[str, float]]:
    """Max |grad diff| and max |grad| of 2 processes x 2 vs 1 process x 4 images; the losses of both."""
    labels = _labels(root, tmp_path, 4)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    two = _config(labels, root / "images", tmp_path / "two", batch_size=2)
    torch.multiprocessing.spawn(_worker, args=(port, two, str(tmp_path / "two.pt")), nprocs=2, join=True)
    got = torch.load(tmp_path / "two.pt")
    torch.set_num_threads(1)
    one = _config(labels, root / "images", tmp_path / "one", batch_size=4)
    want_grads, want_losses = _first_step(one, Runtime(torch.device("cpu")))
    assert got["grads"].keys() == want_grads.keys()
    diff = max((got["grads"][k] - g).abs().max().item() for k, g in want_grads.items())
    scale = max(g.abs().max().item() for g in want_grads.values())
    return diff, scale, got["losses"], want_losses


@pytest.mark.slow
def test_two_processes_give_the_gradients_of_one_process_with_the_global_batch(tmp_path):
    root = need_shared("data", "widerface", "train-subset")
    diff, scale, got_losses, want_losses = parity(root, tmp_path)
    assert scale > 0 and diff <= 1e-5 * scale, (diff, scale)
    for k, v in want_losses.items():
        assert got_losses[k] == pytest.approx(v, rel=1e-5, abs=1e-7), k
