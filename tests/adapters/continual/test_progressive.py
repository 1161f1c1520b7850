"""Progressive networks: the PolicyNet becomes column 0 unchanged, earlier columns are frozen
bit for bit, only the newest column and its laterals train, the laterals are used, the
parameter count grows by the formula, and the state rebuilds the architecture."""

from __future__ import annotations

import copy

import pytest
import torch
from continual_support import teacher_task

from adaptd.adapters.continual.columns import ProgressiveNet
from adaptd.adapters.continual.progressive import ProgressiveNets
from adaptd.adapters.continual.protocol import ContinualModel, ContinualTask
from adaptd.adapters.continual.training import TrainConfig, score, train_task
from adaptd.adapters.network import PolicyNet, forward, init_params

CONFIG = TrainConfig(epochs=3, lr=0.3, batch_size=16)


def tiny_model(hidden: tuple[int, ...] = (8, 8)) -> ContinualModel:
    net = PolicyNet(6, hidden, out_dim=4)
    return ContinualModel(net, init_params(net, seed=0))


def task_of(i: int) -> ContinualTask:
    """A linear teacher of its own per task: the tasks conflict."""
    return teacher_task(i, seed=10 + i)


def test_first_task_converts_the_policy_net_keeping_its_function() -> None:
    model, task = tiny_model(), task_of(0)
    before = model.output(model.params, task.test_x)
    strategy = ProgressiveNets()
    strategy.before_task(model, task)
    assert isinstance(model.net, ProgressiveNet)
    assert strategy.columns == 1
    assert "columns.0.layers.0.weight" in model.params
    assert torch.equal(strategy.predict(model, task.test_x, task), before)


def test_earlier_columns_are_frozen_bit_for_bit() -> None:
    model, strategy = tiny_model(), ProgressiveNets(seed=1)
    tasks = [task_of(i) for i in range(3)]
    outputs, weights = [], []
    for task in tasks:
        train_task(model, strategy, task, CONFIG)
        outputs.append(strategy.predict(model, task.test_x, task))
        weights.append(dict(model.params))
        if task.id == 0:
            learned = score(model, strategy, task)
    assert (strategy.columns, model.net.columns_count) == (3, 3)
    for j, task in enumerate(tasks):
        assert torch.equal(strategy.predict(model, task.test_x, task), outputs[j])
        for k, v in weights[j].items():
            assert torch.equal(model.params[k], v), k
    assert score(model, strategy, tasks[0]) == learned > 0.4  # chance is 0.25


def test_only_the_newest_column_and_its_laterals_train() -> None:
    model, strategy = tiny_model(), ProgressiveNets()
    for i in range(2):
        train_task(model, strategy, task_of(i), CONFIG)
    before = dict(model.params)
    train_task(model, strategy, task_of(2), CONFIG)
    names = set(strategy.trainable(model, task_of(2)) or ())
    assert names == set(model.net.column_names(2))
    assert {"laterals.2.0.0.weight", "laterals.2.1.1.weight"} <= names
    for k, v in model.params.items():
        if k in names:
            assert k not in before or not torch.equal(v, before[k]), f"{k} did not train"
        else:
            assert torch.equal(v, before[k]), f"{k} changed"


def test_new_column_reads_earlier_columns_through_its_laterals() -> None:
    model, strategy = tiny_model(), ProgressiveNets()
    for i in range(2):
        train_task(model, strategy, task_of(i), CONFIG)
    net, x = model.net, task_of(1).test_x
    first = "columns.0.layers.0.weight"

    def with_column_0_changed(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {**params, first: params[first] * 2}

    assert not torch.equal(
        net.run(with_column_0_changed(model.params), x, 1), net.run(model.params, x, 1)
    )
    cut = {
        k: torch.zeros_like(v) if k.startswith("laterals.") else v for k, v in model.params.items()
    }
    assert torch.equal(net.run(with_column_0_changed(cut), x, 1), net.run(cut, x, 1))


def test_max_lateral_limits_the_sources_and_the_growth() -> None:
    model, strategy = tiny_model(), ProgressiveNets(max_lateral=1)
    counts = []
    for i in range(4):
        train_task(model, strategy, task_of(i), TrainConfig(epochs=1, lr=0.3))
        counts.append(model.parameter_count())
    per_column = (6 + 1) * 8 + (8 + 1) * 8 + (8 + 1) * 4
    per_source = 8 * 8 + 8 * 4
    assert counts == [(c + 1) * per_column + c * per_source for c in range(4)]
    assert "laterals.3.0.2.weight" in model.params
    assert not any(k.startswith("laterals.3.") and k.endswith(".1.weight") for k in model.params)


def test_task_ids_map_to_columns() -> None:
    model, strategy = tiny_model(), ProgressiveNets()
    for i in range(2):
        train_task(model, strategy, task_of(i), TrainConfig(epochs=1, lr=0.3))
    unseen = task_of(7)
    newest = model.net.run(model.params, unseen.test_x, 1)
    assert torch.equal(strategy.predict(model, unseen.test_x, unseen), newest)
    strategy.before_task(model, task_of(1))  # the newest column's task again: no new column
    assert strategy.columns == 2
    strategy.before_task(model, task_of(0))  # an older task again: a column of its own
    assert (strategy.columns, strategy.column_of[0], strategy.column_of[1]) == (3, 2, 1)


def test_untrained_strategy_predicts_with_the_model() -> None:
    model, task = tiny_model(), task_of(0)
    strategy = ProgressiveNets()
    expected = forward(model.net, model.params, task.test_x)
    assert torch.equal(strategy.predict(model, task.test_x, task), expected)
    assert strategy.trainable(model, task) is None
    assert strategy.memory_bytes() == 0


def test_state_rebuilds_the_architecture_of_a_checkpointed_model(tmp_path) -> None:
    model, strategy = tiny_model(), ProgressiveNets(max_lateral=1, seed=3)
    for i in range(2):
        train_task(model, strategy, task_of(i), TrainConfig(epochs=1, lr=0.3))
    path = tmp_path / "state.pt"
    torch.save({"strategy": strategy.state_dict(), "params": model.params}, path)
    saved = torch.load(path, weights_only=True)
    # a model rebuilt from its weights alone: the net is the original PolicyNet again
    restored = tiny_model()
    restored.params = saved["params"]
    fresh = ProgressiveNets(max_lateral=1, seed=3)
    fresh.load_state_dict(saved["strategy"])
    first = task_of(0)
    expected = strategy.predict(model, first.test_x, first)
    assert torch.equal(fresh.predict(restored, first.test_x, first), expected)
    assert isinstance(restored.net, ProgressiveNet)
    train_task(model, strategy, task_of(2), TrainConfig(epochs=1, lr=0.3))
    train_task(restored, fresh, task_of(2), TrainConfig(epochs=1, lr=0.3))
    assert all(torch.equal(model.params[k], restored.params[k]) for k in model.params)
    broken = tiny_model()
    broken.params = {**saved["params"], "extra": torch.zeros(1)}
    with pytest.raises(ValueError, match="columns"):
        fresh.predict(broken, first.test_x, first)
    with pytest.raises(ValueError, match="max_lateral"):
        ProgressiveNets().load_state_dict(saved["strategy"])


def test_seeded_columns_repeat() -> None:
    runs = []
    for seed in (4, 4, 5):
        model, strategy = tiny_model(), ProgressiveNets(seed=seed)
        for i in range(2):
            strategy.before_task(model, task_of(i))
        runs.append(model.params["laterals.1.0.0.weight"])
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_bad_arguments_and_models_are_rejected() -> None:
    with pytest.raises(ValueError, match="max_lateral"):
        ProgressiveNets(max_lateral=-1)
    with pytest.raises(ValueError, match="seed"):
        ProgressiveNets(seed=1.5)  # type: ignore[arg-type]
    net = PolicyNet(6, (8,), out_dim=4, norm="batch")
    model = ContinualModel(net, init_params(net, seed=0))
    with pytest.raises(ValueError, match="normalisation"):
        ProgressiveNets().before_task(model, task_of(0))
    assert copy.deepcopy(ProgressiveNets(max_lateral=2)).max_lateral == 2
