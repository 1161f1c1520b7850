"""Stratified sampling: an equal share of the batch per task id held, distinct items drawn
uniformly within each task.

A task that runs out of items passes the rest of its share on; the remainder of an uneven split
goes to randomly chosen tasks, so a rare task is rehearsed as often as a common one.

Examples
--------
>>> import torch
>>> from adaptd.adapters.continual.memory import EpisodicMemory
>>> memory = EpisodicMemory(6, sampler=StratifiedSampler(), seed=0)
>>> memory.add(torch.zeros(5, 1), torch.zeros(5, dtype=torch.long), task=0)
>>> memory.add(torch.ones(1, 1), torch.ones(1, dtype=torch.long), task=1)
>>> memory.sample(2).task.bincount().tolist()   # one per task, though task 1 is rare
[1, 1]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from .protocol import Draw, MemoryView
from .shares import fair_shares, random_rank_within_task

__all__ = ["StratifiedSampler"]


@dataclass(frozen=True)
class StratifiedSampler:
    """Equal shares of the batch per task id, uniform within each task."""

    uses_priorities: ClassVar[bool] = False

    def sample(self, memory: MemoryView, n: int, generator: torch.Generator) -> Draw:
        """Distinct items, ``fair_shares`` of ``n`` over the task ids held, in random order."""
        task = memory.task
        ids, counts = torch.unique(task, return_counts=True)
        order = torch.randperm(len(ids), generator=generator)  # who gets the remainder
        shares = fair_shares(n, counts[order].tolist())
        alloc = torch.zeros(len(ids), dtype=torch.int64)
        alloc[order] = torch.tensor(shares, dtype=torch.int64)
        limit = alloc[torch.searchsorted(ids, task)]
        chosen = torch.nonzero(random_rank_within_task(task, generator) < limit).squeeze(1)
        return Draw(chosen[torch.randperm(len(chosen), generator=generator)], None)
