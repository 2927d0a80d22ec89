"""Re-parameterising weights whose BatchNorm was folded into the convolutions, before training.

The built-in weights come from a graph with BatchNorm folded away: each BatchNorm holds identity
statistics and the convolution carries the scale. The network computes the same function, but
SGD on that parameterisation takes relative steps orders of magnitude larger than on the original
one (a folded first-layer weight is ~300x smaller and its gradient ~300x larger), and diverges.
:func:`unfold_batchnorm` restores a trainable parameterisation without changing the function:
every conv weight channel is scaled to unit norm, BatchNorm statistics are measured on real
batches, and gamma/beta absorb the difference.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import torch
from torch import nn


def conv_bn_pairs(model: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """(conv, norm) pairs where a bias-free Conv2d is directly followed by a BatchNorm2d."""
    pairs = []
    for module in model.modules():
        children = list(module.children())
        for a, b in itertools.pairwise(children):
            if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d) and a.bias is None:
                pairs.append((a, b))
    return pairs


@torch.no_grad()
def unfold_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Re-parameterise every conv+BatchNorm pair of ``model``; returns how many were changed.

    ``batches``: preprocessed training images ``(B, 3, H, W)`` used to measure the statistics of
    each conv output. In eval mode the model computes exactly the same function afterwards (up to
    float rounding); in train mode its batch statistics match the new running statistics.
    """
    pairs = conv_bn_pairs(model)
    sums: dict[int, list[torch.Tensor]] = {}

    def hook(index: int):
        def record(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            z = inputs[0].double()
            dims = (0, 2, 3)
            stats = [z.sum(dims), (z * z).sum(dims), torch.tensor(float(z.numel() // z.shape[1]), dtype=torch.float64)]
            if index in sums:
                sums[index] = [s + t for s, t in zip(sums[index], stats, strict=True)]
            else:
                sums[index] = stats

        return record

    handles = [norm.register_forward_pre_hook(hook(i)) for i, (_, norm) in enumerate(pairs)]
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            model(batch)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if not sums:
        raise ValueError("no calibration batches")
    for i, (conv, norm) in enumerate(pairs):
        total, squares, count = sums[i]
        if norm.running_mean is None or norm.running_var is None:
            raise ValueError(f"{type(norm).__name__} without running statistics cannot be unfolded")
        running_mean, running_var = norm.running_mean, norm.running_var
        mean_old = total / count  # statistics of the current conv output z
        var_old = (squares / count - mean_old**2).clamp(min=0)
        # current function: y = gamma (z - m) / sqrt(v + eps) + beta
        old_scale = norm.weight.double() / torch.sqrt(running_var.double() + norm.eps)
        old_shift = norm.bias.double() - running_mean.double() * old_scale
        n = conv.weight.double().flatten(1).norm(dim=1).clamp(min=1e-12)  # new z' = z / n
        mean_new, var_new = mean_old / n, var_old / n**2
        gamma = old_scale * n * torch.sqrt(var_new + norm.eps)
        beta = old_shift + old_scale * n * mean_new
        conv.weight.copy_((conv.weight.double() / n.view(-1, 1, 1, 1)).to(conv.weight.dtype))
        running_mean.copy_(mean_new.float())
        running_var.copy_(var_new.float())
        norm.weight.copy_(gamma.float())
        norm.bias.copy_(beta.float())
    return len(pairs)
