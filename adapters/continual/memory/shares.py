"""Two pieces of arithmetic the memory's strategies share: splitting a total fairly over groups
of limited size, and a uniformly random rank of each item within its task.

Examples
--------
>>> fair_shares(10, [2, 8, 8])
[2, 4, 4]
>>> import torch
>>> ranks = random_rank_within_task(torch.tensor([0, 1, 0, 0]), torch.Generator().manual_seed(0))
>>> sorted(ranks[torch.tensor([0, 2, 3])].tolist()), ranks[1].item()
([0, 1, 2], 0)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["fair_shares", "random_rank_within_task"]


def fair_shares(total: int, available: Sequence[int]) -> list[int]:
    """Split ``total`` as evenly as possible over slots holding at most ``available[i]`` each
    (water-filling): a slot that cannot take its share passes the rest on, and a remainder
    goes to the earliest slots with room. Sums to ``min(total, sum(available))``."""
    shares = [0] * len(available)
    left = min(total, sum(available))
    open_ = [i for i, a in enumerate(available) if a > 0]
    while left > 0:
        open_ = [i for i in open_ if shares[i] < available[i]]
        each, extra = divmod(left, len(open_))
        for rank, i in enumerate(open_):
            give = min(each + (rank < extra), available[i] - shares[i])
            shares[i] += give
            left -= give
            if left == 0:
                break
    return shares


def random_rank_within_task(task: Tensor, generator: torch.Generator) -> Tensor:
    """A uniformly random rank ``0..count-1`` of each item among the items of its task: the
    items whose rank is below a limit are a uniform sample of that many of their task's."""
    n = len(task)
    order = torch.randperm(n, generator=generator)
    order = order[torch.argsort(task[order], stable=True)]  # by task, random within
    grouped = task[order]
    start = torch.ones(n, dtype=torch.bool)
    start[1:] = grouped[1:] != grouped[:-1]
    first = torch.cummax(torch.where(start, torch.arange(n), 0), 0).values
    rank = torch.empty(n, dtype=torch.int64)
    rank[order] = torch.arange(n) - first
    return rank
