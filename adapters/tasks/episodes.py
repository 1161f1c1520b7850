"""N-way K-shot episodes over any labelled array data set, from a chosen set of classes.

An episode (a ``Task`` with integer targets) picks ``n_way`` of the allowed classes, relabels
them ``0..n_way-1`` in a random order (so a class id carries no meaning across episodes),
and draws ``k_shot`` support and ``n_query`` query examples per class without replacement.
Support and query sets are shuffled, so no learner can rely on examples being grouped by class.

Held-out classes: build one sampler per class split (``split_classes``); a sampler never
draws a class outside the ``classes`` it was given.

Examples
--------
>>> import numpy as np
>>> x = np.arange(60, dtype=np.float32).reshape(30, 2)
>>> y = np.repeat(np.arange(6), 5)
>>> train, val, test = split_classes(y, 3, 1, 2, seed=0)
>>> sorted(set(train) | set(val) | set(test)) == list(range(6))
True
>>> sampler = EpisodeSampler(x, y, train, n_way=2, k_shot=1, n_query=3, seed=0)
>>> task = sampler.sample(4)[0]
>>> tuple(task.support_x.shape), tuple(task.query_x.shape), sorted(task.support_y.tolist())
((2, 2), (6, 2), [0, 1])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from ..checks import non_negative_int, positive_int
from ..protocol import Task

__all__ = ["EpisodeSampler", "split_classes"]


class EpisodeSampler:
    """Seeded N-way K-shot episodes drawn from the given classes of ``(x, y)``.

    Parameters
    ----------
    x
        Features ``(n, ...)``, any array-like; episodes carry them as float32 tensors.
    y
        Integer labels ``(n,)``.
    classes
        The classes episodes may use (e.g. the training split); each needs at least
        ``k_shot + n_query`` examples, and there must be at least ``n_way`` of them.
    n_way, k_shot, n_query
        Classes per episode, support examples per class, query examples per class.
    seed
        Seed of the private generator (the global RNG is never used).
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        classes: Iterable[int],
        *,
        n_way: int,
        k_shot: int,
        n_query: int,
        seed: int = 0,
    ) -> None:
        for name, value in (("n_way", n_way), ("k_shot", k_shot), ("n_query", n_query)):
            positive_int(name, value)
        features = np.asarray(x, dtype=np.float32)
        labels = np.asarray(y)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"y must be a 1-d integer array, got {labels.dtype} {labels.shape}")
        if features.ndim < 2 or len(features) != len(labels):
            raise ValueError(
                f"x must have shape (n, ...) with n = len(y) = {len(labels)}, got {features.shape}"
            )
        chosen = sorted({int(c) for c in classes})
        if len(chosen) < n_way:
            raise ValueError(f"n_way={n_way} needs at least {n_way} classes, got {len(chosen)}")
        members = {c: np.flatnonzero(labels == c) for c in chosen}
        need = k_shot + n_query
        short = {c: len(rows) for c, rows in members.items() if len(rows) < need}
        if short:
            raise ValueError(
                f"classes {sorted(short)} have fewer than k_shot + n_query = {need} examples "
                f"(counts {short})"
            )
        self.n_way = int(n_way)
        self.k_shot = int(k_shot)
        self.n_query = int(n_query)
        self.seed = seed
        self.classes: tuple[int, ...] = tuple(chosen)
        self._x = torch.from_numpy(np.ascontiguousarray(features))
        self._members = [members[c] for c in chosen]
        self._reset()

    def _reset(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def sample(self, batch: int) -> list[Task]:
        """``batch`` episodes; targets are int64 ids ``0..n_way-1``."""
        positive_int("batch", batch)
        return [self._episode() for _ in range(batch)]

    def _episode(self) -> Task:
        rng = self._rng
        k, q = self.k_shot, self.n_query
        picked = rng.choice(len(self.classes), size=self.n_way, replace=False)
        support, query = [], []
        for rows in (self._members[i] for i in picked):
            drawn = rng.choice(rows, size=k + q, replace=False)
            support.append(drawn[:k])
            query.append(drawn[k:])
        # Episode label j is the j-th picked class; `picked` is already in random order.
        s_rows, s_y = _shuffled(rng, support)
        q_rows, q_y = _shuffled(rng, query)
        return Task(self._x[s_rows], s_y, self._x[q_rows], q_y)

    def __repr__(self) -> str:
        return (
            f"EpisodeSampler(classes={len(self.classes)}, n_way={self.n_way}, "
            f"k_shot={self.k_shot}, n_query={self.n_query}, seed={self.seed})"
        )


def _shuffled(
    rng: np.random.Generator, per_class: Sequence[np.ndarray]
) -> tuple[torch.Tensor, torch.Tensor]:
    rows = np.concatenate(per_class)
    labels = np.repeat(np.arange(len(per_class)), [len(r) for r in per_class])
    order = rng.permutation(len(rows))
    return torch.from_numpy(rows[order]), torch.from_numpy(labels[order].astype(np.int64))


def split_classes(
    labels: Iterable[int], n_train: int, n_val: int, n_test: int, *, seed: int = 0
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Disjoint, seeded ``(train, val, test)`` class splits of the distinct ``labels``.

    Each split is sorted. Classes beyond ``n_train + n_val + n_test`` are left out.
    """
    for name, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        non_negative_int(name, value)
    distinct = np.unique(np.asarray(list(labels) if not hasattr(labels, "shape") else labels))
    total = n_train + n_val + n_test
    if total > len(distinct):
        raise ValueError(
            f"n_train + n_val + n_test = {total} exceeds the {len(distinct)} distinct classes"
        )
    order = np.random.default_rng(seed).permutation(distinct)
    cuts = np.cumsum([n_train, n_val])

    def _part(part: np.ndarray) -> tuple[int, ...]:
        return tuple(sorted(int(c) for c in part))

    return (
        _part(order[: cuts[0]]),
        _part(order[cuts[0] : cuts[1]]),
        _part(order[cuts[1] : total]),
    )
