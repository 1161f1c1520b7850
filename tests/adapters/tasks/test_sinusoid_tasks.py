"""SinusoidTasks draws the MAML paper's distribution, seeded, fresh or from a fixed pool."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from adaptd.adapters.tasks import SinusoidTasks


def _wave(task) -> tuple[float, float]:
    """Recover (A, φ) of a task from its points: y = a·sin x + b·cos x, A = |(a, b)|."""
    x = torch.cat((task.support_x, task.query_x))[:, 0].double().numpy()
    y = torch.cat((task.support_y, task.query_y)).double().numpy()
    (a, b), *_ = np.linalg.lstsq(np.stack((np.sin(x), np.cos(x)), axis=1), y, rcond=None)
    return math.hypot(a, b), math.atan2(-b, a)  # A sin(x - φ) = A cos φ sin x - A sin φ cos x


def test_shapes_dtypes_and_ranges() -> None:
    tasks = SinusoidTasks(seed=3).sample(200, k_support=5, k_query=7)
    assert len(tasks) == 200
    for task in tasks:
        assert task.support_x.shape == (5, 1) and task.support_y.shape == (5,)
        assert task.query_x.shape == (7, 1) and task.query_y.shape == (7,)
        assert task.support_x.dtype == task.support_y.dtype == torch.float32
    xs = torch.cat([torch.cat((t.support_x, t.query_x)) for t in tasks])
    assert float(xs.min()) >= -5.0 and float(xs.max()) <= 5.0
    assert float(xs.min()) < -4.8 and float(xs.max()) > 4.8
    waves = np.array([_wave(t) for t in tasks])
    assert np.all((waves[:, 0] > 0.1 - 1e-4) & (waves[:, 0] < 5.0 + 1e-4))
    assert np.all((waves[:, 1] > -1e-4) & (waves[:, 1] < math.pi + 1e-4))
    assert waves[:, 0].min() < 0.5 and waves[:, 0].max() > 4.5  # spans the range


def test_seeded_streams_repeat_and_differ() -> None:
    a = SinusoidTasks(seed=1).sample(3, 4, 4)
    b = SinusoidTasks(seed=1).sample(3, 4, 4)
    c = SinusoidTasks(seed=2).sample(3, 4, 4)
    assert all(
        torch.equal(p, q) for ta, tb in zip(a, b, strict=True) for p, q in zip(ta, tb, strict=True)
    )
    assert not torch.equal(a[0].support_x, c[0].support_x)


def test_evaluation_tasks_depend_on_their_seed_only() -> None:
    sampler = SinusoidTasks(seed=0)
    first = sampler.evaluation_tasks(10, k_support=5, n_query=100, seed=4)
    sampler.sample(50, 10, 10)  # consuming the training stream changes nothing
    again = SinusoidTasks(seed=99).evaluation_tasks(10, k_support=5, n_query=100, seed=4)
    assert all(
        torch.equal(p, q)
        for ta, tb in zip(first, again, strict=True)
        for p, q in zip(ta, tb, strict=True)
    )
    assert first[0].query_x.shape == (100, 1)
    other = sampler.evaluation_tasks(10, k_support=5, n_query=100, seed=5)
    assert not torch.equal(first[0].query_y, other[0].query_y)


def test_pool_mode_reuses_its_waves_with_fresh_inputs() -> None:
    sampler = SinusoidTasks(pool_size=3, seed=0)
    assert sampler.pool.shape == (3, 2)
    tasks = sampler.sample(60, 10, 10)
    waves = np.array([_wave(t) for t in tasks])
    distance = np.abs(waves[:, None, :] - sampler.pool[None, :, :]).max(axis=2)
    assert np.all(distance.min(axis=1) < 1e-3)  # every task is one of the pool's waves
    assert len(set(distance.argmin(axis=1).tolist())) == 3
    assert not torch.equal(tasks[0].support_x, tasks[1].support_x)
    # The pool depends on the seed only, not on what was sampled.
    assert np.array_equal(SinusoidTasks(pool_size=3, seed=0).pool, sampler.pool)
    # Pools from one seed are nested, so a larger pool only adds waves.
    assert np.array_equal(SinusoidTasks(pool_size=30, seed=0).pool[:3], sampler.pool)


def test_bad_arguments_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="pool_size"):
        SinusoidTasks(pool_size=0)
    with pytest.raises(ValueError, match="amplitude"):
        SinusoidTasks(amplitude=(5.0, 0.1))
    with pytest.raises(ValueError, match="k_support"):
        SinusoidTasks().sample(2, 0, 5)
