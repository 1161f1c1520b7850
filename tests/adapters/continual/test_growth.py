"""Growth: widening keeps the network's function, a plateau of high loss (and only that, or a
lack of free capacity) widens every hidden layer, ``max_hidden`` caps the width, and earlier
tasks keep exact predictions across widenings."""

from __future__ import annotations

import copy

import pytest
import torch
from continual_support import teacher_task

from adaptd.adapters.continual.growth import Growth, widen
from adaptd.adapters.continual.protocol import ContinualModel, ContinualTask
from adaptd.adapters.continual.training import TrainConfig, train_task
from adaptd.adapters.network import PolicyNet, forward, init_params


def tiny_model(hidden: tuple[int, ...] = (4,), loss: str = "cross_entropy") -> ContinualModel:
    net = PolicyNet(6, hidden, out_dim=4 if loss == "cross_entropy" else 1)
    return ContinualModel(net, init_params(net, seed=0), loss=loss)  # type: ignore[arg-type]


def task_of(i: int) -> ContinualTask:
    """A linear teacher of its own per task: the tasks conflict."""
    return teacher_task(i, seed=30 + i)


@pytest.mark.parametrize(
    ("hidden", "activation", "norm", "units"),
    [((5,), "tanh", "none", 3), ((5, 4), "relu", "none", (2, 0)), ((5, 4), "tanh", "batch", 2)],
)
def test_widen_keeps_the_function(
    hidden: tuple[int, ...], activation: str, norm: str, units: int | tuple[int, ...]
) -> None:
    net = PolicyNet(3, hidden, activation, out_dim=2, norm=norm)  # type: ignore[arg-type]
    params = init_params(net, seed=1)
    original = {k: v.clone() for k, v in params.items()}
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(0))
    rng = torch.get_rng_state()
    wide, wide_params = widen(net, params, units, seed=3)
    assert torch.equal(rng, torch.get_rng_state())  # the global RNG did not move
    extra = (units,) * len(hidden) if isinstance(units, int) else units
    assert wide.hidden == tuple(h + u for h, u in zip(hidden, extra, strict=True))
    assert set(wide_params) == {k for k, _ in wide.named_parameters()}
    torch.testing.assert_close(forward(wide, wide_params, x), forward(net, params, x))
    assert all(torch.equal(params[k], v) for k, v in original.items())  # inputs untouched
    first = wide_params[f"{wide.plan[0][1]}.weight"]
    new_rows = first[hidden[0] :]
    assert bool((new_rows != 0).all()) and float(new_rows.abs().max()) <= 0.1 / 3**0.5
    outgoing = wide_params[f"{wide.head}.weight"][:, hidden[-1] :]
    assert bool((outgoing == 0).all())


def test_widen_rejects_bad_units_and_linear_models() -> None:
    net = PolicyNet(3, (4, 4))
    with pytest.raises(ValueError, match="units"):
        widen(net, init_params(net, 0), (1,), seed=0)
    linear = PolicyNet(3, ())
    with pytest.raises(ValueError, match="hidden"):
        widen(linear, init_params(linear, 0), 2, seed=0)


def regression_task(target: float) -> ContinualTask:
    x = torch.randn(16, 6, generator=torch.Generator().manual_seed(0))
    y = torch.full((16,), target)
    return ContinualTask(0, x, y, x, y)


def drive(
    growth: Growth, model: ContinualModel, task: ContinualTask, losses_down: bool, steps: int
):
    """Call ``after_step`` ``steps`` times; with ``losses_down`` the output bias moves the
    prediction towards the target by a clear margin each time. Returns the step of the first
    widening (or None)."""
    growth.before_task(model, task)
    for step in range(steps):
        if losses_down:
            head = f"{model.net.head}.bias"
            model.params = {**model.params, head: model.params[head] + 0.5}
        net = model.net
        growth.after_step(model, model.params, model.params, {}, task)
        if model.net is not net:
            return step
    return None


def test_growth_triggers_on_a_plateau_of_high_loss_only() -> None:
    options = {"units": 3, "patience": 4, "threshold": 1.0, "min_delta": 1e-3}
    model = tiny_model(loss="mse")
    prediction = float(model.output(model.params, regression_task(0).train_x).mean())
    stuck_high = drive(Growth(**options), model, regression_task(prediction + 10), False, 20)
    assert stuck_high == 4  # the first step sets the best loss, 4 more without improvement
    assert model.net.hidden == (7,)
    low = tiny_model(loss="mse")
    assert drive(Growth(**options), low, regression_task(prediction + 0.1), False, 20) is None
    improving = tiny_model(loss="mse")
    assert drive(Growth(**options), improving, regression_task(prediction + 50), True, 20) is None
    assert improving.net.hidden == low.net.hidden == (4,)


def test_growth_is_capped_by_max_hidden() -> None:
    model = tiny_model(loss="mse")
    growth = Growth(units=3, patience=1, threshold=0.0, max_hidden=9)
    task = regression_task(100.0)
    growth.before_task(model, task)
    for _ in range(10):
        growth.after_step(model, model.params, model.params, {}, task)
    assert model.net.hidden == (9,)  # 4 -> 7 -> 9 (partial last step), then no more
    assert growth.growths == 2


def test_training_grows_through_train_task_and_keeps_old_tasks_exact() -> None:
    model = tiny_model((2,))
    growth = Growth(
        prune=0.5, retrain_steps=3, units=2, patience=3, min_delta=0.05, threshold=0.0, min_free=0.6
    )
    config = TrainConfig(epochs=12, lr=0.05, batch_size=8, optimizer="adam")
    tasks = [task_of(i) for i in range(3)]
    outputs, widths = [], []
    for task in tasks:
        train_task(model, growth, task, config)
        outputs.append(growth.predict(model, task.test_x, task))
        widths.append(model.net.hidden)
    assert (2,) < widths[0] < widths[1] < widths[2]  # plateaus in task 0, capacity after
    assert growth.widths == [list(w) for w in widths]
    for task, output in zip(tasks, outputs, strict=True):
        assert torch.equal(growth.predict(model, task.test_x, task), output)
    for k, owner in growth.owner.items():
        assert owner.shape == model.params[k].shape


def test_low_free_capacity_widens_before_a_task() -> None:
    model = tiny_model((2,))
    growth = Growth(prune=0.5, retrain_steps=0, units=2, patience=10_000, min_free=0.3)
    config = TrainConfig(epochs=1, lr=0.3)
    sizes = []
    for i in range(4):
        train_task(model, growth, task_of(i), config)
        sizes.append(model.net.hidden[0])
    # matrices of 12 and 8 weights: 6 and 4, then 3 and 2 free: 25 % < 30 % before task 2
    assert sizes[:2] == [2, 2]
    assert sizes[2] > 2
    assert growth.growths >= 1


def test_state_round_trips_and_rebuilds_the_net(tmp_path) -> None:
    model = tiny_model((2,))
    options = {"prune": 0.5, "retrain_steps": 2, "units": 2, "patience": 2, "min_delta": 0.01}
    growth = Growth(**options, threshold=0.0, max_hidden=10)
    config = TrainConfig(epochs=10, lr=0.3, batch_size=8)
    for i in range(2):
        train_task(model, growth, task_of(i), config)
    assert model.net.hidden != (2,)
    torch.save(growth.state_dict(), tmp_path / "growth.pt")
    fresh = Growth(**options, threshold=0.0, max_hidden=10)
    fresh.load_state_dict(torch.load(tmp_path / "growth.pt", weights_only=True))
    restored = copy.deepcopy(model)
    restored.net = tiny_model((2,)).net  # a checkpoint of the weights only
    first = task_of(0)
    assert torch.equal(
        fresh.predict(restored, first.test_x, first), growth.predict(model, first.test_x, first)
    )
    assert restored.net.hidden == model.net.hidden
    train_task(model, growth, task_of(2), config)
    train_task(restored, fresh, task_of(2), config)
    assert all(torch.equal(model.params[k], restored.params[k]) for k in model.params)
    assert fresh.growths == growth.growths


def test_bad_arguments_are_named() -> None:
    for kwargs, bad in [
        ({"units": 0}, "units"),
        ({"patience": 0}, "patience"),
        ({"threshold": -1.0}, "threshold"),
        ({"min_free": 1.0}, "min_free"),
        ({"max_hidden": 0}, "max_hidden"),
        ({"probe": 0}, "probe"),
        ({"prune": 2.0}, "prune"),
    ]:
        with pytest.raises(ValueError, match=bad):
            Growth(**kwargs)  # type: ignore[arg-type]
