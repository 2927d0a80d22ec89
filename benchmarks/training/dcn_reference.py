"""DCN v2 against the per-pixel reference (``retinakit.models.dcn_reference``): max abs differences.

    python -m benchmarks.training.dcn_reference

The values and gradients of the vectorised operator against the reference in float64 on the
configurations of ``tests/test_dcn.py``, and a fresh DCN layer (zero offsets) against a plain conv.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from retinakit.models.dcn import DeformConv2d, deform_conv2d
from retinakit.models.dcn_reference import CASES, reference_deform_conv

NAMES = ("input", "offset", "mask", "weight", "bias")


def main() -> None:
    worst_value, worst_grad = 0.0, dict.fromkeys(NAMES, 0.0)
    for stride, pad, dil, groups in CASES:
        gen = torch.Generator().manual_seed(stride * 10 + dil + groups)
        b, c, h, w, cout = 2, 4, 6, 7, 3
        ho = (h + 2 * pad - dil * 2 - 1) // stride + 1
        wo = (w + 2 * pad - dil * 2 - 1) // stride + 1

        def rand(*shape: int, scale: float = 1.0, gen: torch.Generator = gen) -> torch.Tensor:
            return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).requires_grad_()

        x, offset = rand(b, c, h, w), rand(b, 2 * groups * 9, ho, wo, scale=1.5)
        mask = torch.rand(b, groups * 9, ho, wo, generator=gen, dtype=torch.float64).requires_grad_()
        weight, bias = rand(cout, c, 3, 3), rand(cout)
        inputs = (x, offset, mask, weight, bias)
        ours = deform_conv2d(x, offset, mask, weight, bias, stride, pad, dil)
        ref = reference_deform_conv(x, offset, mask, weight, bias, stride, pad, dil)
        worst_value = max(worst_value, (ours - ref).abs().max().item())
        seed = torch.randn(ours.shape, generator=gen, dtype=torch.float64)
        g_ours = torch.autograd.grad((ours * seed).sum(), inputs)
        g_ref = torch.autograd.grad((ref * seed).sum(), inputs)
        for name, a, r in zip(NAMES, g_ours, g_ref, strict=True):
            worst_grad[name] = max(worst_grad[name], (a - r).abs().max().item())
    print(f"float64, {len(CASES)} configurations: max |value diff| {worst_value:.1e}")
    print("max |gradient diff|: " + ", ".join(f"{k} {v:.1e}" for k, v in worst_grad.items()))
    worst = 0.0
    for stride, dil in ((1, 1), (2, 1), (1, 2)):
        torch.manual_seed(0)
        layer = DeformConv2d(16, 8, 3, stride=stride, dilation=dil, offset_groups=2)
        x = torch.randn(2, 16, 23, 17)
        plain = F.conv2d(x, layer.weight, layer.bias, stride=stride, padding=dil, dilation=dil)
        worst = max(worst, (layer(x) - plain).abs().max().item())
    print(f"fresh DCN layer vs plain conv (float32): max |diff| {worst:.1e}")


if __name__ == "__main__":
    main()
