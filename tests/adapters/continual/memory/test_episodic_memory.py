"""The episodic memory's store: it applies whatever its injected policies decide (a custom
inserter and sampler plug in), gives new items the largest priority so far, never modifies
what it is given, and its state (generator included) round-trips exactly."""

from __future__ import annotations

import io
from typing import ClassVar

import pytest
import torch
from memory_support import held_values, offer

from adaptd.adapters.continual.memory import (
    Draw,
    EpisodicMemory,
    MemoryView,
    Placement,
    PrioritizedSampler,
    QuotaInserter,
    StratifiedSampler,
    UniformSampler,
)


class KeepFirst:
    """An insertion policy that keeps the first ``capacity`` items offered and ignores the rest."""

    name: ClassVar[str] = "keep_first"

    def place(
        self, memory: MemoryView, count: int, task: int, generator: torch.Generator
    ) -> Placement:
        room = max(memory.capacity - len(memory.task), 0)
        none = torch.zeros(0, dtype=torch.int64)
        return Placement(None, torch.arange(min(count, room)), none, none)


class Newest:
    """A sampling policy that draws the ``n`` most recently stored slots, weighted 0.5."""

    uses_priorities: ClassVar[bool] = False

    def sample(self, memory: MemoryView, n: int, generator: torch.Generator) -> Draw:
        index = torch.arange(len(memory.task))[-n:].flip(0)
        return Draw(index, torch.full((len(index),), 0.5))


def test_custom_policies_plug_in_without_changing_the_store() -> None:
    memory = EpisodicMemory(5, inserter=KeepFirst(), sampler=Newest(), seed=0)
    offer(memory, torch.arange(3.0))
    offer(memory, torch.arange(10.0, 14.0), task=1)
    assert held_values(memory) == [0, 1, 2, 10, 11] and memory.seen == 7
    batch = memory.sample(2)
    assert batch.index.tolist() == [4, 3] and batch.weight.tolist() == [0.5, 0.5]
    assert batch.task.tolist() == [1, 1]
    assert memory.task_counts == {0: 3, 1: 4}


def test_new_items_get_the_largest_priority_so_far() -> None:
    memory = EpisodicMemory(10, seed=0)
    offer(memory, torch.arange(3.0))
    assert memory.priority.tolist() == [1.0, 1.0, 1.0]
    memory.update_priorities(torch.tensor([0, 1]), torch.tensor([5.0, 0.5]))
    offer(memory, torch.arange(3.0, 5.0))
    assert memory.priority[-2:].tolist() == pytest.approx([5.0 + 1e-6] * 2)
    assert memory.priority[1].item() == pytest.approx(0.5 + 1e-6)


def test_state_round_trips_exactly() -> None:
    for sampler in (UniformSampler(), PrioritizedSampler(), StratifiedSampler()):
        memory = EpisodicMemory(6, inserter=QuotaInserter(), sampler=sampler, seed=3)
        offer(memory, torch.arange(10.0), task=0)
        memory.update_priorities(torch.tensor([0, 2]), torch.tensor([2.0, 0.1]))
        buffer = io.BytesIO()
        torch.save(memory.state_dict(), buffer)
        buffer.seek(0)
        copy = EpisodicMemory(6, inserter=QuotaInserter(), sampler=sampler, seed=99)
        copy.load_state_dict(torch.load(buffer, weights_only=True))
        for m in (memory, copy):
            offer(m, torch.arange(100.0, 110.0), task=1)
        for _ in range(3):
            for u, v in zip(memory.sample(4), copy.sample(4), strict=True):
                assert torch.equal(u, v)
        assert memory.seen == copy.seen == 20
    with pytest.raises(ValueError, match="capacity"):
        EpisodicMemory(7, inserter=QuotaInserter()).load_state_dict(memory.state_dict())
    with pytest.raises(ValueError, match="insertion"):
        EpisodicMemory(6).load_state_dict(memory.state_dict())


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
        ({"capacity": 2, "inserter": "fifo"}, "inserter"),
        ({"capacity": 2, "sampler": "uniform"}, "sampler"),
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
    with pytest.raises(ValueError, match="n must"):
        memory.sample(-1)
