"""Every policy task keeps the protocol: found by the registry (and the task kept outside
adaptd, ``direction_task:DirectionTask``), each is checked the same way, as river checks every
estimator. A new task file is picked up here without an edit."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from state_support import stored

from adaptd.adapters.fast_weights import row_losses
from adaptd.adapters.protocol import LOSSES
from adaptd.daemon.config.settings import load_settings
from adaptd.daemon.core.effects import Effects
from adaptd.daemon.core.schema import MarketEvent
from adaptd.daemon.core.stream import StreamState
from adaptd.daemon.core.tasks.protocol import LINKS, PolicyTask, model_id, qualified
from adaptd.daemon.core.tasks.registry import available, resolve
from adaptd.daemon.service.configs import stream_config

OUTSIDE = "direction_task:DirectionTask"
NAMES = [*sorted(available()), OUTSIDE]


def task_of(name: str, horizon: int = 3) -> PolicyTask:
    return resolve(name)(horizon=horizon, clip=10.0)


def labels(task: PolicyTask, n: int, seed: int = 0) -> np.ndarray:
    """Labels of the kind the task makes, from its own rule on a random walk."""
    return labelled(task, n, seed)[0]


def labelled(task: PolicyTask, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels as :func:`labels` makes them, and the inputs the rule appends to each example
    (its ``extra()`` after the example's anchor; ``(n, 0)`` for a rule that appends none)."""
    rule = task.label_rule()
    appended = getattr(rule, "inputs", ())
    rng = np.random.default_rng(seed)
    rets = rng.normal(0, 0.01, n + rule.horizon)
    rets[::7] = 0.0  # as daily series have: exact-zero returns
    lp, sq = np.cumsum(rets), np.cumsum(rets**2)
    ticks = [
        SimpleNamespace(
            log_price=float(p), ret=float(r), vol=0.01, fast_var=1e-4, sq_sum=float(q), ts_ms=None
        )
        for p, r, q in zip(lp, rets, sq, strict=True)
    ]
    y, extras = [], []
    for i in range(n):
        anchor = rule.anchor(ticks[i])
        extras.append(rule.extra() if appended else ())
        y.append(rule.label(anchor, ticks[i + rule.horizon]))
    return np.array(y, dtype=np.float32), np.array(extras, dtype=np.float64).reshape(n, -1)


def outputs(task: PolicyTask, n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (n,) if task.head.out_dim == 1 else (n, task.head.out_dim)
    return rng.normal(size=shape)


@pytest.mark.parametrize("name", NAMES)
def test_it_is_a_policy_task_with_a_consistent_head_and_loss(name: str) -> None:
    task = task_of(name)
    assert isinstance(task, PolicyTask)
    assert task.name and task.name.isidentifier()
    assert task.loss in LOSSES
    head = task.head
    assert head.link in LINKS
    assert head.output_scale > 0
    if task.loss == "cross_entropy":
        assert head.out_dim >= 2 and head.link == "softmax"
    else:
        assert head.out_dim == 1 and head.link != "softmax"
    if task.loss == "qlike":  # the output is a log variance ratio
        assert head.link == "exp"
    if task.features is not None:
        assert len(set(task.features)) == len(task.features) > 0


@pytest.mark.parametrize("name", NAMES)
def test_it_is_immutable_picklable_and_built_from_the_label_horizon(name: str) -> None:
    task = task_of(name, horizon=4)
    assert stored(task) == task
    assert task.label_rule().horizon == 4
    with pytest.raises((AttributeError, TypeError)):
        task.horizon = 5  # type: ignore[misc]
    with pytest.raises(ValueError, match="horizon"):
        task_of(name, horizon=0)


@pytest.mark.parametrize("name", NAMES)
def test_its_labels_are_finite_and_fit_its_loss(name: str) -> None:
    task = task_of(name)
    y = labels(task, 200)
    assert np.isfinite(y).all()
    if task.loss == "cross_entropy":
        assert set(np.unique(y)) <= set(range(task.head.out_dim))
        assert len(np.unique(y)) > 1  # a random walk goes both ways
    if task.loss == "qlike":
        assert (y > 0).all()  # zero returns included: floored
    rule = task.label_rule()
    anchor = rule.anchor(
        SimpleNamespace(log_price=0.0, ret=0.0, vol=0.01, fast_var=1e-4, sq_sum=0.0, ts_ms=0)
    )
    assert stored(anchor) == anchor  # anchors live in snapshots


@pytest.mark.parametrize("name", NAMES)
def test_losses_are_the_numpy_twin_of_the_learners_loss(name: str) -> None:
    task = task_of(name)
    y, out = labels(task, 64), outputs(task, 64)
    got = task.losses(out, y)
    assert got.shape == (64,)
    assert (got >= 0).all()
    target = torch.tensor(y).long() if task.loss == "cross_entropy" else torch.tensor(y)
    want = row_losses(torch.tensor(out), target, task.loss).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    # A perfect prediction costs (next to) nothing.
    if task.loss == "mse":
        perfect = y.astype(np.float64)
    elif task.loss == "qlike":
        perfect = np.log(y.astype(np.float64))
    else:
        perfect = np.full((64, task.head.out_dim), -30.0)
        perfect[np.arange(64), y.astype(np.int64)] = 30.0
    assert task.losses(perfect, y).max() < 1e-6


@pytest.mark.parametrize("name", NAMES)
def test_the_baseline_is_fresh_per_stream_and_scores_in_order(name: str) -> None:
    task = task_of(name)
    y, x = labelled(task, 100)
    a, b = task.baseline(), task.baseline()
    assert a is not b
    assert isinstance(a.name, str) and a.name
    if getattr(a, "reads_inputs", False):  # a baseline read from the examples' inputs
        whole = a.losses(y, x)
        halves = np.concatenate([b.losses(y[:37], x[:37]), b.losses(y[37:], x[37:])])
        assert stored(a).losses(y[:5], x[:5]).shape == (5,)
    else:
        whole = a.losses(y)
        halves = np.concatenate([b.losses(y[:37]), b.losses(y[37:])])
        assert stored(a).losses(y[:5]).shape == (5,)
    assert whole.shape == (100,) and np.isfinite(whole).all() and (whole >= 0).all()
    np.testing.assert_allclose(whole, halves)  # test, then train: batches do not matter


@pytest.mark.parametrize("name", NAMES)
def test_it_describes_itself_for_subscribers(name: str) -> None:
    task = task_of(name)
    described = json.loads(json.dumps(task.describe()))
    assert {"name", "label", "loss", "output", "link", "baseline"} <= set(described)
    assert described["name"] == task.name
    assert described["loss"] == task.loss
    assert described["link"] == task.head.link
    assert described["baseline"] == task.baseline().name
    assert described["label"]["horizon"] == task.label_rule().horizon


@pytest.mark.parametrize("name", NAMES)
def test_a_stream_runs_it_into_episodes_and_requests(name: str) -> None:
    settings = load_settings(
        environ={},
        features={"momentum_horizons": [5, 20], "warmup_events": 20, "label_horizon": 3},
        detection={"warmup_events": 100, "cooldown_events": 50},
        adaptation={"shots": 12, "query_size": 4},
        replay={"episode_size": 16},
    )
    task = task_of(name)
    config = stream_config(settings, (task,))
    (track_config,) = config.tracks
    d = len(track_config.feature_names)
    own = len(config.feature_names) if task.features is None else len(task.features)
    assert d == own + len(getattr(task, "inputs", ()))
    rng = np.random.default_rng(3)
    rets = np.r_[rng.normal(0, 0.001, 600), rng.normal(0.004, 0.006, 600)]
    prices = 100 * np.exp(np.cumsum(rets))
    state = StreamState("S", "in", 0, config)
    out = Effects()
    for i, p in enumerate(prices):
        event = MarketEvent(stream="S", ts_ms=1_700_000_000_000 + 1000 * i, price=float(p))
        assert state.on_event(event, i, out) is None
        if i % 25 == 24:
            state.finish_batch({}, out)
    assert out.shifts and out.requests
    assert {t for t, _ in out.episodes} == {task.name}
    assert all(e.d == d and e.feature_names == track_config.feature_names for _, e in out.episodes)
    request = out.requests[0]
    assert request.task == task.name and request.model == model_id("S", task)
    assert request.support_x.shape[1] == d
    if task.loss == "cross_entropy":
        assert set(np.unique(request.support_y)) <= set(range(task.head.out_dim))


def test_qualified_names_carry_the_task_and_the_return_task_keeps_the_old_ones() -> None:
    ret, direction = task_of("return"), task_of(OUTSIDE)
    assert (model_id("S", ret), qualified("adaptd", ret, ".")) == ("S", "adaptd")
    assert (model_id("S", direction), qualified("adaptd", direction, ".")) == (
        "S/direction",
        "adaptd.direction",
    )
    assert math.isfinite(task_of("return").head.output_scale)


@pytest.mark.parametrize("name", NAMES)
def test_the_learner_warms_up_adapts_meta_trains_and_evaluates_it(name: str) -> None:
    # The learner's own paths on the task's own labels: warm-up's throwaway data, padded
    # stacks of episodes of unequal length, the query gate.
    from adaptd.daemon.learner.learners import TaskLearners
    from adaptd.daemon.learner.messages import AdaptJob
    from adaptd.daemon.service.configs import task_models
    from adaptd.replay.episode import Episode

    settings = load_settings(environ={}, adaptation={"shots": 12, "query_size": 4})
    task = task_of(name)
    (model,) = task_models(settings, (task,))
    learners = TaskLearners(settings.adaptation, [model.spec], settings.continual)
    learners.warm_up()
    d = model.spec.in_dim
    rng = np.random.default_rng(5)
    y = labels(task, 200, seed=6)
    x = rng.normal(size=(200, d)).astype(np.float32)
    episodes = [
        Episode.from_arrays(
            stream="S",
            segment=0,
            topic="in",
            partition=0,
            offsets=range(a, b),
            ts_ms=range(a, b),
            x=x[a:b],
            y=y[a:b],
        )
        for a, b in ((0, 32), (32, 50), (50, 82), (82, 100))  # unequal: padded when stacked
    ]
    for _ in range(3):
        assert learners.meta_train(task.name, episodes) is not None
    assert all(np.isfinite(v).all() for v in learners.init_numpy(task.name).values())
    assert all(math.isfinite(v) for v in learners.evaluate(task.name, episodes))
    job = AdaptJob(
        request_id="r",
        task=task.name,
        support_x=x[100:108],
        support_y=y[100:108],
        query_x=x[108:112],
        query_y=y[108:112],
        parent_weights=learners.init_numpy(task.name),
        start_weights=None,
        ready_wall_time=0.0,
    )
    outcome = learners.adapt(job, 10.0)
    assert math.isfinite(outcome.query_loss_after) and math.isfinite(outcome.query_loss_scratch)
    assert outcome.steps == settings.adaptation.inner_steps
