"""The tuner prefers an inner step size that adapts over one that cannot, on validation tasks."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from adaptd.adapters.meta import FOMAML, Reptile
from adaptd.adapters.network import PolicyNet
from adaptd.adapters.protocol import Task
from adaptd.adapters.tasks import Config, SearchSpace, SinusoidTasks, tune


def slope_tasks(n: int, generator: torch.Generator) -> list[Task]:
    """y = a·x with a ~ U[-2, 2]: easy, and impossible without adaptation."""
    tasks = []
    for _ in range(n):
        a = 4 * float(torch.rand((), generator=generator)) - 2
        x = torch.randn(20, 1, generator=generator)
        tasks.append(Task(x[:10], a * x[:10, 0], x[10:], a * x[10:, 0]))
    return tasks


def make_sampler(seed: int):
    return functools.partial(slope_tasks, 4, torch.Generator().manual_seed(seed))


VAL = slope_tasks(30, torch.Generator().manual_seed(12345))


def fomaml(inner_lr: float, inner_steps: int, meta_lr: float) -> FOMAML:
    return FOMAML(
        PolicyNet(1, (8,)), inner_lr=inner_lr, inner_steps=inner_steps, meta_lr=meta_lr, seed=0
    )


def test_a_good_inner_lr_beats_a_bad_one() -> None:
    bad = Config(1e-4, 3, 1e-2)
    result = tune(
        fomaml,
        make_sampler,
        VAL,
        iterations=10,
        configs=[bad, Config(0.05, 3, 1e-2), Config(0.3, 3, 1e-2)],
    )
    values = {t.config: t.value for t in result.trials}
    assert result.best != bad and result.best.inner_lr > 1e-2
    assert result.best_value == min(values.values()) < 0.5 * values[bad]
    assert [t.rung for t in result.trials] == [0, 0, 0]


def test_random_search_over_inner_lr_finds_a_rate_that_adapts() -> None:
    def reptile(inner_lr: float, inner_steps: int, meta_lr: float) -> Reptile:
        return Reptile(PolicyNet(1, (8,)), inner_lr=inner_lr, inner_steps=inner_steps,
                       meta_lr=meta_lr, seed=0)  # fmt: skip

    space = SearchSpace(inner_lr=(1e-4, 0.5), inner_steps=(3, 3), meta_lr=(0.1, 0.1))
    result = tune(reptile, make_sampler, VAL, iterations=5, trials=6, space=space, seed=0)
    assert len(result.trials) == 6
    worst = max(result.trials, key=lambda t: t.value)
    assert result.best.inner_lr > worst.config.inner_lr
    assert result.best_value < 0.5 * worst.value
    again = tune(reptile, make_sampler, VAL, iterations=5, trials=6, space=space, seed=0)
    assert again.trials == result.trials  # seeded: the same table


def test_successive_halving_keeps_a_third_per_rung() -> None:
    space = SearchSpace(inner_lr=(1e-4, 0.5), inner_steps=(1, 3), meta_lr=(1e-3, 1e-2))
    result = tune(
        fomaml, make_sampler, VAL, iterations=2, trials=9, space=space, method="halving", eta=3
    )
    rungs = [(t.rung, t.iterations) for t in result.trials]
    assert rungs == [(0, 2)] * 9 + [(1, 6)] * 3 + [(2, 18)]
    first = sorted(result.trials[:9], key=lambda t: t.value)[:3]
    assert {t.index for t in result.trials[9:12]} == {t.index for t in first}
    assert result.best == result.trials[-1].config


def test_diverged_trials_rank_last_and_bad_arguments_are_refused() -> None:
    diverging, sane = Config(1e4, 10, 1e-2), Config(0.1, 2, 1e-2)
    result = tune(fomaml, make_sampler, VAL, iterations=3, configs=[diverging, sane])
    assert math.isnan(result.trials[0].value)  # recorded as nan, not raised
    assert result.best == sane and math.isfinite(result.best_value)
    maximising = tune(
        fomaml, make_sampler, VAL, iterations=3, configs=[diverging, sane], mode="max"
    )
    assert maximising.best == sane  # nan ranks last whichever way the metric points
    with pytest.raises(ValueError, match="method"):
        tune(fomaml, make_sampler, VAL, iterations=1, method="grid")
    with pytest.raises(ValueError, match="val_tasks"):
        tune(fomaml, make_sampler, [], iterations=1)
    with pytest.raises(ValueError, match="inner_steps range"):
        SearchSpace(inner_steps=(0, 3)).sample(2, seed=0)


def test_tuning_works_on_sinusoid_tasks_with_a_validation_split() -> None:
    source = SinusoidTasks(seed=0)
    val = source.evaluation_tasks(20, k_support=10, n_query=20, seed=3)

    def sinusoid_sampler(seed: int):
        return functools.partial(SinusoidTasks(seed=seed).sample, 5, 10, 10)

    net = PolicyNet(1, (20, 20), activation="relu")
    result = tune(
        lambda lr, steps, mlr: FOMAML(net, inner_lr=lr, inner_steps=steps, meta_lr=mlr),
        sinusoid_sampler,
        val,
        iterations=5,
        configs=[Config(1e-5, 1, 1e-3), Config(0.02, 1, 1e-3)],
    )
    assert result.best.inner_lr == 0.02
