"""PackNet: earlier tasks' predictions stay bit for bit, each task changes only the weights it
owns, the pruning keeps the right number of the largest free weights, freed weights are
redrawn, and a network with no free weight left stops learning without harming old tasks."""

from __future__ import annotations

import math

import pytest
import torch
from continual_support import teacher_task

from adaptd.adapters.continual.packnet import PackNet
from adaptd.adapters.continual.protocol import ContinualModel, ContinualTask
from adaptd.adapters.continual.training import TrainConfig, batch_loss, train_task
from adaptd.adapters.network import PolicyNet, init_params

CONFIG = TrainConfig(epochs=2, lr=0.3, batch_size=16)


def tiny_model(hidden: tuple[int, ...] = (8,), norm: str = "none") -> ContinualModel:
    net = PolicyNet(6, hidden, out_dim=4, norm=norm)  # type: ignore[arg-type]
    return ContinualModel(net, init_params(net, seed=0))


def task_of(i: int) -> ContinualTask:
    """A linear teacher of its own per task: the tasks conflict."""
    return teacher_task(i, seed=20 + i)


@pytest.mark.parametrize(
    ("optimizer", "norm", "hidden"),
    [("sgd", "none", (8,)), ("adam", "none", (8, 8)), ("sgd", "batch", (8,))],
)
def test_earlier_tasks_predictions_are_bit_identical(
    optimizer: str, norm: str, hidden: tuple[int, ...]
) -> None:
    model, packnet = tiny_model(hidden, norm), PackNet(prune=0.5, retrain_steps=5)
    config = TrainConfig(epochs=2, lr=0.05 if optimizer == "adam" else 0.3, optimizer=optimizer)  # type: ignore[arg-type]
    tasks = [task_of(i) for i in range(4)]
    outputs = []
    for task in tasks:
        train_task(model, packnet, task, config)
        outputs.append(packnet.predict(model, task.test_x, task))
    for task, output in zip(tasks, outputs, strict=True):
        assert torch.equal(packnet.predict(model, task.test_x, task), output)


def test_each_task_changes_only_free_weights_and_owns_a_disjoint_set() -> None:
    model, packnet = tiny_model(), PackNet(prune=0.5, retrain_steps=5)
    train_task(model, packnet, task_of(0), CONFIG)
    biases = {k: v for k, v in model.params.items() if k not in packnet.owner}
    for i in (1, 2):
        owner_before = {k: o.clone() for k, o in packnet.owner.items()}
        params_before = dict(model.params)
        train_task(model, packnet, task_of(i), CONFIG)
        for k, owner in packnet.owner.items():
            taken = owner_before[k] >= 0
            assert torch.equal(owner[taken], owner_before[k][taken])  # nobody steals
            assert torch.equal(model.params[k][taken], params_before[k][taken])
            assert bool((owner[~taken] != 0).all())  # new owners are the new task or free
            assert int((owner == i).sum()) > 0
    for k, v in biases.items():
        assert torch.equal(model.params[k], v), f"{k} trained after the first task"
    assert set(packnet.trainable(model, task_of(3)) or ()) == set(packnet.owner)


@pytest.mark.parametrize("prune", [0.5, 0.75, 0.3])
def test_pruning_keeps_the_largest_free_weights(prune: float) -> None:
    model, packnet = tiny_model(), PackNet(prune=prune, retrain_steps=0)
    for i in range(3):
        task = task_of(i)
        packnet.before_task(model, task)
        free = {k: o < 0 for k, o in packnet.owner.items()}
        trained = {k: v + 0.01 * torch.randn_like(v) for k, v in model.params.items()}
        model.params = trained
        packnet.after_task(model, task)
        for k, owner in packnet.owner.items():
            count = int(free[k].sum())
            kept = owner == i
            assert int(kept.sum()) == count - math.floor(prune * count + 1e-9)
            pruned = free[k] & ~kept
            magnitude = trained[k].abs()
            if bool(kept.any()) and bool(pruned.any()):
                assert float(magnitude[kept].min()) >= float(magnitude[pruned].max())
            assert torch.equal(model.params[k][kept], trained[k][kept])


def test_retraining_tunes_the_kept_weights_with_the_pruned_held_at_zero() -> None:
    task = task_of(0)
    runs = {}
    for steps in (0, 20):
        model = tiny_model()
        packnet = PackNet(prune=0.5, retrain_steps=steps, retrain_lr=0.5, reinit_scale=0.0)
        train_task(model, packnet, task, TrainConfig(epochs=1, lr=0.3))
        runs[steps] = (model, packnet)
    (plain, plain_packnet), (model, packnet) = runs[0], runs[20]
    for k, owner in packnet.owner.items():
        assert torch.equal(owner, plain_packnet.owner[k])  # retraining does not change owners
        kept = owner == 0
        assert not torch.equal(model.params[k][kept], plain.params[k][kept])
        assert bool((model.params[k][~kept] == 0).all())  # pruned stayed 0 (reinit_scale 0)

    def loss(model: ContinualModel, packnet: PackNet) -> float:
        net, served = packnet.packed_weights(model, 0)
        return float(
            batch_loss(ContinualModel(net, served), served, task.train_x, task.train_y, task)
        )

    assert loss(model, packnet) < loss(plain, plain_packnet)


def test_freed_weights_are_redrawn_small_and_seeded() -> None:
    runs = []
    for seed in (1, 1, 2):
        model, packnet = tiny_model(), PackNet(prune=0.5, retrain_steps=0, seed=seed)
        task = task_of(0)
        packnet.before_task(model, task)
        before = dict(model.params)
        packnet.after_task(model, task)
        for k, owner in packnet.owner.items():
            free = owner < 0
            bound = packnet.reinit_scale / math.sqrt(owner.shape[1])
            fresh = model.params[k][free]
            assert bool((fresh != 0).all())
            assert float(fresh.abs().max()) <= bound
            assert not torch.equal(fresh, before[k][free])
        runs.append(model.params["layers.0.weight"])
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_exhausted_capacity_stops_learning_and_keeps_old_tasks() -> None:
    model, packnet = tiny_model((2,)), PackNet(prune=0.5, retrain_steps=2)
    outputs = []
    tasks = [task_of(i) for i in range(8)]
    for task in tasks:
        train_task(model, packnet, task, CONFIG)
        outputs.append(packnet.predict(model, task.test_x, task))
    # 12 weights in the first matrix, 8 in the second: 6, 3, 1, 0 free and 4, 2, 1, 0 free
    assert all(f == 0.0 for f in packnet.free_fraction().values())
    before = dict(model.params)
    last = task_of(8)
    stats = train_task(model, packnet, last, CONFIG)
    assert stats.steps > 0
    assert all(torch.equal(model.params[k], v) for k, v in before.items())  # plasticity 0
    for task, output in zip(tasks, outputs, strict=True):
        assert torch.equal(packnet.predict(model, task.test_x, task), output)
    assert torch.equal(
        packnet.predict(model, last.test_x, last), packnet.predict(model, last.test_x, tasks[-1])
    )  # the last task is served by every earlier task's weights


def test_unpacked_task_sees_the_current_weights_and_memory_is_the_owner_tensors() -> None:
    model, packnet = tiny_model(), PackNet()
    task = task_of(0)
    expected = model.output(model.params, task.test_x)
    assert torch.equal(packnet.predict(model, task.test_x, task), expected)
    train_task(model, packnet, task, CONFIG)
    weights = sum(v.numel() for v in model.params.values() if v.ndim == 2)
    assert packnet.memory_bytes() == 4 * weights


def test_state_round_trips_through_torch_save(tmp_path) -> None:
    model, packnet = tiny_model(), PackNet(prune=0.5, retrain_steps=3, seed=7)
    for i in range(2):
        train_task(model, packnet, task_of(i), CONFIG)
    path = tmp_path / "packnet.pt"
    torch.save(packnet.state_dict(), path)
    fresh = PackNet(prune=0.5, retrain_steps=3, seed=7)
    fresh.load_state_dict(torch.load(path, weights_only=True))
    copy = ContinualModel(model.net, dict(model.params))
    train_task(model, packnet, task_of(2), CONFIG)
    train_task(copy, fresh, task_of(2), CONFIG)
    assert all(torch.equal(model.params[k], copy.params[k]) for k in model.params)
    assert all(torch.equal(packnet.owner[k], fresh.owner[k]) for k in packnet.owner)
    with pytest.raises(ValueError, match="packnet"):
        PackNet().load_state_dict({"name": "ewc"})


def test_bad_arguments_and_models_are_rejected() -> None:
    for kwargs, bad in [
        ({"prune": 1.0}, "prune"),
        ({"prune": 0}, "prune"),
        ({"retrain_steps": -1}, "retrain_steps"),
        ({"batch_size": 0}, "batch_size"),
        ({"retrain_lr": -0.1}, "retrain_lr"),
        ({"seed": "a"}, "seed"),
    ]:
        with pytest.raises(ValueError, match=bad):
            PackNet(**kwargs)  # type: ignore[arg-type]
    model, packnet = tiny_model(), PackNet()
    packnet.before_task(model, task_of(0))
    wider = tiny_model((9,))
    with pytest.raises(ValueError, match="owner"):
        packnet.before_task(wider, task_of(1))
