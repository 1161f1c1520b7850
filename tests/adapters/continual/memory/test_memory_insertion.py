"""Insertion into the episodic memory: Algorithm R keeps every offered item with probability
capacity / seen (over the whole stream, and within each task's quota), and quotas split the
capacity evenly, shrinking older tasks uniformly when a new one arrives."""

from __future__ import annotations

import torch
from memory_support import held_values, offer

from adaptd.adapters.continual.memory import (
    EpisodicMemory,
    Inserter,
    QuotaInserter,
    ReservoirInserter,
)
from adaptd.adapters.continual.memory.reservoir import algorithm_r


def test_reservoir_keeps_every_item_with_probability_capacity_over_seen() -> None:
    capacity, n, trials = 10, 50, 2000
    counts = torch.zeros(n)
    for seed in range(trials):
        memory = EpisodicMemory(capacity, inserter=ReservoirInserter(), seed=seed)
        # Uneven batches: the vectorised insertion must equal item-by-item Algorithm R.
        for lo, hi in ((0, 7), (7, 8), (8, 21), (21, 50)):
            offer(memory, torch.arange(lo, hi, dtype=torch.float32))
        assert len(memory) == capacity and memory.seen == n
        counts[held_values(memory)] += 1
    freq = counts / trials
    expected = capacity / n  # 0.2; binomial sd over 2000 trials ~ 0.009
    assert float((freq - expected).abs().max()) < 0.045
    # Early, middle and late items alike (a "replace any slot" bug favours late items).
    assert abs(float(freq[:10].mean()) - expected) < 0.02
    assert abs(float(freq[-10:].mean()) - expected) < 0.02


def test_the_vectorised_algorithm_r_is_item_by_item_algorithm_r() -> None:
    # One item at a time: the n-th item draws j uniformly below n and takes place j if j < room.
    for seed in range(20):
        g, h = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        places = list(range(5))  # item held by each place
        append, where, items = algorithm_r(0, 5, 23, g)
        assert append.tolist() == list(range(5))
        draws = torch.rand(18, generator=h, dtype=torch.float64)
        for i, u in zip(range(5, 23), draws.tolist(), strict=True):
            j = int(u * (i + 1))
            if j < 5:
                places[j] = i
        batch = list(range(5))
        for place, item in zip(where.tolist(), items.tolist(), strict=True):
            batch[place] = item
        assert batch == places


def test_quota_insertion_is_algorithm_r_within_each_task_share() -> None:
    trials, per_task = 800, 20
    counts = torch.zeros(3, per_task)
    for seed in range(trials):
        memory = EpisodicMemory(12, inserter=QuotaInserter(), seed=seed)
        for t in range(3):
            offer(memory, torch.arange(per_task, dtype=torch.float32) + 100 * t, task=t)
        assert memory.task.bincount().tolist() == [4, 4, 4]
        for v in held_values(memory):
            counts[v // 100, v % 100] += 1
    freq = counts / trials
    # Task 2 never had more than 4 slots (4 / 20); tasks 0 and 1 were cut down later from 12
    # and 6 by uniform removal, which keeps their samples uniform: 4 / 20 as well.
    assert float((freq - 0.2).abs().max()) < 0.075
    assert float((freq.mean(1) - 0.2).abs().max()) < 0.01


def test_quotas_split_the_capacity_evenly_and_shrink_older_tasks() -> None:
    memory = EpisodicMemory(10, inserter=QuotaInserter(), seed=0)
    quotas = lambda: QuotaInserter.quotas(memory.capacity, list(memory.task_counts))  # noqa: E731
    offer(memory, torch.arange(30.0), task=0)
    assert quotas() == {0: 10} and len(memory) == 10
    offer(memory, torch.arange(100.0, 102.0), task=1)  # a small task leaves room unused
    assert quotas() == {0: 5, 1: 5}
    assert memory.task.bincount().tolist() == [5, 2]
    offer(memory, torch.arange(200.0, 230.0), task=2)
    assert quotas() == {0: 4, 1: 3, 2: 3}  # the remainder goes to the earliest task
    assert memory.task.bincount().tolist() == [4, 2, 3]
    # Items stay with their own task.
    for value, task in zip(held_values(memory), memory.task.tolist(), strict=True):
        assert value // 100 == task


def test_the_policies_are_stateless_inserters_and_name_the_state() -> None:
    for inserter, name in ((ReservoirInserter(), "reservoir"), (QuotaInserter(), "quota")):
        assert isinstance(inserter, Inserter) and inserter.name == name
        assert inserter == type(inserter)() and hash(inserter) == hash(type(inserter)())
        memory = EpisodicMemory(4, inserter=inserter)
        assert memory.state_dict()["insertion"] == name
