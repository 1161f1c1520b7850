"""The proximal step: through every learner's ``adapt`` it reproduces, bit for bit, the
penalised inner loop the daemon used to write out by hand; it is the exact minimiser of the
step's quadratic model plus the penalty; it stays put under an enormous penalty."""

from __future__ import annotations

import time
from typing import Any

import pytest
import torch
from torch import Tensor

from adaptd.adapters.continual.proximal import ProximalStep
from adaptd.adapters.fast_weights import (
    AdaptResult,
    grad_and_loss,
    rate_schedule,
    rates_at,
    task_loss,
)
from adaptd.adapters.meta.registry import learners
from adaptd.adapters.network import PolicyNet
from adaptd.adapters.steps import SGD_STEP

LEARNERS = learners()
CASES = [(name, opts) for name in sorted(LEARNERS) for opts in LEARNERS[name].conformance_options]
IDS = ["-".join([name, *(f"{k}={v}" for k, v in opts.items())]) for name, opts in CASES]


def _old_proximal_adapt(learner, x, y, anchor, fisher, lam, deadline_s=None) -> AdaptResult:
    """The daemon's hand-written penalised loop before the step hook, kept as the reference."""
    begin = time.perf_counter()
    names = list(anchor) if learner.inner_names is None else list(learner.inner_names)
    schedule = rate_schedule(learner.step_sizes(), names)
    dtype = next(iter(anchor.values())).dtype
    x, y = x.to(dtype), (y.to(dtype) if learner.loss == "mse" else y)
    anchor = {k: v.detach().to(dtype) for k, v in anchor.items()}
    current = dict(anchor)
    losses: list[float] = []
    taken, hit = 0, False
    for step in range(learner.inner_steps):
        if deadline_s is not None and time.perf_counter() - begin >= deadline_s:
            hit = True
            break
        grads, value = grad_and_loss(
            learner.net, current, x, y, backend=learner.backend, loss=learner.loss, names=names
        )
        losses.append(float(value))
        rates = rates_at(schedule, step)
        with torch.no_grad():
            for k in names:
                rate = rates[k]
                shrink = 1.0 + lam * fisher[k] * (
                    rate.clamp(min=0.0) if isinstance(rate, Tensor) else max(rate, 0.0)
                )
                moved = current[k] - rate * grads[k]
                current[k] = anchor[k] + (moved - anchor[k]) / shrink
        taken += 1
    with torch.no_grad():
        losses.append(float(task_loss(learner.net, current, x, y, learner.loss)))
    return AdaptResult(current, taken, tuple(losses), hit, time.perf_counter() - begin)


def _problem(name: str, options: dict[str, Any], backend: str = "autograd", seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    learner = LEARNERS[name](
        PolicyNet(3, (8,)), inner_steps=4, inner_lr=0.1, backend=backend, seed=seed, **options
    )
    anchor = {k: v + 0.3 * torch.randn(v.shape, generator=g) for k, v in learner.params.items()}
    fisher = {k: torch.rand(v.shape, generator=g) ** 2 for k, v in anchor.items()}
    x = torch.randn(12, 3, generator=g)
    y = -x[:, 0] + 0.5 * x[:, 1] + 0.1 * torch.randn(12, generator=g)
    return learner, anchor, fisher, x, y


@pytest.mark.parametrize("backend", ["autograd", "func"])
@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_the_proximal_step_reproduces_the_old_penalised_loop(
    name: str, options: dict[str, Any], backend: str
) -> None:
    learner, anchor, fisher, x, y = _problem(name, options, backend)
    if name == "metasgd":  # learned step sizes, some negative: no shrinkage on those
        sizes = learner.alpha if isinstance(learner.alpha, tuple) else (learner.alpha,)
        signs = [
            {k: torch.where(torch.rand(v.shape) < 0.3, -v, v) for k, v in a.items()} for a in sizes
        ]
        learner.alpha = tuple(signs) if isinstance(learner.alpha, tuple) else signs[0]
    for lam in (0.0, 3.0, 1e4):
        expected = _old_proximal_adapt(learner, x, y, anchor, fisher, lam)
        result = learner.adapt(x, y, start=anchor, step=ProximalStep(anchor, fisher, lam))
        assert (result.steps, result.deadline_hit) == (expected.steps, expected.deadline_hit)
        assert result.losses == expected.losses
        for k, v in expected.params.items():
            assert torch.equal(result.params[k], v), (lam, k)


def test_with_zero_importance_it_is_the_plain_step() -> None:
    learner, anchor, fisher, x, y = _problem("fomaml", {})
    zero = {k: torch.zeros_like(v) for k, v in fisher.items()}
    plain = learner.adapt(x, y, start=anchor, step=SGD_STEP)
    held = learner.adapt(x, y, start=anchor, step=ProximalStep(anchor, zero, 1e6))
    for k in plain.params:  # a + (w - r g - a) is w - r g up to rounding
        torch.testing.assert_close(held.params[k], plain.params[k], rtol=0, atol=1e-6)


def test_one_step_minimises_the_quadratic_model_plus_the_penalty() -> None:
    g = torch.Generator().manual_seed(1)
    w, a, grad = (torch.randn(5, generator=g) for _ in range(3))
    importance, lam, rate = torch.rand(5, generator=g), 4.0, 0.2
    new = ProximalStep({"w": a}, {"w": importance}, lam)({"w": w}, {"w": grad}, {"w": rate}, ["w"])
    # d/dw' [|w' - (w - r g)|^2 / (2 r) + lam / 2 F (w' - a)^2] = 0 at the step's result
    stationary = (new["w"] - (w - rate * grad)) / rate + lam * importance * (new["w"] - a)
    torch.testing.assert_close(stationary, torch.zeros(5), rtol=0, atol=1e-5)


@pytest.mark.parametrize("lam", [1e3, 1e8, 1e15])
def test_an_enormous_penalty_is_stable_and_stays_at_the_anchor(lam: float) -> None:
    learner, anchor, fisher, x, y = _problem("anil", {})
    fisher = {k: f + 1.0 for k, f in fisher.items()}  # every coordinate protected
    result = learner.adapt(x, y, start=anchor, steps=50, step=ProximalStep(anchor, fisher, lam))
    moved = max(float((result.params[k] - anchor[k]).abs().max()) for k in anchor)
    assert all(bool(torch.isfinite(v).all()) for v in result.params.values())
    assert moved < 10.0 / lam
    # The explicit gradient step on the same penalty overshoots the anchor and blows up.
    w = {k: v.clone() for k, v in anchor.items()}
    w = {k: v + 0.01 for k, v in w.items()}
    for _ in range(20):
        w = {k: v - 0.1 * lam * fisher[k] * (v - anchor[k]) for k, v in w.items()}
    assert not all(bool((w[k] - anchor[k]).abs().max() < 1.0) for k in w)


def test_lam_is_checked() -> None:
    with pytest.raises(ValueError, match="lam must be a non-negative number, got -1"):
        ProximalStep({}, {}, -1.0)
