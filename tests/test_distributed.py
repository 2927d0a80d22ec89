"""Multi-process training: the sampler, the normalisers, and 2 processes x B == 1 process x 2B."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from conftest import need_shared  # noqa: E402
from retinakit.training.distributed import GlobalBatchSampler, global_count, mean_over_processes  # noqa: E402
from retinakit.training.parity import parity  # noqa: E402


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


@pytest.mark.slow
def test_two_processes_give_the_gradients_of_one_process_with_the_global_batch(tmp_path):
    root = need_shared("data", "widerface", "train-subset")
    result = parity(root, tmp_path)
    diff, scale, got_losses, want_losses = result.max_diff, result.max_grad, result.two_losses, result.one_losses
    assert scale > 0 and diff <= 1e-5 * scale, (diff, scale)
    for k, v in want_losses.items():
        assert got_losses[k] == pytest.approx(v, rel=1e-5, abs=1e-7), k
