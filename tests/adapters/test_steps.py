"""The step hook of the inner loop: the default step is today's ``{k: p - lr * g}`` bit for
bit (first and second order, both backends, subsets and learned schedules), and a custom step
is what the loop applies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
import torch
from torch import Tensor

from adaptd.adapters.fast_weights import (
    BACKENDS,
    adapt,
    grad_and_loss,
    rate_schedule,
    rates_at,
    task_loss,
)
from adaptd.adapters.network import PolicyNet, init_params
from adaptd.adapters.steps import SGD_STEP, InnerStep, SGDStep


def _problem(seed: int) -> tuple[PolicyNet, dict[str, Tensor], Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    net = PolicyNet(4, (8,))
    x = torch.randn(10, 4, generator=g)
    y = x[:, 0] - 0.5 * x[:, 2] + 0.1 * torch.randn(10, generator=g)
    return net, init_params(net, seed=seed), x, y


def _reference_loop(net, params, x, y, *, steps, lr, backend, create_graph, names):
    """The inner loop as it was written before the hook: ``{k: p - lr * g}`` inline."""
    keys = list(params) if names is None else list(names)
    schedule = rate_schedule(lr, keys)
    current = dict(params) if create_graph else {k: v.detach() for k, v in params.items()}
    if create_graph and backend == "autograd":
        current.update(
            {
                k: v if v.requires_grad else v.detach().requires_grad_()
                for k, v in current.items()
                if k in keys
            }
        )
    losses = []
    for step in range(steps):
        grads, value = grad_and_loss(
            net, current, x, y, backend=backend, create_graph=create_graph, names=keys
        )
        losses.append(float(value.detach()))
        rates = rates_at(schedule, step)
        with torch.set_grad_enabled(create_graph):
            current = {**current, **{k: current[k] - rates[k] * grads[k] for k in keys}}
    with torch.no_grad():
        losses.append(float(task_loss(net, current, x, y)))
    return current, losses


def _learned_rates(params: Mapping[str, Tensor], seed: int) -> list[dict[str, Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [{k: 0.05 * torch.rand(v.shape, generator=g) for k, v in params.items()}] * 2


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("lr_kind", ["number", "schedule"])
@pytest.mark.parametrize("subset", [False, True])
def test_the_default_step_is_the_plain_step_bit_for_bit(
    backend: str, create_graph: bool, lr_kind: str, subset: bool
) -> None:
    net, params, x, y = _problem(0)
    names = ("layers.2.weight", "layers.2.bias") if subset else None
    lr = 0.1 if lr_kind == "number" else _learned_rates(params, 1)
    if create_graph:
        params = {k: v.clone().requires_grad_() for k, v in params.items()}
    kwargs = {"steps": 3, "lr": lr, "backend": backend, "create_graph": create_graph}
    expected, losses = _reference_loop(net, params, x, y, names=names, **kwargs)
    for step in ({}, {"step": SGD_STEP}, {"step": SGDStep()}):
        result = adapt(net, params, x, y, names=names, **kwargs, **step)
        assert list(result.losses) == losses
        for k, v in expected.items():
            assert torch.equal(result.params[k], v), k
    if create_graph:  # still differentiable through every step, to the same gradient
        total = sum(v.sum() for v in result.params.values())
        mine = torch.autograd.grad(total, list(params.values()), allow_unused=True)
        ref = torch.autograd.grad(
            sum(v.sum() for v in expected.values()), list(params.values()), allow_unused=True
        )
        for a, b in zip(mine, ref, strict=True):
            assert (a is None and b is None) or torch.equal(a, b)


class _Recording:
    """A step that records its calls and moves the adapted weights by ``-rate * g`` twice."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], dict[str, float | Tensor]]] = []

    def __call__(
        self,
        params: Mapping[str, Tensor],
        grads: Mapping[str, Tensor],
        rates: Mapping[str, float | Tensor],
        names: Sequence[str],
    ) -> dict[str, Tensor]:
        assert set(grads) == set(names)
        self.calls.append((list(names), dict(rates)))
        return {**params, **{k: params[k] - 2 * rates[k] * grads[k] for k in names}}


def test_a_custom_step_is_called_once_a_step_with_that_steps_rates_and_names() -> None:
    net, params, x, y = _problem(2)
    step = _Recording()
    assert isinstance(step, InnerStep)
    names = ["layers.2.bias"]
    schedule = [{"layers.2.bias": 0.1}, {"layers.2.bias": 0.2}]
    result = adapt(net, params, x, y, steps=3, lr=schedule, names=names, step=step)
    assert [c[0] for c in step.calls] == [names] * 3
    assert [c[1]["layers.2.bias"] for c in step.calls] == [0.1, 0.2, 0.2]  # the last reused
    doubled = adapt(
        net, params, x, y, steps=3, lr=[{"layers.2.bias": r} for r in (0.2, 0.4)], names=names
    )
    for k in params:
        torch.testing.assert_close(result.params[k], doubled.params[k], rtol=0, atol=1e-7)
    assert torch.equal(result.params["layers.0.weight"], params["layers.0.weight"])


def test_the_deadline_stops_before_any_step_is_called() -> None:
    net, params, x, y = _problem(3)
    step = _Recording()
    result = adapt(net, params, x, y, steps=3, lr=0.1, deadline_s=0.0, step=step)
    assert result.deadline_hit and result.steps == 0 and step.calls == []
