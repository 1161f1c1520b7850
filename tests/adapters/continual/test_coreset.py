"""Core sets: herding matches the mean better than random picks and its prefixes are herding
sets too, k-center's covering radius is within twice the brute-forced optimum, and the replay
strategy splits its capacity over tasks and classes, shrinks older tasks to their
first-selected examples, round-trips its state and keeps an earlier task."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
import torch
from continual_support import (
    assert_continues_identically,
    assert_keeps_the_first_task,
    classifier,
    conflicting_tasks,
    hand_over,
)

from adaptd.adapters.continual.coreset import CoresetReplay, herding, k_center
from adaptd.adapters.continual.protocol import ContinualModel, ContinualTask
from adaptd.adapters.continual.training import TrainConfig
from adaptd.adapters.network import PolicyNet, init_params


def covering_radius(points: torch.Tensor, centres: torch.Tensor) -> float:
    return float(torch.cdist(points, points[centres]).min(1).values.max())


def test_herding_matches_the_mean_better_than_random_picks() -> None:
    g = torch.Generator().manual_seed(0)
    points = torch.randn(300, 5, generator=g) * torch.tensor([3.0, 1.0, 1.0, 0.5, 2.0])
    mean = points.mean(0)
    for k in (5, 10, 20):
        chosen = herding(points, k)
        assert len(set(chosen.tolist())) == k
        gap = float((points[chosen].mean(0) - mean).norm())
        random_gaps = torch.tensor(
            [
                float((points[torch.randperm(300, generator=g)[:k]].mean(0) - mean).norm())
                for _ in range(200)
            ]
        )
        assert gap < float(random_gaps.quantile(0.02))
        assert gap < float(random_gaps.mean()) / 3


def test_herding_prefixes_are_herding_sets() -> None:
    points = torch.randn(50, 3, generator=torch.Generator().manual_seed(1))
    full = herding(points, 20)
    for k in (0, 1, 7, 20):
        assert torch.equal(herding(points, k), full[:k])
    assert sorted(herding(points, 50).tolist()) == list(range(50))


def test_k_center_is_within_twice_the_optimal_radius() -> None:
    for seed in range(5):
        points = torch.randn(10, 2, generator=torch.Generator().manual_seed(seed))
        for k in (2, 3):
            optimum = min(
                covering_radius(points, torch.tensor(c))
                for c in itertools.combinations(range(10), k)
            )
            for start in range(3):
                chosen = k_center(points, k, seed=start)
                assert len(set(chosen.tolist())) == k
                assert covering_radius(points, chosen) <= 2 * optimum + 1e-9


def test_k_center_adds_the_farthest_point_each_time() -> None:
    points = torch.tensor([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [5.0, 0.0], [0.0, 4.0]])
    chosen = k_center(points, 4, seed=0).tolist()
    first = chosen[0]
    assert chosen == k_center(points, 4, seed=0).tolist()
    taken = [first]
    for j in chosen[1:]:
        distance = torch.cdist(points, points[taken]).min(1).values
        assert float(distance[j]) == float(distance.max())
        taken.append(j)


@pytest.mark.parametrize("select", [herding, lambda p, k: k_center(p, k, seed=0)])
def test_selection_rejects_bad_arguments(
    select: Callable[[torch.Tensor, int], torch.Tensor],
) -> None:
    with pytest.raises(ValueError, match="k must"):
        select(torch.zeros(3, 2), 4)
    with pytest.raises(ValueError, match="2-d"):
        select(torch.zeros(3), 1)


def labelled(task_id: int, n_per_class: int, classes: tuple[int, ...]) -> ContinualTask:
    """A task whose inputs say which task and example they are (x[:, 0] = 1000 t + i)."""
    y = torch.tensor(classes).repeat_interleave(n_per_class)
    x = torch.randn(len(y), 4, generator=torch.Generator().manual_seed(task_id))
    x[:, 0] = 1000.0 * task_id + torch.arange(len(y))
    return ContinualTask(task_id, x, y, x, y)


def held(coreset: CoresetReplay) -> list[int]:
    state = coreset.state_dict()
    return sorted(state["x"][:, 0].long().tolist())


def test_capacity_is_split_over_tasks_and_classes_keeping_first_selected() -> None:
    net = PolicyNet(4, (8,), out_dim=3)
    model = ContinualModel(net, init_params(net, 0))
    coreset = CoresetReplay(capacity=12, space="input")
    first = labelled(0, 10, (0, 1))
    coreset.after_task(model, first)
    assert coreset.counts() == {0: 12}
    picks = {c: herding(first.train_x[first.train_y == c], 6) for c in (0, 1)}
    expected = sorted(
        int(first.train_x[first.train_y == c][i, 0]) for c in (0, 1) for i in picks[c]
    )
    assert held(coreset) == expected
    coreset.after_task(model, labelled(1, 10, (1, 2)))
    assert coreset.counts() == {0: 6, 1: 6}
    kept_first = sorted(
        int(first.train_x[first.train_y == c][i, 0]) for c in (0, 1) for i in picks[c][:3]
    )
    assert [v for v in held(coreset) if v < 1000] == kept_first
    state = coreset.state_dict()
    assert state["group"][state["task"] == 1].bincount().tolist() == [0, 3, 3]


def test_a_small_class_or_task_passes_its_share_on() -> None:
    net = PolicyNet(4, (8,), out_dim=2)
    model = ContinualModel(net, init_params(net, 0))
    coreset = CoresetReplay(capacity=10, selection="k_center", space="input")
    y = torch.tensor([0] * 2 + [1] * 20)
    x = torch.randn(22, 4, generator=torch.Generator().manual_seed(0))
    coreset.after_task(model, ContinualTask(0, x, y, x, y))
    state = coreset.state_dict()
    assert state["y"].bincount().tolist() == [2, 8]
    coreset.after_task(model, ContinualTask(1, x[:3], y[:3], x[:3], y[:3]))
    assert coreset.counts() == {0: 7, 1: 3}


def test_regression_tasks_form_one_group_per_task() -> None:
    net = PolicyNet(4, (8,))
    model = ContinualModel(net, init_params(net, 0), loss="mse")
    coreset = CoresetReplay(capacity=8, seed=0)
    g = torch.Generator().manual_seed(3)
    for t in range(2):
        x, y = torch.randn(30, 4, generator=g), torch.randn(30, generator=g)
        coreset.after_task(model, ContinualTask(t, x, y, x, y))
    assert coreset.counts() == {0: 4, 1: 4}
    penalty = coreset.penalty(model, model.params, x, y, ContinualTask(2, x, y, x, y))
    assert penalty is not None and penalty.ndim == 0 and float(penalty) > 0


@pytest.mark.parametrize(
    "options", [{"selection": "herding"}, {"selection": "k_center"}, {"space": "input"}]
)
def test_coreset_replay_keeps_the_first_task_better_than_fine_tuning(options: dict) -> None:
    task, coreset = conflicting_tasks()[0], CoresetReplay(100, **options)
    assert coreset.penalty(classifier(), {}, task.train_x, task.train_y, task) is None
    assert_keeps_the_first_task(coreset, learned=0.9)


def test_state_round_trips_and_continues_identically() -> None:
    config = TrainConfig(epochs=3, lr=0.1, batch_size=16)
    coreset = CoresetReplay(40, selection="k_center", seed=2)
    twin = CoresetReplay(40, selection="k_center", seed=0)
    model = hand_over(coreset, twin, config)
    assert_continues_identically(model, coreset, twin, config)
    assert held(coreset) == held(twin)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"capacity": 0}, "capacity"),
        ({"selection": "random"}, "selection"),
        ({"space": "latent"}, "space"),
        ({"batch_size": 0}, "batch_size"),
        ({"weight": -1.0}, "weight"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CoresetReplay(**kwargs)
