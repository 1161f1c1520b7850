"""Per-task quotas: an equal share of the capacity per task id seen, Algorithm R within each
task's share.

The first ``capacity % tasks`` ids (in first-seen order) get one more slot. When a new task id
arrives, the older tasks drop uniformly chosen items down to their new share, which keeps each
task's items a uniform sample of what it offered.

Examples
--------
>>> import torch
>>> from adaptd.adapters.continual.memory import EpisodicMemory
>>> memory = EpisodicMemory(6, inserter=QuotaInserter(), seed=0)
>>> for t in range(3):
...     memory.add(torch.zeros(5, 1), torch.zeros(5, dtype=torch.long), task=t)
>>> memory.task.bincount().tolist(), QuotaInserter.quotas(6, [0, 1, 2, 3])
([2, 2, 2], {0: 2, 1: 2, 2: 1, 3: 1})

References
----------
Chaudhry, A. et al. (2019). On tiny episodic memories in continual learning. arXiv:1902.10486.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from .protocol import MemoryView, Placement
from .reservoir import algorithm_r
from .shares import random_rank_within_task

__all__ = ["QuotaInserter"]


@dataclass(frozen=True)
class QuotaInserter:
    """An equal share of the capacity per task, Algorithm R within each share."""

    name: ClassVar[str] = "quota"

    @staticmethod
    def quotas(capacity: int, tasks: Sequence[int]) -> dict[int, int]:
        """The share of ``capacity`` of each task id, in the order given (first seen first)."""
        base, extra = divmod(capacity, max(len(tasks), 1))
        return {t: base + (rank < extra) for rank, t in enumerate(tasks)}

    def place(
        self, memory: MemoryView, count: int, task: int, generator: torch.Generator
    ) -> Placement:
        """Shrink older tasks to their shares when ``task`` is new, then Algorithm R within
        its share (slot ``j`` of the share is the task's ``j``-th held item)."""
        counts = memory.task_counts
        held = memory.task
        keep = None
        quotas = self.quotas(memory.capacity, [*counts, *([] if task in counts else [task])])
        if task not in counts:
            limit = torch.tensor([quotas[int(t)] for t in held], dtype=torch.int64)
            keep = random_rank_within_task(held, generator) < limit
            held = held[keep]
            if bool(keep.all()):
                keep = None
        append, places, items = algorithm_r(counts.get(task, 0), quotas[task], count, generator)
        after = torch.cat((held, torch.full((len(append),), task, dtype=torch.int64)))
        return Placement(keep, append, torch.nonzero(after == task).squeeze(1)[places], items)
