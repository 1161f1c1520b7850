"""Experience replay: the penalty is the (importance-weighted) memory loss, prioritized replay
refreshes priorities, the stream mode fills the memory while training, the state round-trips,
and replay keeps an earlier task far better than plain fine-tuning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from continual_support import (
    SEQUENCE_CONFIG,
    assert_continues_identically,
    assert_keeps_the_first_task,
    classifier,
    conflicting_tasks,
    hand_over,
)

from adaptd.adapters.continual.memory import (
    EpisodicMemory,
    PrioritizedSampler,
    QuotaInserter,
    StratifiedSampler,
)
from adaptd.adapters.continual.protocol import ContinualTask, Strategy, restrict
from adaptd.adapters.continual.replay import ExperienceReplay


def test_penalty_is_the_weighted_loss_on_the_memory() -> None:
    model, (task, _) = classifier(), conflicting_tasks()
    replay = ExperienceReplay(capacity=20, batch_size=20, weight=0.3, seed=0)
    assert replay.penalty(model, model.params, task.train_x, task.train_y, task) is None
    replay.after_task(model, task)
    assert len(replay.memory) == 20 and replay.memory.seen == 150
    # batch_size == capacity: the batch is the whole memory, in some order.
    memory = replay.memory
    assert memory.x is not None and memory.y is not None
    all_losses = F.cross_entropy(model.output(model.params, memory.x), memory.y)
    penalty = replay.penalty(model, model.params, task.train_x, task.train_y, task)
    assert penalty is not None
    assert float(penalty) == pytest.approx(0.3 * float(all_losses), rel=1e-5)


def test_prioritized_penalty_is_importance_weighted_and_refreshes_priorities() -> None:
    model, (task, _) = classifier(), conflicting_tasks()
    replay = ExperienceReplay(capacity=30, batch_size=8, sampler=PrioritizedSampler(), seed=0)
    replay.after_task(model, task)
    replay.memory.update_priorities(torch.arange(30), torch.linspace(0.1, 3.0, 30))
    twin = EpisodicMemory(30, sampler=replay.sampler)
    twin.load_state_dict(replay.memory.state_dict())
    batch = twin.sample(8)  # what the strategy is about to draw
    assert batch.weight.min() < 1.0
    losses = F.cross_entropy(model.output(model.params, batch.x), batch.y, reduction="none")
    penalty = replay.penalty(model, model.params, task.train_x, task.train_y, task)
    assert penalty is not None
    assert float(penalty) == pytest.approx(float((batch.weight * losses).mean()), rel=1e-5)
    refreshed = replay.memory.priority[batch.index]
    assert torch.allclose(refreshed, losses.detach() + replay.memory.eps, atol=1e-6)


def test_stream_mode_fills_the_memory_while_training() -> None:
    model, tasks = classifier(), conflicting_tasks()
    replay = ExperienceReplay(capacity=40, store="stream", seed=0)
    task = tasks[0]
    first = replay.penalty(model, model.params, task.train_x[:16], task.train_y[:16], task)
    assert first is None and len(replay.memory) == 16
    second = replay.penalty(model, model.params, task.train_x[16:48], task.train_y[16:48], task)
    assert second is not None and len(replay.memory) == 40 and replay.memory.seen == 48
    replay.after_task(model, task)
    assert replay.memory.seen == 48  # nothing more offered at the end


def test_task_incremental_memory_is_scored_over_its_tasks_classes() -> None:
    model = classifier(out_dim=4)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(10, 4, generator=g)
    y = torch.tensor([2, 3] * 5)
    task = ContinualTask(0, x, y, x, y, classes=(2, 3))
    replay = ExperienceReplay(capacity=10, batch_size=10, seed=0)
    replay.after_task(model, task)
    penalty = replay.penalty(model, model.params, x, y, task)
    masked = F.cross_entropy(restrict(model.output(model.params, x), (2, 3)), y)
    assert penalty is not None and float(penalty) == pytest.approx(float(masked), rel=1e-5)
    assert replay.state_dict()["classes"] == [[0, [2, 3]]]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"sampler": PrioritizedSampler()},
        {"sampler": StratifiedSampler(), "inserter": QuotaInserter()},
        {"store": "stream"},
    ],
)
def test_replay_keeps_the_first_task_better_than_fine_tuning(options: dict) -> None:
    assert_keeps_the_first_task(ExperienceReplay(100, **options), learned=0.9)


def test_state_round_trips_and_continues_identically() -> None:
    replay = ExperienceReplay(50, sampler=PrioritizedSampler(), seed=4)
    twin = ExperienceReplay(50, sampler=PrioritizedSampler(), seed=0)
    model = hand_over(replay, twin, SEQUENCE_CONFIG)
    assert_continues_identically(model, replay, twin, SEQUENCE_CONFIG)
    with pytest.raises(ValueError, match="cannot load"):
        twin.load_state_dict(Strategy().state_dict())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"capacity": 0}, "capacity"),
        ({"batch_size": 0}, "batch_size"),
        ({"weight": -1.0}, "weight"),
        ({"sampler": "greedy"}, "sampler"),
        ({"inserter": "fifo"}, "inserter"),
        ({"store": "never"}, "store"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ExperienceReplay(**kwargs)
