"""The episodic memory: a bounded store of examples, pure tensors, with its insertion and
sampling policies injected (Reverb's table with its selectors).

Each held item is ``(x, y, task id, priority)``. The store validates what it is offered, keeps
the counters (items offered, per task), the priorities and one seeded ``torch.Generator``; an
:class:`~adaptd.adapters.continual.memory.protocol.Inserter` says where offered items go
(:class:`ReservoirInserter`, :class:`QuotaInserter`) and a
:class:`~adaptd.adapters.continual.memory.protocol.Sampler` which items a batch holds
(:class:`UniformSampler`, :class:`PrioritizedSampler`, :class:`StratifiedSampler`). Every
random choice comes from the store's generator, whose state is part of ``state_dict``, so a
restored memory draws exactly what the original would have.

Examples
--------
>>> import torch
>>> from adaptd.adapters.continual.memory import StratifiedSampler
>>> memory = EpisodicMemory(6, sampler=StratifiedSampler(), seed=0)
>>> memory.add(torch.arange(8.0).reshape(8, 1), torch.zeros(8, dtype=torch.long), task=0)
>>> len(memory), memory.seen
(6, 8)
>>> memory.add(torch.ones(4, 1), torch.ones(4, dtype=torch.long), task=1)
>>> memory.task.bincount().tolist()
[5, 1]
>>> batch = memory.sample(2)          # stratified: one per task, though task 1 is rare
>>> batch.task.bincount().tolist(), batch.weight.tolist()
([1, 1], [1.0, 1.0])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ...checks import int_at_least, positive, positive_int
from .protocol import Inserter, Sampler
from .reservoir import ReservoirInserter
from .uniform import UniformSampler

__all__ = ["EpisodicMemory", "MemoryBatch"]


class MemoryBatch(NamedTuple):
    """Items drawn by :meth:`EpisodicMemory.sample` (copies)."""

    x: Tensor
    y: Tensor
    task: Tensor
    """Task id of each item (int64)."""
    index: Tensor
    """Slot of each item in the memory (for ``update_priorities``)."""
    weight: Tensor
    """Importance-sampling weight (1 unless the sampler weights), max 1 over the memory."""


class EpisodicMemory:
    """A bounded store of examples with an injected insertion and sampling policy.

    Parameters
    ----------
    capacity
        Most items held.
    inserter
        Where offered items go (default :class:`ReservoirInserter`, Algorithm R over
        everything offered).
    sampler
        Which items a batch holds (default :class:`UniformSampler`).
    eps
        Added to the absolute losses given to ``update_priorities`` (no item gets ``P = 0``).
    seed
        Seed of the private generator behind every random choice.
    """

    def __init__(
        self,
        capacity: int,
        *,
        inserter: Inserter | None = None,
        sampler: Sampler | None = None,
        eps: float = 1e-6,
        seed: int = 0,
    ) -> None:
        self.capacity = positive_int("capacity", capacity)
        self.inserter: Inserter = ReservoirInserter() if inserter is None else inserter
        self.sampler: Sampler = UniformSampler() if sampler is None else sampler
        if not isinstance(self.inserter, Inserter):
            raise ValueError(f"inserter must be an Inserter (name, place), got {inserter!r}")
        if not isinstance(self.sampler, Sampler):
            raise ValueError(f"sampler must be a Sampler (sample), got {sampler!r}")
        self.eps = positive("eps", eps)
        self.seed = int(seed)
        self._reset()

    def _reset(self) -> None:
        self._generator = torch.Generator().manual_seed(self.seed)
        self._x: Tensor | None = None
        self._y: Tensor | None = None
        self._task = torch.zeros(0, dtype=torch.int64)
        self._priority = torch.zeros(0)
        self._seen = 0
        self._task_seen: dict[int, int] = {}  # in first-seen order
        self._max_priority = 1.0

    def __len__(self) -> int:
        return len(self._task)

    @property
    def seen(self) -> int:
        """Items ever offered."""
        return self._seen

    @property
    def task_counts(self) -> dict[int, int]:
        """Items ever offered per task id, in first-seen order (a copy)."""
        return dict(self._task_seen)

    @property
    def x(self) -> Tensor | None:
        """Held inputs (a copy), None before the first ``add``."""
        return None if self._x is None else self._x.clone()

    @property
    def y(self) -> Tensor | None:
        """Held targets (a copy), None before the first ``add``."""
        return None if self._y is None else self._y.clone()

    @property
    def task(self) -> Tensor:
        """Task id of each held item (a copy)."""
        return self._task.clone()

    @property
    def priority(self) -> Tensor:
        """Priority ``p_i`` of each held item (a copy)."""
        return self._priority.clone()

    def add(self, x: Tensor, y: Tensor, task: int, priority: float | None = None) -> None:
        """Offer the examples ``(x[i], y[i])`` of task ``task``, in order; the inserter says
        which are stored where.

        ``priority`` (default: the largest so far) is given to every item stored.
        """
        if priority is not None and not priority > 0:
            raise ValueError(f"priority must be positive, got {priority!r}")
        if len(x) != len(y):
            raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
        if self._x is not None and (x.shape[1:] != self._x.shape[1:] or y.dtype != self._y.dtype):
            raise ValueError("x and y must match the shapes and dtypes already held")
        if self._x is None or self._y is None:
            self._x = x.new_zeros((0, *x.shape[1:]))
            self._y = y.new_zeros((0, *y.shape[1:]))
        task = int(task)
        p = self._max_priority if priority is None else float(priority)
        keep, append, slots, items = self.inserter.place(self, len(x), task, self._generator)
        if keep is not None:
            self._x, self._y = self._x[keep], self._y[keep]
            self._task, self._priority = self._task[keep], self._priority[keep]
        self._x = torch.cat((self._x, x[append]))
        self._y = torch.cat((self._y, y[append]))
        self._task = torch.cat((self._task, torch.full((len(append),), task, dtype=torch.int64)))
        self._priority = torch.cat((self._priority, torch.full((len(append),), p)))
        if len(slots):
            self._x[slots] = x[items]
            self._y[slots] = y[items]
            self._task[slots] = task
            self._priority[slots] = p
        self._seen += len(x)
        self._task_seen[task] = self._task_seen.get(task, 0) + len(x)

    def sample(self, n: int) -> MemoryBatch:
        """A batch of up to ``n`` items drawn by the sampler (distinct unless it draws with
        replacement, as prioritized sampling does). An empty memory gives an empty batch."""
        int_at_least("n", n, 0)
        index, weight = torch.zeros(0, dtype=torch.int64), None
        if len(self) > 0 and n > 0:
            index, weight = self.sampler.sample(self, n, self._generator)
        if weight is None:
            weight = torch.ones(len(index))
        if self._x is None or self._y is None:
            return MemoryBatch(torch.zeros(0), torch.zeros(0), self._task[index], index, weight)
        return MemoryBatch(self._x[index], self._y[index], self._task[index], index, weight)

    def update_priorities(self, index: Tensor, losses: Tensor) -> None:
        """Set ``p_i = |loss_i| + eps`` for the slots ``index`` (a slot drawn twice gets one of
        its values; both are the same loss when they come from one batch)."""
        if len(index) != len(losses):
            raise ValueError(f"index and losses must match, got {len(index)} and {len(losses)}")
        if len(index) == 0:
            return
        value = losses.detach().abs().to(self._priority.dtype) + self.eps
        self._priority[index] = value
        self._max_priority = max(self._max_priority, float(value.max()))

    def state_dict(self) -> dict[str, Any]:
        """Held items, priorities, counters and the generator state (copies)."""
        return {
            "capacity": self.capacity,
            "insertion": self.inserter.name,
            "x": None if self._x is None else self._x.clone(),
            "y": None if self._y is None else self._y.clone(),
            "task": self._task.clone(),
            "priority": self._priority.clone(),
            "seen": self._seen,
            "task_ids": list(self._task_seen),
            "task_seen": list(self._task_seen.values()),
            "max_priority": self._max_priority,
            "generator": self._generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict``; raises ValueError when the capacity or the insertion
        policy differ."""
        for key, mine in (("capacity", self.capacity), ("insertion", self.inserter.name)):
            if state[key] != mine:
                raise ValueError(f"state has {key} {state[key]!r}, this memory {mine!r}")
        self._x = None if state["x"] is None else state["x"].clone()
        self._y = None if state["y"] is None else state["y"].clone()
        self._task = state["task"].clone()
        self._priority = state["priority"].clone()
        self._seen = int(state["seen"])
        self._task_seen = dict(zip(state["task_ids"], state["task_seen"], strict=True))
        self._max_priority = float(state["max_priority"])
        self._generator.set_state(state["generator"].clone())

    def __repr__(self) -> str:
        return (
            f"EpisodicMemory({self.capacity}, inserter={self.inserter!r}, "
            f"sampler={self.sampler!r}, held={len(self)}, seen={self._seen})"
        )
