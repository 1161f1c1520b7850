"""What Reptile and FOMAML share: the MetaLearner contract, seeding, state and argument checks."""

from __future__ import annotations

import io

import pytest
import torch

from adaptd.adapters.fast_weights import BACKENDS
from adaptd.adapters.meta import FOMAML, Reptile
from adaptd.adapters.network import PolicyNet
from adaptd.adapters.protocol import MetaLearner, Task

LEARNERS = [Reptile, FOMAML]


def _batches(make_task, seed: int, n_batches: int = 3, size: int = 4) -> list[list[Task]]:
    g = torch.Generator().manual_seed(seed)
    return [[make_task(g) for _ in range(size)] for _ in range(n_batches)]


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("cls", LEARNERS)
def test_is_a_meta_learner_with_public_arguments(cls) -> None:
    net = PolicyNet(4, (8,))
    learner = cls(net, inner_steps=3, inner_lr=0.02, meta_lr=0.5, backend="func", seed=9)
    assert isinstance(learner, MetaLearner)
    assert (learner.net, learner.inner_steps, learner.inner_lr) == (net, 3, 0.02)
    assert (learner.meta_lr, learner.backend, learner.seed, learner.updates) == (0.5, "func", 9, 0)


def test_defaults() -> None:
    net = PolicyNet(4, (8,))
    reptile, fomaml = Reptile(net), FOMAML(net)
    assert (reptile.inner_steps, reptile.inner_lr, reptile.meta_lr) == (5, 0.05, 0.1)
    assert (fomaml.inner_steps, fomaml.inner_lr, fomaml.meta_lr) == (5, 0.05, 1e-3)
    assert reptile.backend == fomaml.backend == "autograd"
    assert _same(reptile.params, fomaml.params)  # same seed, same initialisation


@pytest.mark.parametrize("cls", LEARNERS)
@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"inner_steps": 0}, "inner_steps"),
        ({"inner_steps": 1.5}, "inner_steps"),
        ({"inner_lr": -0.1}, "inner_lr"),
        ({"meta_lr": 0.0}, "meta_lr"),
        ({"meta_lr": float("inf")}, "meta_lr"),
        ({"backend": "jax"}, "jax"),
        ({"seed": "zero"}, "seed"),
    ],
)
def test_invalid_arguments_are_named(cls, kwargs: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        cls(PolicyNet(4, (8,)), **kwargs)
    with pytest.raises(ValueError, match="PolicyNet"):
        cls(torch.nn.Linear(4, 1))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls", LEARNERS)
def test_seeded_runs_repeat_exactly(cls, backend: str, make_task) -> None:
    runs = []
    for _ in range(2):
        learner = cls(PolicyNet(4, (8, 8)), backend=backend, seed=3)
        stats = [learner.meta_update(batch)[:3] for batch in _batches(make_task, seed=1)]
        runs.append((learner.params, stats))
    assert _same(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    other = cls(PolicyNet(4, (8, 8)), backend=backend, seed=4)
    assert not _same(other.params, cls(PolicyNet(4, (8, 8)), backend=backend, seed=3).params)


@pytest.mark.parametrize("cls", LEARNERS)
def test_state_dict_round_trip_continues_identically(cls, make_task) -> None:
    net = PolicyNet(4, (8,))
    batches = _batches(make_task, seed=2, n_batches=4)
    original = cls(net, meta_lr=0.01, seed=0)
    for batch in batches[:2]:
        original.meta_update(batch)
    saved = original.state_dict()
    buffer = io.BytesIO()
    torch.save(saved, buffer)  # the daemon checkpoints it this way
    restored = cls(net, meta_lr=0.01, seed=99)
    restored.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    assert _same(restored.params, original.params)
    assert restored.updates == 2
    for batch in batches[2:]:
        assert original.meta_update(batch)[:3] == restored.meta_update(batch)[:3]
    assert _same(restored.params, original.params)
    # The saved state is a copy: the later updates did not change it.
    assert saved["updates"] == 2
    assert not _same(saved["params"], original.params)


@pytest.mark.parametrize("cls", LEARNERS)
def test_foreign_or_misshapen_state_is_refused(cls) -> None:
    learner = cls(PolicyNet(4, (8,)))
    other = (FOMAML if cls is Reptile else Reptile)(PolicyNet(4, (8,)))
    with pytest.raises(ValueError, match="algorithm"):
        learner.load_state_dict(other.state_dict())
    wider = cls(PolicyNet(4, (16,))).state_dict()
    with pytest.raises(ValueError, match=r"layers\.0\.weight has shape \(16, 4\)"):
        learner.load_state_dict(wider)
    deeper = cls(PolicyNet(4, (8, 8))).state_dict()
    with pytest.raises(ValueError, match="do not match"):
        learner.load_state_dict(deeper)


@pytest.mark.parametrize("cls", LEARNERS)
def test_served_net_and_earlier_snapshots_are_never_modified(cls, make_task) -> None:
    net = PolicyNet(4, (8,))
    net_before = {k: v.clone() for k, v in net.state_dict().items()}
    learner = cls(net, meta_lr=0.05)
    snapshot = learner.params
    snapshot_copy = {k: v.clone() for k, v in snapshot.items()}
    (batch,) = _batches(make_task, seed=3, n_batches=1)
    learner.meta_update(batch)
    learner.adapt(batch[0].support_x, batch[0].support_y)
    assert _same(net.state_dict(), net_before)
    assert _same(snapshot, snapshot_copy)
    assert not _same(learner.params, snapshot)
    assert not any(v.requires_grad for v in learner.params.values())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls", LEARNERS)
def test_one_shot_tasks_work(cls, backend: str, make_task) -> None:
    g = torch.Generator().manual_seed(4)
    tasks = [make_task(g, shots=1, queries=1) for _ in range(3)]
    learner = cls(PolicyNet(4, (8,)), backend=backend)
    stats = learner.meta_update(tasks)
    assert stats.tasks == 3
    result = learner.adapt(tasks[0].support_x, tasks[0].support_y)
    assert result.steps == learner.inner_steps


@pytest.mark.parametrize("cls", LEARNERS)
def test_bad_batches_are_refused_with_the_task_named(cls, make_task) -> None:
    learner = cls(PolicyNet(4, (8,)))
    with pytest.raises(ValueError, match="tasks is empty"):
        learner.meta_update([])
    g = torch.Generator().manual_seed(5)
    good = make_task(g)
    bad = good._replace(query_x=good.query_x[:, :3])
    with pytest.raises(ValueError, match=r"task 1: query_x must have shape \(n >= 1, 4\)"):
        learner.meta_update([good, bad])
    short = good._replace(support_y=good.support_y[:-1])
    with pytest.raises(ValueError, match="task 0: support_y"):
        learner.meta_update([short])


@pytest.mark.parametrize("cls", LEARNERS)
def test_adapt_uses_the_learner_settings_and_deadline(cls, make_task) -> None:
    learner = cls(PolicyNet(4, (8,)), inner_steps=4)
    task = make_task(torch.Generator().manual_seed(6))
    result = learner.adapt(task.support_x, task.support_y)
    assert (result.steps, result.deadline_hit) == (4, False)
    spent = learner.adapt(task.support_x, task.support_y, deadline_s=0.0)
    assert (spent.steps, spent.deadline_hit) == (0, True)
