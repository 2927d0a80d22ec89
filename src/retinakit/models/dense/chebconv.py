"""Graph convolution by fast localised spectral filtering (Defferrard et al., 2016), as the mesh
decoder of RetinaFace (after Ranjan et al., 2018) uses it.

``y = Σ_{k<K} T_k(L̃) x θ_k`` with ``T_k`` the Chebyshev polynomials of the scaled Laplacian
``L̃``, computed by the recursion ``x̄_0 = x``, ``x̄_1 = L̃ x``, ``x̄_k = 2 L̃ x̄_{k-1} - x̄_{k-2}``:
K - 1 sparse matrix products, each touching only the mesh's edges.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sparse_apply(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``matrix (V', V)`` sparse times ``x (B, V, C)`` per batch item -> ``(B, V', C)``."""
    b, v, c = x.shape
    flat = x.permute(1, 0, 2).reshape(v, b * c)
    out = torch.sparse.mm(matrix.to(x.dtype), flat)
    return out.reshape(-1, b, c).permute(1, 0, 2)


class ChebConv(nn.Module):
    """Chebyshev graph convolution of order ``k`` on a fixed graph.

    ``laplacian``: the scaled Laplacian ``L̃`` (sparse ``(V, V)``), kept as a non-persistent
    buffer (it is part of the mesh, not of the weights). ``forward(x (B, V, C_in)) -> (B, V, C_out)``.
    """

    laplacian: torch.Tensor

    def __init__(self, in_channels: int, out_channels: int, k: int, laplacian: torch.Tensor) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"Chebyshev order must be >= 1, got {k}")
        self.k = k
        self.register_buffer("laplacian", laplacian, persistent=False)
        self.weight = nn.Parameter(torch.empty(k, in_channels, out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        nn.init.normal_(self.weight, std=1.0 / math.sqrt(in_channels * k))

    def basis(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[T_0(L̃) x, ..., T_{K-1}(L̃) x]`` by the three-term recursion."""
        terms = [x]
        if self.k > 1:
            terms.append(sparse_apply(self.laplacian, x))
        for _ in range(2, self.k):
            terms.append(2.0 * sparse_apply(self.laplacian, terms[-1]) - terms[-2])
        return terms

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bias.to(x.dtype)
        for term, theta in zip(self.basis(x), self.weight, strict=True):
            out = out + term @ theta.to(x.dtype)
        return out
