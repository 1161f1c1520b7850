"""Generative replay: the replay targets come from the snapshot taken at the task's start, the
penalty is scaled by the fraction of past tasks, the VAE keeps generating earlier tasks'
inputs after learning a new one, the state (optimizer included) round-trips, and it keeps an
earlier task better than fine-tuning."""

from __future__ import annotations

import pytest
import torch
from continual_support import (
    assert_continues_identically,
    assert_keeps_the_first_task,
    classifier,
    conflicting_tasks,
    hand_over,
)

from adaptd.adapters.continual.generative import GenerativeReplay
from adaptd.adapters.continual.protocol import ContinualModel, ContinualTask
from adaptd.adapters.continual.rehearsal import replay_losses
from adaptd.adapters.continual.training import TrainConfig
from adaptd.adapters.network import PolicyNet, init_params


def shifted(params: dict[str, torch.Tensor], by: float) -> dict[str, torch.Tensor]:
    return {k: v + by for k, v in params.items()}


SMALL = {"latent": 2, "hidden": 16, "epochs": 3, "batch_size": 32, "seed": 0}


def test_penalty_uses_the_snapshot_and_the_fraction_of_past_tasks() -> None:
    tasks = conflicting_tasks()
    model = classifier()
    replay = GenerativeReplay(**SMALL)  # type: ignore[arg-type]
    assert replay.penalty(model, model.params, tasks[0].train_x, tasks[0].train_y, tasks[0]) is None
    for t in range(3):
        replay.after_task(model, ContinualTask(t, *tasks[t % 2][1:]))
    new = ContinualTask(3, *tasks[1][1:])
    replay.before_task(model, new)
    snapshot = dict(model.params)
    moved = shifted(model.params, 0.05)
    # Redo the strategy's draws from a copy of its generator: the generated batch, the past
    # task of each input, and the snapshot's probabilities as targets.
    g = torch.Generator()
    g.set_state(replay.state_dict()["generator"])
    assert replay.vae is not None
    generated = replay.vae.sample(32, g)
    ids = torch.tensor([0, 1, 2])[torch.randint(3, (32,), generator=g)]
    targets = torch.softmax(model.output(snapshot, generated), -1).detach()
    expected = 0.75 * replay_losses(model, moved, generated, targets, ids, {}).mean()
    penalty = replay.penalty(model, moved, new.train_x, new.train_y, new)
    assert penalty is not None and float(penalty) == pytest.approx(float(expected), rel=1e-5)


def test_at_the_snapshot_the_penalty_is_the_entropy_of_its_predictions() -> None:
    (task, second), model = conflicting_tasks(), classifier()
    replay = GenerativeReplay(**SMALL)  # type: ignore[arg-type]
    replay.after_task(model, task)
    replay.before_task(model, second)
    # Soft cross-entropy against one's own predictions is their entropy: > 0, at most log 2.
    penalty = replay.penalty(model, model.params, second.train_x, second.train_y, second)
    assert penalty is not None and 0 < float(penalty) <= 0.5 * float(torch.log(torch.tensor(2)))
    hard = GenerativeReplay(targets="hard", **SMALL)  # type: ignore[arg-type]
    hard.after_task(model, task)
    hard.before_task(model, second)
    hard_penalty = hard.penalty(model, model.params, second.train_x, second.train_y, second)
    assert hard_penalty is not None and float(hard_penalty) < float(penalty)
    # Regression: targets are the snapshot's predictions, so the loss there is zero.
    net = PolicyNet(4, (8,))
    reg = ContinualModel(net, init_params(net, 0), loss="mse")
    rtask = ContinualTask(0, task.train_x, task.train_x[:, 0], task.test_x, task.test_x[:, 0])
    mse = GenerativeReplay(**SMALL)  # type: ignore[arg-type]
    mse.after_task(reg, rtask)
    mse.before_task(reg, rtask._replace(id=1))
    assert (
        float(mse.penalty(reg, reg.params, task.train_x, task.train_y, rtask._replace(id=1))) == 0
    )
    away = mse.penalty(
        reg, shifted(reg.params, 0.1), task.train_x, task.train_y, rtask._replace(id=1)
    )
    assert away is not None and float(away) > 0


def test_task_incremental_targets_use_a_past_tasks_classes() -> None:
    tasks = conflicting_tasks()
    model = classifier(out_dim=4)
    replay = GenerativeReplay(**SMALL)  # type: ignore[arg-type]
    first = tasks[0]._replace(classes=(2, 3), train_y=tasks[0].train_y + 2)
    replay.after_task(model, first)
    second = tasks[1]._replace(id=1, classes=(0, 1))
    replay.before_task(model, second)
    moved = shifted(model.params, 0.05)
    g = torch.Generator()
    g.set_state(replay.state_dict()["generator"])
    generated = replay.vae.sample(32, g)  # type: ignore[union-attr]
    ids = torch.zeros(32, dtype=torch.int64)
    torch.randint(1, (32,), generator=g)
    logits = model.output(model.params, generated)[:, 2:]
    targets = torch.zeros(32, 4)
    targets[:, 2:] = torch.softmax(logits, -1).detach()
    expected = 0.5 * replay_losses(model, moved, generated, targets, ids, {0: (2, 3)}).mean()
    penalty = replay.penalty(model, moved, second.train_x, second.train_y, second)
    assert penalty is not None and float(penalty) == pytest.approx(float(expected), rel=1e-5)


def test_the_generator_keeps_generating_earlier_tasks() -> None:
    g = torch.Generator().manual_seed(0)
    model = classifier()

    def task(t: int, centre: float) -> ContinualTask:
        x = torch.randn(300, 4, generator=g) * 0.5
        x[:, 0] += centre
        y = torch.zeros(300, dtype=torch.int64)
        return ContinualTask(t, x, y, x, y)

    options = {"latent": 2, "hidden": 32, "epochs": 15, "batch_size": 32, "lr": 1e-2}
    replay = GenerativeReplay(seed=0, **options)  # type: ignore[arg-type]
    replay.after_task(model, task(0, 3.0))
    first = replay.vae.sample(1000, g)  # type: ignore[union-attr]
    assert float(first[:, 0].mean()) == pytest.approx(3.0, abs=0.5)
    replay.after_task(model, task(1, -3.0))
    both = replay.vae.sample(2000, g)[:, 0]  # type: ignore[union-attr]
    assert 0.25 < float((both > 0).float().mean()) < 0.75  # still half task 0
    # Without its own samples of task 0 the generator would follow task 1 alone.
    fresh = GenerativeReplay(seed=0, **options)  # type: ignore[arg-type]
    fresh.after_task(model, task(1, -3.0))
    assert float((fresh.vae.sample(2000, g)[:, 0] > 0).float().mean()) < 0.1  # type: ignore[union-attr]


def test_generative_replay_keeps_the_first_task_better_than_fine_tuning() -> None:
    replay = GenerativeReplay(latent=2, hidden=32, epochs=30, batch_size=32, lr=1e-2, seed=0)
    assert_keeps_the_first_task(replay, learned=0.85)


def test_state_round_trips_with_the_optimizer() -> None:
    config = TrainConfig(epochs=2, lr=0.1, batch_size=16)
    replay = GenerativeReplay(**SMALL)  # type: ignore[arg-type]
    twin = GenerativeReplay(**{**SMALL, "seed": 9})  # type: ignore[arg-type]
    model = hand_over(replay, twin, config)
    assert twin.state_dict()["optimizer"]["state"]  # Adam's moments came along
    assert_continues_identically(model, replay, twin, config)
    ours, theirs = replay.state_dict()["vae"], twin.state_dict()["vae"]
    for k in ours:
        assert torch.equal(ours[k], theirs[k])


def test_bernoulli_needs_inputs_in_the_unit_interval() -> None:
    task, model = conflicting_tasks()[0], classifier()
    with pytest.raises(ValueError, match="bernoulli"):
        GenerativeReplay(likelihood="bernoulli", **SMALL).after_task(model, task)  # type: ignore[arg-type]
    pixels = task._replace(train_x=torch.sigmoid(task.train_x))
    GenerativeReplay(likelihood="bernoulli", **SMALL).after_task(model, pixels)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"latent": 0}, "latent"),
        ({"epochs": 0}, "epochs"),
        ({"lr": 0.0}, "lr"),
        ({"likelihood": "poisson"}, "likelihood"),
        ({"targets": "argmax"}, "targets"),
        ({"weight": -1.0}, "weight"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GenerativeReplay(**kwargs)
