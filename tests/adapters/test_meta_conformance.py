"""The MetaLearner conformance suite: every learner in ``adaptd.adapters.meta`` is found
automatically (:func:`adaptd.adapters.meta.registry.learners`) and checked, once for each of
its ``conformance_options`` (Meta-SGD also with ``per_step=True``, a learned schedule).

Adding a learner file adds it here. Checks: the protocol and its arguments (the
``regularizer`` included, whose behaviour ``meta/test_regularizer.py`` checks for every
learner); adaptation lowers
the support loss; meta-updates reach every meta-parameter and meta-gradients are nonzero and
finite; second-order meta-gradients match finite differences of the true post-adaptation
query loss (float64) and differ from the first-order one; first-order meta-gradients match a
closed form on a linear model; both backends agree (also on padded, unequal task sizes and with
meta-batch normalisation); seeded runs repeat; ``state_dict`` round-trips and training
continues identically; the served module and earlier snapshots are never mutated; K = 1
works; the deadline is honoured; cross-entropy works.
"""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

from adaptd.adapters.fast_weights import BACKENDS, grad_and_loss, task_loss
from adaptd.adapters.meta.registry import learners
from adaptd.adapters.meta.regularizer import FunctionRegularizer
from adaptd.adapters.network import PolicyNet
from adaptd.adapters.protocol import MetaLearner, Task


@dataclass(frozen=True)
class Case:
    """A learner class with one of its ``conformance_options``; called like the class."""

    cls: type
    options: tuple[tuple[str, Any], ...] = ()

    def __call__(self, net: PolicyNet, **kwargs: Any) -> Any:
        return self.cls(net, **{**dict(self.options), **kwargs})

    @property
    def algorithm(self) -> str:
        return self.cls.algorithm

    @property
    def second_order(self) -> bool:
        return self.cls.second_order

    def __str__(self) -> str:
        return "-".join([self.algorithm, *(f"{k}={v}" for k, v in self.options)])


LEARNERS = learners()
CASES = [
    Case(LEARNERS[name], tuple(sorted(options.items())))
    for name in sorted(LEARNERS)
    for options in LEARNERS[name].conformance_options
]
GRADIENT = [case for case in CASES if callable(getattr(case.cls, "meta_gradient", None))]
SECOND_ORDER = [case for case in GRADIENT if case.second_order]
FIRST_ORDER = [case for case in GRADIENT if not case.second_order]
IN_DIM = 4
CLASSES_N = 3


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _batches(make_task, seed: int, n_batches: int = 3, size: int = 4) -> list[list[Task]]:
    g = torch.Generator().manual_seed(seed)
    return [[make_task(g) for _ in range(size)] for _ in range(n_batches)]


def _classification_task(g: torch.Generator, shots: int = 2, queries: int = 3) -> Task:
    """A 3-way task: one Gaussian blob a class, around task-specific centres."""
    centres = 2.0 * torch.randn(CLASSES_N, IN_DIM, generator=g)
    labels = torch.arange(CLASSES_N).repeat_interleave(shots + queries)
    x = centres[labels] + 0.5 * torch.randn(len(labels), IN_DIM, generator=g)
    support = (labels.view(CLASSES_N, -1)[:, :shots]).reshape(-1)
    is_support = torch.zeros(len(labels), dtype=torch.bool)
    for c in range(CLASSES_N):
        is_support[c * (shots + queries) : c * (shots + queries) + shots] = True
    assert len(support) == int(is_support.sum())
    return Task(x[is_support], labels[is_support], x[~is_support], labels[~is_support])


def _learner(case, *, loss: str = "mse", norm: str = "none", **kwargs):
    out_dim = CLASSES_N if loss == "cross_entropy" else 1
    net = PolicyNet(IN_DIM, (8,), out_dim=out_dim, norm=norm)
    return case(net, loss=loss, **kwargs)


def test_every_known_algorithm_is_discovered() -> None:
    assert {"maml", "fomaml", "reptile", "metasgd", "anil"} <= set(LEARNERS)
    assert "metasgd-per_step=True" in {str(case) for case in CASES}
    assert {case.algorithm for case in SECOND_ORDER} >= {"maml", "metasgd", "anil"}
    assert "fomaml" in {case.algorithm for case in FIRST_ORDER}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_is_a_meta_learner_with_public_arguments(case) -> None:
    net = PolicyNet(IN_DIM, (8,))
    regularizer = FunctionRegularizer(lambda p: None)
    learner = case(
        net,
        inner_steps=3,
        inner_lr=0.02,
        meta_lr=0.5,
        backend="func",
        seed=9,
        regularizer=regularizer,
    )
    assert isinstance(learner, MetaLearner)
    assert learner.regularizer is regularizer
    assert (learner.net, learner.inner_steps, learner.inner_lr) == (net, 3, 0.02)
    assert (learner.meta_lr, learner.backend, learner.seed, learner.updates) == (0.5, "func", 9, 0)
    assert learner.loss == "mse"
    assert learner.state_dict()["algorithm"] == case.algorithm
    assert set(learner.params) <= set(learner.meta_parameters())
    assert case.cls.__name__ in repr(learner)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_defaults(case) -> None:
    learner = case(PolicyNet(IN_DIM, (8,)))
    assert (learner.inner_steps, learner.inner_lr, learner.backend, learner.loss) == (
        5,
        0.05,
        "autograd",
        "mse",
    )
    assert learner.meta_lr == (0.1 if case.algorithm == "reptile" else 1e-3)
    assert learner.regularizer is None
    assert _same(learner.params, CASES[0](PolicyNet(IN_DIM, (8,))).params)  # seed 0


@pytest.mark.parametrize("case", CASES, ids=str)
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
        ({"loss": "hinge"}, "loss"),
        ({"loss": "cross_entropy"}, "out_dim"),
        ({"regularizer": lambda params: None}, "regularizer"),
    ],
)
def test_invalid_arguments_are_named(case, kwargs: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        case(PolicyNet(IN_DIM, (8,)), **kwargs)
    with pytest.raises(ValueError, match="PolicyNet"):
        case(torch.nn.Linear(IN_DIM, 1))


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_adaptation_lowers_the_support_loss(case, loss: str, make_task) -> None:
    g = torch.Generator().manual_seed(0)
    task = _classification_task(g) if loss == "cross_entropy" else make_task(g)
    learner = _learner(case, loss=loss, inner_steps=4, inner_lr=0.1)
    result = learner.adapt(task.support_x, task.support_y)
    assert result.steps == 4
    assert result.losses[-1] < result.losses[0]
    assert result.losses[-1] == pytest.approx(
        float(task_loss(learner.net, result.params, task.support_x, task.support_y, loss))
    )


@pytest.mark.parametrize("norm", ["none", "batch"])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_meta_updates_reach_every_meta_parameter(case, loss: str, norm: str, make_task) -> None:
    g = torch.Generator().manual_seed(1)
    draw = _classification_task if loss == "cross_entropy" else make_task
    tasks = [draw(g) for _ in range(3)]
    learner = _learner(case, loss=loss, norm=norm, inner_lr=0.1, meta_lr=0.05)
    before = {k: v.clone() for k, v in learner.meta_parameters().items()}
    if case in GRADIENT:
        grads, _ = learner.meta_gradient(tasks)
        assert grads.keys() == before.keys()
        for name, value in grads.items():
            assert torch.isfinite(value).all(), name
            assert value.abs().max() > 0, f"no meta-gradient reaches {name}"
    stats = learner.meta_update(tasks)
    assert np.isfinite([stats.query_loss_before, stats.query_loss_after]).all()
    for name, value in learner.meta_parameters().items():
        assert torch.isfinite(value).all(), name
        assert not torch.equal(value, before[name]), f"meta-update left {name} unchanged"


def _tiny_tasks(norm: str) -> tuple[PolicyNet, list[Task]]:
    """A tiny float64 problem with tasks of unequal sizes (so padding is exercised)."""
    g = torch.Generator().manual_seed(7)
    out = []
    for i, (n_support, n_query) in enumerate([(3, 2), (2, 4), (4, 3)]):
        x = torch.randn(n_support + n_query, 2, generator=g, dtype=torch.float64)
        y = torch.sin((i + 1.0) * x[:, 0]) + 0.5 * x[:, 1]
        out.append(Task(x[:n_support], y[:n_support], x[n_support:], y[n_support:]))
    return PolicyNet(2, (3,), activation="tanh", norm=norm).double(), out


def _post_adaptation_query_loss(learner, tasks: list[Task]) -> float:
    """The true objective: the mean query loss of what ``adapt`` returns."""
    losses = []
    for t in tasks:
        adapted = learner.adapt(t.support_x, t.support_y).params
        losses.append(float(task_loss(learner.net, adapted, t.query_x, t.query_y)))
    return float(np.mean(losses))


@pytest.mark.parametrize("norm", ["none", "batch"])
@pytest.mark.parametrize("case", SECOND_ORDER, ids=str)
def test_second_order_meta_gradient_matches_finite_differences(case, norm: str) -> None:
    net, tasks = _tiny_tasks(norm)
    learner = case(net, inner_steps=2, inner_lr=0.3, seed=3)
    grads, stats = learner.meta_gradient(tasks)
    assert stats.query_loss_after == pytest.approx(_post_adaptation_query_loss(learner, tasks))
    eps = 1e-6
    probe = copy.deepcopy(learner)
    for name, value in probe.meta_parameters().items():
        reference = torch.empty_like(value)
        original = value.clone()
        for index in np.ndindex(*value.shape):
            sides = []
            for sign in (1.0, -1.0):
                with torch.no_grad():
                    value.copy_(original)
                    value[index] += sign * eps
                sides.append(_post_adaptation_query_loss(probe, tasks))
            reference[index] = (sides[0] - sides[1]) / (2 * eps)
        with torch.no_grad():
            value.copy_(original)
        torch.testing.assert_close(grads[name], reference, atol=1e-7, rtol=1e-5, msg=name)
    # Not the first-order approximation: the query gradient at the adapted weights.
    first_order = {k: torch.zeros_like(v) for k, v in learner.params.items()}
    for t in tasks:
        adapted = learner.adapt(t.support_x, t.support_y).params
        g, _ = grad_and_loss(net, adapted, t.query_x, t.query_y)
        first_order = {k: v + g[k] / len(tasks) for k, v in first_order.items()}
    gap = max(float((grads[k] - first_order[k]).abs().max()) for k in first_order)
    assert gap > 1e-4


def _linear_first_order_reference(learner, tasks: list[Task]) -> dict[str, np.ndarray]:
    """Closed form of mean_i grad L_query,i(phi_i) for y = x @ w.T + b, in float64 numpy."""
    w = learner.params["layers.0.weight"].double().numpy()[0]
    b = float(learner.params["layers.0.bias"].double().numpy()[0])
    gws, gbs = [], []
    for t in tasks:
        sx, sy = t.support_x.double().numpy(), t.support_y.double().numpy()
        qx, qy = t.query_x.double().numpy(), t.query_y.double().numpy()
        wi, bi = w.copy(), b
        for _ in range(learner.inner_steps):
            r = sx @ wi + bi - sy
            wi, bi = (
                wi - learner.inner_lr * 2 * r @ sx / len(sy),
                bi - learner.inner_lr * 2 * r.mean(),
            )
        r = qx @ wi + bi - qy
        gws.append(2 * r @ qx / len(qy))
        gbs.append(2 * r.mean())
    return {"layers.0.weight": np.mean(gws, axis=0)[None, :], "layers.0.bias": np.mean(gbs)[None]}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", FIRST_ORDER, ids=str)
def test_first_order_meta_gradient_matches_a_closed_form(case, backend: str) -> None:
    g = torch.Generator().manual_seed(11)
    tasks = []
    for i, (n_support, n_query) in enumerate([(4, 3), (1, 2), (5, 5)]):
        x = torch.randn(n_support + n_query, 3, generator=g)
        y = (1.0 - i) * x[:, 1] + 0.3 * x[:, 0] - 0.2 * i
        tasks.append(Task(x[:n_support], y[:n_support], x[n_support:], y[n_support:]))
    learner = case(PolicyNet(3, hidden=()), inner_steps=3, inner_lr=0.1, backend=backend, seed=2)
    grads, _ = learner.meta_gradient(tasks)
    for name, expected in _linear_first_order_reference(learner, tasks).items():
        np.testing.assert_allclose(grads[name].numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("norm", ["none", "batch"])
@pytest.mark.parametrize("sizes", ["equal", "ragged"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_backends_agree(case, sizes: str, norm: str, make_task) -> None:
    g = torch.Generator().manual_seed(5)
    shots = [5, 5, 5] if sizes == "equal" else [2, 6, 4]
    tasks = [make_task(g, shots=k, queries=k + 1) for k in shots]
    runs = {}
    for backend in BACKENDS:
        learner = _learner(case, norm=norm, backend=backend, inner_steps=2, inner_lr=0.1)
        stats = [learner.meta_update(tasks)[1:3] for _ in range(2)]
        runs[backend] = (learner.meta_parameters(), stats)
    for name, value in runs["autograd"][0].items():
        torch.testing.assert_close(value, runs["func"][0][name], atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(runs["autograd"][1], runs["func"][1], rtol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_seeded_runs_repeat_exactly(case, backend: str, make_task) -> None:
    runs = []
    for _ in range(2):
        learner = _learner(case, backend=backend, seed=3)
        stats = [learner.meta_update(batch)[:3] for batch in _batches(make_task, seed=1)]
        runs.append((learner.meta_parameters(), stats))
    assert _same(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    assert not _same(_learner(case, seed=4).params, _learner(case, seed=3).params)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_state_dict_round_trip_continues_identically(case, make_task) -> None:
    batches = _batches(make_task, seed=2, n_batches=4)
    original = _learner(case, meta_lr=0.01, seed=0)
    for batch in batches[:2]:
        original.meta_update(batch)
    saved = original.state_dict()
    buffer = io.BytesIO()
    torch.save(saved, buffer)  # the daemon checkpoints it this way
    restored = _learner(case, meta_lr=0.01, seed=99)
    restored.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    assert _same(restored.meta_parameters(), original.meta_parameters())
    assert restored.updates == 2
    for batch in batches[2:]:
        assert original.meta_update(batch)[:3] == restored.meta_update(batch)[:3]
    assert _same(restored.meta_parameters(), original.meta_parameters())
    # The saved state is a copy: the later updates did not change it.
    assert saved["updates"] == 2
    assert not _same(saved["params"], original.params)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_foreign_or_misshapen_state_is_refused(case) -> None:
    learner = _learner(case)
    other = next(c for c in CASES if c.algorithm != case.algorithm)
    with pytest.raises(ValueError, match="algorithm"):
        learner.load_state_dict(_learner(other).state_dict())
    wider = case(PolicyNet(IN_DIM, (16,))).state_dict()
    with pytest.raises(ValueError, match=r"layers\.0\.weight has shape \(16, 4\)"):
        learner.load_state_dict(wider)
    deeper = case(PolicyNet(IN_DIM, (8, 8))).state_dict()
    with pytest.raises(ValueError, match="do not match"):
        learner.load_state_dict(deeper)


@pytest.mark.parametrize("norm", ["none", "batch"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_served_net_and_earlier_snapshots_are_never_modified(case, norm: str, make_task) -> None:
    learner = _learner(case, norm=norm, meta_lr=0.05)
    net_before = {k: v.clone() for k, v in learner.net.state_dict().items()}
    snapshot = learner.meta_parameters()
    snapshot_copy = {k: v.clone() for k, v in snapshot.items()}
    params = learner.params
    (batch,) = _batches(make_task, seed=3, n_batches=1)
    learner.meta_update(batch)
    if case in GRADIENT:
        learner.meta_gradient(batch)
    learner.adapt(batch[0].support_x, batch[0].support_y)
    assert _same(learner.net.state_dict(), net_before)
    assert _same(snapshot, snapshot_copy)
    assert _same(params, {k: snapshot_copy[k] for k in params})
    assert not _same(learner.params, params)
    assert not any(v.requires_grad for v in learner.meta_parameters().values())


@pytest.mark.parametrize("norm", ["none", "batch"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_one_shot_tasks_work(case, backend: str, norm: str, make_task) -> None:
    g = torch.Generator().manual_seed(4)
    tasks = [make_task(g, shots=1, queries=1) for _ in range(3)]
    learner = _learner(case, norm=norm, backend=backend)
    stats = learner.meta_update(tasks)
    assert stats.tasks == 3
    assert np.isfinite([stats.query_loss_before, stats.query_loss_after]).all()
    result = learner.adapt(tasks[0].support_x, tasks[0].support_y)
    assert result.steps == learner.inner_steps
    assert all(torch.isfinite(v).all() for v in result.params.values())


@pytest.mark.parametrize("case", CASES, ids=str)
def test_adapt_uses_the_learner_settings_and_deadline(case, make_task) -> None:
    learner = _learner(case, inner_steps=4)
    task = make_task(torch.Generator().manual_seed(6))
    result = learner.adapt(task.support_x, task.support_y)
    assert (result.steps, result.deadline_hit) == (4, False)
    spent = learner.adapt(task.support_x, task.support_y, deadline_s=0.0)
    assert (spent.steps, spent.deadline_hit, len(spent.losses)) == (0, True, 1)
    assert _same(spent.params, learner.params)
    generous = learner.adapt(task.support_x, task.support_y, deadline_s=60.0)
    assert (generous.steps, generous.deadline_hit) == (4, False)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_adapt_takes_other_steps_and_another_start_without_changing_the_learner(
    case, make_task
) -> None:
    learner = _learner(case, inner_steps=4)
    task = make_task(torch.Generator().manual_seed(7))
    assert learner.adapt(task.support_x, task.support_y, steps=2).steps == 2
    longer = learner.adapt(task.support_x, task.support_y, steps=7)  # past a learned schedule
    assert longer.steps == 7 and longer.losses[-1] < longer.losses[4]
    assert learner.inner_steps == 4
    other = _learner(case, seed=5).params
    unchanged = learner.adapt(task.support_x, task.support_y, start=other, steps=0)
    assert _same(unchanged.params, other)
    moved = learner.adapt(task.support_x, task.support_y, start=other)
    assert moved.losses[-1] < moved.losses[0]
    assert not _same(moved.params, learner.adapt(task.support_x, task.support_y).params)
    with pytest.raises(ValueError, match="start"):
        learner.adapt(task.support_x, task.support_y, start={"nope": torch.zeros(1)})


@pytest.mark.parametrize("case", CASES, ids=str)
def test_cross_entropy_meta_training_improves_the_query_loss(case) -> None:
    g = torch.Generator().manual_seed(8)
    learner = _learner(case, loss="cross_entropy", inner_lr=0.1, meta_lr=0.01, seed=1)
    if case.algorithm == "reptile":
        learner = _learner(case, loss="cross_entropy", inner_lr=0.1, meta_lr=0.3, seed=1)
    first = learner.meta_update([_classification_task(g) for _ in range(4)])
    for _ in range(15):
        last = learner.meta_update([_classification_task(g) for _ in range(4)])
    assert last.query_loss_after < last.query_loss_before
    assert last.query_loss_after < first.query_loss_after


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_batches_are_refused_with_the_task_named(case, make_task) -> None:
    learner = _learner(case)
    with pytest.raises(ValueError, match="tasks is empty"):
        learner.meta_update([])
    good = make_task(torch.Generator().manual_seed(5))
    bad = good._replace(query_x=good.query_x[:, :3])
    with pytest.raises(ValueError, match=r"task 1: query_x must have shape \(n >= 1, 4\)"):
        learner.meta_update([good, bad])
    short = good._replace(support_y=good.support_y[:-1])
    with pytest.raises(ValueError, match="task 0: support_y"):
        learner.meta_update([short])
    classifier = _learner(case, loss="cross_entropy")
    task = _classification_task(torch.Generator().manual_seed(5))
    with pytest.raises(ValueError, match=r"task 0: query_y must hold class ids 0\.\.2"):
        classifier.meta_update([task._replace(query_y=task.query_y + 1)])
    with pytest.raises(ValueError, match="class ids"):
        classifier.adapt(task.support_x, task.support_y + 0.5)
