"""What the rehearsal strategies share: per-example losses restricted to each example's task
classes, the classes kept by task id (a task seen again is the newest), and a memory state
that is refused without changing anything."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from continual_support import classifier, conflicting_tasks

from adaptd.adapters.continual.agem import AGEM
from adaptd.adapters.continual.coreset import CoresetReplay
from adaptd.adapters.continual.gem import GEM
from adaptd.adapters.continual.generative import GenerativeReplay
from adaptd.adapters.continual.protocol import ContinualModel, restrict
from adaptd.adapters.continual.rehearsal import (
    MemoryRehearsal,
    Rehearsal,
    class_mask,
    replay_losses,
    restrict_to_tasks,
)
from adaptd.adapters.continual.replay import ExperienceReplay
from adaptd.adapters.network import PolicyNet, init_params


def test_replay_losses_restrict_each_example_to_its_task_classes() -> None:
    model = classifier(out_dim=4)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(6, 4, generator=g), torch.tensor([0, 1, 2, 3, 1, 3])
    ids = torch.tensor([0, 0, 1, 1, 2, 2])
    classes = {0: (0, 1), 1: (2, 3), 2: None}
    got = replay_losses(model, model.params, x, y, ids, classes)
    out = model.output(model.params, x)
    for i in range(6):
        logits = restrict(out[i : i + 1], classes[int(ids[i])])
        assert got[i] == pytest.approx(float(F.cross_entropy(logits, y[i : i + 1])), abs=1e-6)
    mask = class_mask(ids, classes, 4)
    assert mask is not None and mask.tolist()[2] == [False, False, True, True]
    assert class_mask(ids, {}, 4) is None
    # One-hot soft targets give the hard-label loss; regression is the squared error.
    onehot = F.one_hot(y, 4).float()
    assert torch.allclose(replay_losses(model, model.params, x, onehot, ids, classes), got)
    net = PolicyNet(4, (8,))
    reg = ContinualModel(net, init_params(net, seed=0), loss="mse")
    target = torch.randn(6, generator=g)
    expected = (reg.output(reg.params, x) - target) ** 2
    assert torch.allclose(replay_losses(reg, reg.params, x, target, ids, {}), expected)


def test_restrict_to_tasks_masks_only_rows_of_tasks_with_classes() -> None:
    out = torch.arange(8.0).reshape(2, 4)
    same, keep = restrict_to_tasks(out, torch.tensor([0, 1]), {0: None})
    assert same is out and keep is None
    masked, keep = restrict_to_tasks(out, torch.tensor([0, 1]), {1: (1, 2)})
    assert masked[0].tolist() == out[0].tolist()
    assert masked[1].tolist() == [float("-inf"), 5.0, 6.0, float("-inf")]
    assert keep is not None and keep.tolist()[1] == [False, True, True, False]


@pytest.mark.parametrize(
    "strategy",
    [
        ExperienceReplay(capacity=10),
        AGEM(capacity=10),
        GEM(memory_per_task=5),
        CoresetReplay(capacity=10),
        GenerativeReplay(epochs=1, batch_size=16),
    ],
    ids=lambda s: s.name,
)
def test_every_rehearsal_strategy_keeps_the_classes_newest_last(strategy: Rehearsal) -> None:
    model = classifier(out_dim=4)
    first, second = conflicting_tasks()
    tasks = [first._replace(classes=(0, 1)), second._replace(classes=(2, 3))]
    for task in (*tasks, tasks[0]):
        strategy.after_task(model, task)
    assert list(strategy.state_dict()["classes"]) == [[1, [2, 3]], [0, [0, 1]]]
    assert strategy._past(tasks[0]) == [1]


def test_a_memory_state_of_another_capacity_is_refused_and_changes_nothing() -> None:
    model, (task, _) = classifier(), conflicting_tasks()
    small, large = ExperienceReplay(capacity=5), ExperienceReplay(capacity=10)
    small.after_task(model, task)
    before = large.state_dict()
    assert isinstance(large, MemoryRehearsal)
    with pytest.raises(ValueError, match="capacity"):
        large.load_state_dict(small.state_dict())
    assert large.state_dict()["classes"] == before["classes"] == []
    assert len(large.memory) == 0
