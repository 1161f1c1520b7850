"""Sampling from the episodic memory: uniform draws distinct items, prioritized sampling
follows p^alpha with Schaul's importance weights, stratified sampling gives every task an
equal share (water-filling), and each policy is a stateless ``Sampler``."""

from __future__ import annotations

import pytest
import torch
from memory_support import offer

from adaptd.adapters.continual.memory import (
    EpisodicMemory,
    PrioritizedSampler,
    Sampler,
    StratifiedSampler,
    UniformSampler,
    fair_shares,
)


def test_fair_shares_water_fills() -> None:
    assert fair_shares(10, [5, 5]) == [5, 5]
    assert fair_shares(11, [20, 20, 20]) == [4, 4, 3]
    assert fair_shares(10, [1, 20, 20]) == [1, 5, 4]
    assert fair_shares(100, [3, 4]) == [3, 4]
    assert fair_shares(0, [3, 4]) == [0, 0]
    assert fair_shares(2, [0, 0, 5, 5]) == [0, 0, 1, 1]


def test_prioritized_sampling_follows_priority_to_the_alpha() -> None:
    sampler = PrioritizedSampler(alpha=0.5, beta=0.6)
    memory = EpisodicMemory(4, sampler=sampler, eps=1e-6, seed=0)
    offer(memory, torch.arange(4.0))
    memory.update_priorities(torch.arange(4), torch.tensor([1.0, -2.0, 3.0, 4.0]))
    p = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64) + 1e-6
    expected = p.sqrt() / p.sqrt().sum()
    assert torch.allclose(sampler.probabilities(memory.priority), expected)
    batch = memory.sample(40_000)
    freq = torch.bincount(batch.index, minlength=4).double() / 40_000
    assert float((freq - expected).abs().max()) < 0.01
    # w_i = (N P(i))^-beta / max_j (N P(j))^-beta, the max over the whole memory.
    raw = (4 * expected) ** -0.6
    weights = (raw / raw.max()).float()
    assert torch.allclose(batch.weight, weights[batch.index])
    assert torch.equal(batch.x.reshape(-1).long(), batch.index)


def test_stratified_gives_each_task_an_equal_share() -> None:
    memory = EpisodicMemory(100, sampler=StratifiedSampler(), seed=0)
    offer(memory, torch.arange(90.0), task=0)
    offer(memory, torch.arange(100.0, 110.0), task=1)
    batch = memory.sample(20)
    assert batch.task.bincount().tolist() == [10, 10]
    assert len(set(batch.index.tolist())) == 20
    # A task that runs out passes its share on.
    assert memory.sample(30).task.bincount().tolist() == [20, 10]
    # The remainder of an uneven split goes to each task equally often.
    memory.add(torch.zeros(10, 1), torch.zeros(10, dtype=torch.int64), task=2)
    extra = torch.zeros(3)
    for _ in range(600):
        shares = memory.sample(10).task.bincount(minlength=3)
        assert sorted(shares.tolist()) == [3, 3, 4]
        extra += shares == 4
    assert float((extra / 600 - 1 / 3).abs().max()) < 0.07


def test_uniform_sampling_draws_distinct_items() -> None:
    memory = EpisodicMemory(8, sampler=UniformSampler(), seed=0)
    assert len(memory.sample(4).index) == 0  # an empty memory gives an empty batch
    offer(memory, torch.arange(8.0))
    batch = memory.sample(5)
    assert len(set(batch.index.tolist())) == 5
    assert torch.equal(batch.x.reshape(-1).long(), batch.index)
    assert sorted(memory.sample(20).index.tolist()) == list(range(8))
    counts = torch.zeros(8)
    for _ in range(2000):
        counts[memory.sample(2).index] += 1
    assert float((counts / 2000 - 0.25).abs().max()) < 0.04


def test_the_samplers_are_stateless_and_say_whether_they_use_priorities() -> None:
    for sampler, uses in (
        (UniformSampler(), False),
        (PrioritizedSampler(), True),
        (StratifiedSampler(), False),
    ):
        assert isinstance(sampler, Sampler) and sampler.uses_priorities is uses
        assert sampler == type(sampler)()
    assert PrioritizedSampler() == PrioritizedSampler(alpha=0.6, beta=0.4)
    with pytest.raises(AttributeError):
        PrioritizedSampler().alpha = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"alpha": -1.0}, "alpha"), ({"beta": 2.0}, "beta"), ({"beta": -0.1}, "beta")],
)
def test_prioritized_refuses_bad_exponents(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PrioritizedSampler(**kwargs)
