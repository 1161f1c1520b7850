"""The episodic memory: Algorithm R keeps every offered item with probability capacity / seen
(whole stream and per task), quotas split the capacity evenly, prioritized sampling follows
p^alpha with Schaul's importance weights, stratified sampling gives every task an equal share,
and the state (generator included) round-trips exactly."""

from __future__ import annotations

import io

import pytest
import torch

from adaptd.adapters.continual.memory import EpisodicMemory, fair_shares


def offer(memory: EpisodicMemory, values: torch.Tensor, task: int = 0) -> None:
    """Offer ``values`` as items whose input is their own value (to identify them later)."""
    memory.add(values.reshape(-1, 1), torch.zeros(len(values), dtype=torch.int64), task)


def held_values(memory: EpisodicMemory) -> list[int]:
    assert memory.x is not None
    return memory.x.reshape(-1).long().tolist()


def test_reservoir_keeps_every_item_with_probability_capacity_over_seen() -> None:
    capacity, n, trials = 10, 50, 2000
    counts = torch.zeros(n)
    for seed in range(trials):
        memory = EpisodicMemory(capacity, seed=seed)
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


def test_quota_insertion_is_algorithm_r_within_each_task_share() -> None:
    trials, per_task = 800, 20
    counts = torch.zeros(3, per_task)
    for seed in range(trials):
        memory = EpisodicMemory(12, insertion="quota", seed=seed)
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
    memory = EpisodicMemory(10, insertion="quota", seed=0)
    offer(memory, torch.arange(30.0), task=0)
    assert memory.quotas() == {0: 10} and len(memory) == 10
    offer(memory, torch.arange(100.0, 102.0), task=1)  # a small task leaves room unused
    assert memory.quotas() == {0: 5, 1: 5}
    assert memory.task.bincount().tolist() == [5, 2]
    offer(memory, torch.arange(200.0, 230.0), task=2)
    assert memory.quotas() == {0: 4, 1: 3, 2: 3}  # the remainder goes to the earliest task
    assert memory.task.bincount().tolist() == [4, 2, 3]
    # Items stay with their own task.
    for value, task in zip(held_values(memory), memory.task.tolist(), strict=True):
        assert value // 100 == task


def test_fair_shares_water_fills() -> None:
    assert fair_shares(10, [5, 5]) == [5, 5]
    assert fair_shares(11, [20, 20, 20]) == [4, 4, 3]
    assert fair_shares(10, [1, 20, 20]) == [1, 5, 4]
    assert fair_shares(100, [3, 4]) == [3, 4]
    assert fair_shares(0, [3, 4]) == [0, 0]
    assert fair_shares(2, [0, 0, 5, 5]) == [0, 0, 1, 1]


def test_prioritized_sampling_follows_priority_to_the_alpha() -> None:
    memory = EpisodicMemory(4, alpha=0.5, beta=0.6, eps=1e-6, seed=0)
    offer(memory, torch.arange(4.0))
    memory.update_priorities(torch.arange(4), torch.tensor([1.0, -2.0, 3.0, 4.0]))
    p = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64) + 1e-6
    expected = p.sqrt() / p.sqrt().sum()
    assert torch.allclose(memory.probabilities(), expected)
    batch = memory.sample(40_000, "prioritized")
    freq = torch.bincount(batch.index, minlength=4).double() / 40_000
    assert float((freq - expected).abs().max()) < 0.01
    # w_i = (N P(i))^-beta / max_j (N P(j))^-beta, the max over the whole memory.
    raw = (4 * expected) ** -0.6
    weights = (raw / raw.max()).float()
    assert torch.allclose(batch.weight, weights[batch.index])
    assert torch.equal(batch.x.reshape(-1).long(), batch.index)


def test_new_items_get_the_largest_priority_so_far() -> None:
    memory = EpisodicMemory(10, seed=0)
    offer(memory, torch.arange(3.0))
    assert memory.priority.tolist() == [1.0, 1.0, 1.0]
    memory.update_priorities(torch.tensor([0, 1]), torch.tensor([5.0, 0.5]))
    offer(memory, torch.arange(3.0, 5.0))
    assert memory.priority[-2:].tolist() == pytest.approx([5.0 + 1e-6] * 2)
    assert memory.priority[1].item() == pytest.approx(0.5 + 1e-6)


def test_stratified_gives_each_task_an_equal_share() -> None:
    memory = EpisodicMemory(100, seed=0)
    offer(memory, torch.arange(90.0), task=0)
    offer(memory, torch.arange(100.0, 110.0), task=1)
    batch = memory.sample(20, "stratified")
    assert batch.task.bincount().tolist() == [10, 10]
    assert len(set(batch.index.tolist())) == 20
    # A task that runs out passes its share on.
    assert memory.sample(30, "stratified").task.bincount().tolist() == [20, 10]
    # The remainder of an uneven split goes to each task equally often.
    memory.add(torch.zeros(10, 1), torch.zeros(10, dtype=torch.int64), task=2)
    extra = torch.zeros(3)
    for _ in range(600):
        shares = memory.sample(10, "stratified").task.bincount(minlength=3)
        assert sorted(shares.tolist()) == [3, 3, 4]
        extra += shares == 4
    assert float((extra / 600 - 1 / 3).abs().max()) < 0.07


def test_uniform_sampling_draws_distinct_items() -> None:
    memory = EpisodicMemory(8, seed=0)
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


def test_state_round_trips_exactly() -> None:
    memory = EpisodicMemory(6, insertion="quota", seed=3)
    offer(memory, torch.arange(10.0), task=0)
    memory.update_priorities(torch.tensor([0, 2]), torch.tensor([2.0, 0.1]))
    buffer = io.BytesIO()
    torch.save(memory.state_dict(), buffer)
    buffer.seek(0)
    copy = EpisodicMemory(6, insertion="quota", seed=99)
    copy.load_state_dict(torch.load(buffer, weights_only=True))
    for m in (memory, copy):
        offer(m, torch.arange(100.0, 110.0), task=1)
    for strategy in ("uniform", "prioritized", "stratified"):
        a, b = memory.sample(4, strategy), copy.sample(4, strategy)  # type: ignore[arg-type]
        for u, v in zip(a, b, strict=True):
            assert torch.equal(u, v)
    assert memory.seen == copy.seen == 20
    with pytest.raises(ValueError, match="capacity"):
        EpisodicMemory(7, insertion="quota").load_state_dict(memory.state_dict())


def test_seeded_memories_repeat_and_differ_across_seeds() -> None:
    def run(seed: int) -> list[int]:
        memory = EpisodicMemory(5, seed=seed)
        offer(memory, torch.arange(40.0))
        return held_values(memory) + memory.sample(3).index.tolist()

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_does_not_modify_what_it_is_given() -> None:
    x, y = torch.arange(6.0).reshape(6, 1), torch.zeros(6, dtype=torch.int64)
    memory = EpisodicMemory(3, seed=0)
    memory.add(x, y, 0)
    memory.add(x + 10, y, 0)
    batch = memory.sample(3)
    batch.x.add_(100)
    assert torch.equal(x, torch.arange(6.0).reshape(6, 1))
    assert float(memory.x.max()) < 100  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"capacity": 0}, "capacity"),
        ({"capacity": 2, "insertion": "fifo"}, "insertion"),
        ({"capacity": 2, "alpha": -1.0}, "alpha"),
        ({"capacity": 2, "beta": 2.0}, "beta"),
        ({"capacity": 2, "eps": 0.0}, "eps"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EpisodicMemory(**kwargs)


def test_rejects_bad_calls() -> None:
    memory = EpisodicMemory(4)
    with pytest.raises(ValueError, match="priority"):
        memory.add(torch.zeros(3, 2), torch.zeros(3), 0, priority=0.0)
    with pytest.raises(ValueError, match="same length"):
        memory.add(torch.zeros(3, 2), torch.zeros(2), 0)
    memory.add(torch.zeros(3, 2), torch.zeros(3), 0)
    with pytest.raises(ValueError, match="shapes"):
        memory.add(torch.zeros(3, 5), torch.zeros(3), 0)
    with pytest.raises(ValueError, match="strategy"):
        memory.sample(2, "greedy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n must"):
        memory.sample(-1)
