"""Early stopping stops and restores the best state; evaluations measure what they claim."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from adaptd.adapters.fewshot import ProtoNet
from adaptd.adapters.meta import FOMAML
from adaptd.adapters.network import PolicyNet
from adaptd.adapters.protocol import Task
from adaptd.adapters.tasks import (
    EarlyStopping,
    EpisodeSampler,
    evaluate_adaptation,
    evaluate_classifier,
    meta_train,
    query_loss,
)


def linear_tasks(n: int, seed: int, shots: int = 8, queries: int = 16) -> list[Task]:
    """y = a·x0 + b with a task-specific slope and offset."""
    g = torch.Generator().manual_seed(seed)
    tasks = []
    for _ in range(n):
        a, b = 4 * torch.rand((), generator=g) - 2, torch.rand((), generator=g) - 0.5
        x = torch.randn(shots + queries, 2, generator=g)
        y = a * x[:, 0] + b
        tasks.append(Task(x[:shots], y[:shots], x[shots:], y[shots:]))
    return tasks


def batches(seed: int, size: int = 4):
    counter = iter(range(10**6))
    return lambda: linear_tasks(size, seed * 10**6 + next(counter))


def clusters(n_classes: int = 10, per_class: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, size=(n_classes, 4))
    y = np.repeat(np.arange(n_classes), per_class)
    return (centres[y] + rng.normal(0.0, 0.3, size=(len(y), 4))).astype(np.float32), y


def test_early_stopping_counts_patience_and_keeps_a_copy_of_the_best() -> None:
    stopper = EarlyStopping(patience=2, min_delta=0.05)
    state = {"w": torch.zeros(2)}
    stopper.update(1.0, state, step=0)
    state["w"] += 5.0  # the stopper kept a copy, not this dict
    assert torch.equal(stopper.best_state["w"], torch.zeros(2))
    stopper.update(0.97, {"w": torch.ones(2)}, step=1)  # within min_delta: not an improvement
    assert not stopper.improved and not stopper.should_stop and stopper.best_step == 0
    stopper.update(math.nan, None, step=2)  # a diverged evaluation is never the best
    assert stopper.should_stop and stopper.best == 1.0
    high = EarlyStopping(patience=1, mode="max")
    high.update(0.5).update(0.7)
    assert high.best == 0.7 and not high.should_stop
    assert high.update(0.6).should_stop
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="lowest")


def test_meta_train_stops_and_restores_the_best_state() -> None:
    def make() -> FOMAML:
        return FOMAML(PolicyNet(2, (8,)), inner_steps=2, inner_lr=0.1, meta_lr=0.01, seed=0)

    learner = make()
    history = meta_train(
        learner,
        batches(seed=1),
        linear_tasks(4, seed=99),
        iterations=50,
        eval_every=2,
        evaluate=lambda lrn, _: abs(lrn.updates - 6),  # best after 6 updates, worse after
        stopper=EarlyStopping(patience=2),
    )
    assert history.val_steps == [0, 2, 4, 6, 8, 10]
    assert history.val_values == [6, 4, 2, 0, 2, 4]
    assert history.stopped_early and history.iterations == 10 and len(history.train_loss) == 10
    assert history.best_step == 6 and history.restored
    reference = make()
    sample = batches(seed=1)
    for _ in range(6):
        reference.meta_update(sample())
    assert learner.updates == 6
    assert all(torch.equal(learner.params[k], reference.params[k]) for k in reference.params)
    # Training continues from the restored state exactly as the reference does.
    assert learner.state_dict()["adam"]["t"] == reference.state_dict()["adam"]["t"] == 6


def test_meta_train_without_a_stopper_runs_to_the_end_and_learns() -> None:
    learner = FOMAML(PolicyNet(2, (16,)), inner_steps=3, inner_lr=0.1, meta_lr=0.01, seed=0)
    val = linear_tasks(40, seed=7)
    history = meta_train(
        learner,
        batches(seed=2, size=8),
        val,
        iterations=60,
        eval_every=30,
        evaluate=lambda lrn, tasks: evaluate_adaptation(lrn, tasks),
    )
    assert history.val_steps == [0, 30, 60] and not history.stopped_early
    assert history.val_values[-1] < 0.7 * history.val_values[0]
    with pytest.raises(ValueError, match="eval_every"):
        meta_train(learner, batches(0), val, iterations=2, eval_every=0, evaluate=lambda *_: 0.0)


def test_evaluate_adaptation_takes_steps_and_leaves_the_learner_alone() -> None:
    learner = FOMAML(PolicyNet(2, (16,)), inner_steps=1, inner_lr=0.1, seed=0)
    tasks = linear_tasks(30, seed=3)
    initial = evaluate_adaptation(learner, tasks, steps=0)
    manual = [query_loss(learner, learner.params, t.query_x, t.query_y) for t in tasks]
    assert initial.mean == pytest.approx(np.mean(manual)) and initial.n == 30
    one, ten = (evaluate_adaptation(learner, tasks, steps=s) for s in (1, 10))
    assert ten.mean < one.mean < initial.mean
    assert 0 < ten.half_width < ten.mean
    assert learner.inner_steps == 1
    assert evaluate_adaptation(learner, tasks).mean == pytest.approx(one.mean)
    bad = [Task(torch.zeros(3, 5), torch.zeros(3), torch.zeros(2, 2), torch.zeros(2))]
    with pytest.raises(ValueError, match="x must have shape"):
        evaluate_adaptation(learner, bad, steps=7)
    assert learner.inner_steps == 1
    with pytest.raises(ValueError, match="steps"):
        evaluate_adaptation(learner, tasks, steps=-1)


def test_evaluate_classifier_for_metric_and_gradient_learners() -> None:
    x, y = clusters()
    episodes = EpisodeSampler(x, y, range(10), n_way=3, k_shot=5, n_query=5, seed=0).sample(20)
    protos = evaluate_classifier(ProtoNet(), episodes)
    assert protos.mean > 0.95 and protos.n == 20
    learner = FOMAML(
        PolicyNet(4, (16,), out_dim=3), inner_steps=10, inner_lr=0.5, loss="cross_entropy"
    )
    before = evaluate_classifier(learner, episodes, steps=0)
    after = evaluate_classifier(learner, episodes)
    assert before.mean < 0.6 < 0.8 < after.mean
    with pytest.raises(ValueError, match="steps applies"):
        evaluate_classifier(ProtoNet(), episodes, steps=1)
