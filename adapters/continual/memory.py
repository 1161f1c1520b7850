"""The episodic memory the replay strategies share: a bounded store of examples, pure tensors.

Each held item is ``(x, y, task id, priority)``. Insertion keeps the store a uniform sample of
what it was offered:

* "reservoir": Algorithm R over the whole stream (as the Redis reservoir in
  ``adaptd.replay.reservoir`` does server-side): the ``n``-th item offered takes a uniformly
  chosen slot with probability ``capacity / n``, so every item offered so far is held with the
  same probability ``capacity / seen``, whatever the task it came from;
* "quota": an equal share of the capacity per task id seen (the first ``capacity % tasks``
  ids get one more), Algorithm R within each task's share; when a new task id arrives, the
  older tasks drop uniformly chosen items down to their new share.

Sampling draws a batch three ways:

* "uniform": distinct items, every subset equally likely;
* "prioritized": item ``i`` with probability ``P(i) = p_i^alpha / sum_j p_j^alpha`` (with
  replacement) and the importance-sampling weight ``w_i = (N P(i))^-beta / max_j (N P(j))^-beta``
  over the ``N`` held items (Schaul et al., 2016). New items get the largest priority given
  so far, so each is likely to be replayed once; ``update_priorities`` sets ``p_i = |l_i| + eps``;
* "stratified": an equal share of the batch per task id held (ids that run out pass their
  share on; the remainder goes to randomly chosen ids), distinct items drawn uniformly within.

Every random choice comes from a private seeded ``torch.Generator`` whose state is part of
``state_dict``, so a restored memory draws exactly what the original would have.

Examples
--------
>>> import torch
>>> memory = EpisodicMemory(6, seed=0)
>>> memory.add(torch.arange(8.0).reshape(8, 1), torch.zeros(8, dtype=torch.long), task=0)
>>> len(memory), memory.seen
(6, 8)
>>> memory.add(torch.ones(4, 1), torch.ones(4, dtype=torch.long), task=1)
>>> memory.task.bincount().tolist()
[5, 1]
>>> batch = memory.sample(2, "stratified")          # one per task, though task 1 is rare
>>> batch.task.bincount().tolist(), batch.weight.tolist()
([1, 1], [1.0, 1.0])
>>> quota = EpisodicMemory(6, insertion="quota", seed=0)
>>> for t in range(3):
...     quota.add(torch.zeros(5, 1), torch.zeros(5, dtype=torch.long), task=t)
>>> quota.task.bincount().tolist()
[2, 2, 2]
>>> fair_shares(10, [2, 8, 8])
[2, 4, 4]

References
----------
Vitter, J. S. (1985). Random sampling with a reservoir. ACM TOMS 11(1).
Schaul, T., Quan, J., Antonoglou, I. & Silver, D. (2016). Prioritized experience replay. ICLR.
Chaudhry, A. et al. (2019). On tiny episodic memories in continual learning. arXiv:1902.10486.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor

from ..checks import int_at_least, one_of, positive_int

__all__ = ["EpisodicMemory", "Insertion", "MemoryBatch", "Sampling", "fair_shares"]

Insertion = Literal["reservoir", "quota"]
Sampling = Literal["uniform", "prioritized", "stratified"]
INSERTIONS: tuple[Insertion, ...] = ("reservoir", "quota")
SAMPLINGS: tuple[Sampling, ...] = ("uniform", "prioritized", "stratified")


class MemoryBatch(NamedTuple):
    """Items drawn by :meth:`EpisodicMemory.sample` (copies)."""

    x: Tensor
    y: Tensor
    task: Tensor
    """Task id of each item (int64)."""
    index: Tensor
    """Slot of each item in the memory (for ``update_priorities``)."""
    weight: Tensor
    """Importance-sampling weight (1 unless prioritized), max 1 over the memory."""


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


class EpisodicMemory:
    """A bounded store of examples with reservoir or per-task insertion and three samplers.

    Parameters
    ----------
    capacity
        Most items held.
    insertion
        "reservoir" (Algorithm R over everything offered) or "quota" (equal share per task).
    alpha
        Prioritization exponent (0: uniform).
    beta
        Importance-sampling exponent (1: full correction). Fixed, not annealed.
    eps
        Added to the absolute losses given to ``update_priorities`` (no item gets ``P = 0``).
    seed
        Seed of the private generator behind every random choice.
    """

    def __init__(
        self,
        capacity: int,
        *,
        insertion: Insertion = "reservoir",
        alpha: float = 0.6,
        beta: float = 0.4,
        eps: float = 1e-6,
        seed: int = 0,
    ) -> None:
        self.capacity = positive_int("capacity", capacity)
        self.insertion: Insertion = one_of("insertion", insertion, INSERTIONS)
        if not alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {alpha!r}")
        if not 0 <= beta <= 1:
            raise ValueError(f"beta must be in [0, 1], got {beta!r}")
        if not eps > 0:
            raise ValueError(f"eps must be positive, got {eps!r}")
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.eps = float(eps)
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

    def quotas(self) -> dict[int, int]:
        """Share of the capacity of each task id seen ("quota" insertion), in first-seen order."""
        base, extra = divmod(self.capacity, max(len(self._task_seen), 1))
        return {t: base + (rank < extra) for rank, t in enumerate(self._task_seen)}

    def add(self, x: Tensor, y: Tensor, task: int, priority: float | None = None) -> None:
        """Offer the examples ``(x[i], y[i])`` of task ``task``, in order.

        ``priority`` (default: the largest so far) is given to every item stored.
        """
        if priority is not None and not priority > 0:
            raise ValueError(f"priority must be positive, got {priority!r}")
        if len(x) != len(y):
            raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
        if self._x is not None and (x.shape[1:] != self._x.shape[1:] or y.dtype != self._y.dtype):
            raise ValueError("x and y must match the shapes and dtypes already held")
        if self._x is None:
            self._x = x.new_zeros((0, *x.shape[1:]))
            self._y = y.new_zeros((0, *y.shape[1:]))
        task = int(task)
        p = self._max_priority if priority is None else float(priority)
        if self.insertion == "quota" and task not in self._task_seen:
            self._task_seen[task] = 0
            self._shrink_to_quotas()
        offered = self._task_seen.get(task, 0) if self.insertion == "quota" else self._seen
        room = self.quotas()[task] if self.insertion == "quota" else self.capacity
        self._reservoir(x, y, task, p, offered, room)
        self._seen += len(x)
        self._task_seen[task] = self._task_seen.get(task, 0) + len(x)

    def _reservoir(
        self, x: Tensor, y: Tensor, task: int, p: float, offered: int, room: int
    ) -> None:
        # Algorithm R, vectorised: item i of the batch is the (offered + i + 1)-th of its
        # stream; the first ``room`` of a stream fill free slots, each later one draws a
        # position j < its count and takes slot j if j < room. The draws do not depend on the
        # store, so applying them at once (the last writer of a slot wins) is exact.
        position = offered + torch.arange(len(x))
        fill = position < room
        self._append(x[fill], y[fill], task, p)
        later = torch.nonzero(~fill).squeeze(1)
        if len(later) == 0:
            return
        u = torch.rand(len(later), generator=self._generator, dtype=torch.float64)
        j = torch.floor(u * (position[later] + 1).to(torch.float64)).long()
        hit = j < room
        items, targets = later[hit], j[hit]
        if len(items) == 0:
            return
        # Keep the last item aimed at each slot: unique over the reversed order.
        reversed_targets = targets.flip(0)
        unique, inverse = torch.unique(reversed_targets, return_inverse=True)
        first = torch.full((len(unique),), len(targets), dtype=torch.int64)
        first = first.scatter_reduce(0, inverse, torch.arange(len(targets)), reduce="amin")
        keep = len(targets) - 1 - first
        if self.insertion == "quota":  # slot j of the task's share: its j-th held item
            unique = torch.nonzero(self._task == task).squeeze(1)[unique]
        slots = unique
        self._x[slots] = x[items[keep]]
        self._y[slots] = y[items[keep]]
        self._task[slots] = task
        self._priority[slots] = p

    def _append(self, x: Tensor, y: Tensor, task: int, p: float) -> None:
        self._x = torch.cat((self._x, x))
        self._y = torch.cat((self._y, y))
        self._task = torch.cat((self._task, torch.full((len(x),), task, dtype=torch.int64)))
        self._priority = torch.cat((self._priority, torch.full((len(x),), p)))

    def _shrink_to_quotas(self) -> None:
        quotas = self.quotas()
        limit = torch.tensor([quotas[int(t)] for t in self._task], dtype=torch.int64)
        keep = self._random_rank_within_task() < limit
        if bool(keep.all()):
            return
        self._x, self._y = self._x[keep], self._y[keep]
        self._task, self._priority = self._task[keep], self._priority[keep]

    def _random_rank_within_task(self) -> Tensor:
        """A uniformly random rank ``0..count-1`` of each item among its task's items."""
        n = len(self._task)
        order = torch.randperm(n, generator=self._generator)
        order = order[torch.argsort(self._task[order], stable=True)]  # by task, random within
        grouped = self._task[order]
        start = torch.ones(n, dtype=torch.bool)
        start[1:] = grouped[1:] != grouped[:-1]
        first = torch.cummax(torch.where(start, torch.arange(n), 0), 0).values
        rank = torch.empty(n, dtype=torch.int64)
        rank[order] = torch.arange(n) - first
        return rank

    def probabilities(self) -> Tensor:
        """``P(i)`` of prioritized sampling for every held item."""
        scaled = self._priority.to(torch.float64).pow(self.alpha)
        return scaled / scaled.sum()

    def sample(self, n: int, strategy: Sampling = "uniform") -> MemoryBatch:
        """A batch of ``n`` items ("uniform" and "stratified": distinct, so fewer when fewer are
        held; "prioritized": with replacement). An empty memory gives an empty batch."""
        int_at_least("n", n, 0)
        if strategy not in SAMPLINGS:
            raise ValueError(f"strategy must be one of {SAMPLINGS}, got {strategy!r}")
        size = len(self)
        weight = None
        if size == 0 or n == 0:
            index = torch.zeros(0, dtype=torch.int64)
        elif strategy == "uniform":
            index = torch.randperm(size, generator=self._generator)[:n]
        elif strategy == "prioritized":
            probs = self.probabilities()
            index = torch.multinomial(probs, n, replacement=True, generator=self._generator)
            # (N P(i))^-beta / max_j (N P(j))^-beta = (min_j P(j) / P(i))^beta
            weight = (probs.min() / probs[index]).pow(self.beta).to(torch.float32)
        else:
            index = self._stratified(n)
        if weight is None:
            weight = torch.ones(len(index))
        if self._x is None:
            return MemoryBatch(torch.zeros(0), torch.zeros(0), self._task[index], index, weight)
        return MemoryBatch(self._x[index], self._y[index], self._task[index], index, weight)

    def _stratified(self, n: int) -> Tensor:
        ids, counts = torch.unique(self._task, return_counts=True)
        order = torch.randperm(len(ids), generator=self._generator)  # who gets the remainder
        shares = fair_shares(n, counts[order].tolist())
        alloc = torch.zeros(len(ids), dtype=torch.int64)
        alloc[order] = torch.tensor(shares, dtype=torch.int64)
        limit = alloc[torch.searchsorted(ids, self._task)]
        chosen = torch.nonzero(self._random_rank_within_task() < limit).squeeze(1)
        return chosen[torch.randperm(len(chosen), generator=self._generator)]

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
            "insertion": self.insertion,
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
        """Restore a ``state_dict``; raises ValueError when capacity or insertion differ."""
        for key in ("capacity", "insertion"):
            if state[key] != getattr(self, key):
                raise ValueError(
                    f"state has {key} {state[key]!r}, this memory {getattr(self, key)!r}"
                )
        self._x = None if state["x"] is None else state["x"].clone()
        self._y = None if state["y"] is None else state["y"].clone()
        self._task = state["task"].clone()
        self._priority = state["priority"].clone()
        self._seen = int(state["seen"])
        self._task_seen = dict(zip(state["task_ids"], state["task_seen"], strict=True))
        self._max_priority = float(state["max_priority"])
        self._generator.set_state(state["generator"].clone())
