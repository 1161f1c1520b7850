"""Meta-batch normalisation: every batch (every task, under ``vmap`` or stacked) normalised with
its own statistics, as MAML normalises; no running statistics.

>>> import torch
>>> h = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
>>> batch_norm(h, torch.ones(2), torch.zeros(2)).mean(0).abs().max() < 1e-6
tensor(True)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["BN_EPS", "MetaBatchNorm", "batch_norm"]

BN_EPS = 1e-5


def batch_norm(h: Tensor, weight: Tensor, bias: Tensor, mask: Tensor | None = None) -> Tensor:
    """Normalise the rows (dim -2) of ``h`` with their own statistics, then scale and shift.

    ``h`` is ``(n, C)`` or a stack ``(T, n, C)`` (statistics per task); ``weight`` and ``bias``
    are ``(C,)`` or ``(T, C)``. ``mask`` (``(n,)`` or ``(T, n)``, non-negative row weights)
    restricts the statistics to rows with a positive weight, so zero-padded rows of a shorter
    task do not change them. Biased variance, as ``torch.nn.functional.batch_norm``.
    """
    if mask is None:
        mean = h.mean(-2, keepdim=True)
        var = (h - mean).pow(2).mean(-2, keepdim=True)
    else:
        m = (mask > 0).to(h.dtype).unsqueeze(-1)
        count = m.sum(-2, keepdim=True)
        mean = (h * m).sum(-2, keepdim=True) / count
        var = ((h - mean).pow(2) * m).sum(-2, keepdim=True) / count
    return (h - mean) * torch.rsqrt(var + BN_EPS) * weight.unsqueeze(-2) + bias.unsqueeze(-2)


class MetaBatchNorm(nn.Module):
    """Transductive batch normalisation: statistics of whatever batch is passed, no running
    statistics, a learned affine ``weight`` and ``bias`` (MAML's meta-batch normalisation).

    Under ``torch.func.vmap`` over tasks each task is normalised with its own statistics.
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(features))
        self.bias = nn.Parameter(torch.zeros(features))

    def forward(self, h: Tensor, mask: Tensor | None = None) -> Tensor:
        return batch_norm(h, self.weight, self.bias, mask)
