"""The batched paths (equal sizes and padded ragged sizes, both backends) compute what one task
at a time does."""

from __future__ import annotations

import pytest
import torch

from adaptd.adapters.fast_weights import BACKENDS, adapt, grad_and_loss, mse, task_loss
from adaptd.adapters.meta.batched import (
    adapt_tasks,
    adapted_query_losses,
    broadcast,
    stack_tasks,
    task_grads,
    task_losses,
)
from adaptd.adapters.network import PolicyNet, init_params

SIZES = {"equal": [6, 6, 6, 6], "ragged": [1, 6, 9, 3], "single": [5]}


def _tasks(sizes: list[int], seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    xs = [torch.randn(n, 3, generator=g) for n in sizes]
    ys = [x[:, 1] * (i - 1.5) + 0.2 for i, x in enumerate(xs)]
    return xs, ys


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", sorted(SIZES))
def test_adapt_tasks_matches_one_task_at_a_time(backend: str, shape: str) -> None:
    net = PolicyNet(3, (8, 8))
    theta = init_params(net, seed=1)
    xs, ys = _tasks(SIZES[shape])
    stacked = adapt_tasks(net, theta, xs, ys, steps=4, lr=0.1, backend=backend)
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        single = adapt(net, theta, x, y, steps=4, lr=0.1, backend="autograd").params
        for name in theta:
            torch.testing.assert_close(stacked[name][i], single[name], atol=1e-6, rtol=1e-5)
            assert not stacked[name].requires_grad


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", sorted(SIZES))
def test_task_grads_and_losses_match_one_task_at_a_time(backend: str, shape: str) -> None:
    net = PolicyNet(3, (8,))
    xs, ys = _tasks(SIZES[shape], seed=2)
    per_task = [init_params(net, seed=10 + i) for i in range(len(xs))]
    params = {k: torch.stack([p[k] for p in per_task]) for k in per_task[0]}
    grads, losses = task_grads(net, params, xs, ys, backend=backend)
    again = task_losses(net, params, xs, ys)
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        g, loss = grad_and_loss(net, per_task[i], x, y)
        torch.testing.assert_close(losses[i], loss, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(again[i], mse(net, per_task[i], x, y), atol=1e-6, rtol=1e-5)
        for name in g:
            torch.testing.assert_close(grads[name][i], g[name], atol=1e-6, rtol=1e-5)


def test_broadcast_is_a_view() -> None:
    theta = {"w": torch.arange(3.0)}
    view = broadcast(theta, 4)["w"]
    assert view.shape == (4, 3)
    assert view.data_ptr() == theta["w"].data_ptr()


@pytest.mark.parametrize("head_only", [False, True])
@pytest.mark.parametrize("norm", ["none", "batch"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_adapted_query_losses_match_one_task_at_a_time(backend, norm, head_only) -> None:
    """Padded, differentiable, second order: the same values and meta-gradients as each task
    adapted on its own with ``create_graph=True``."""
    net = PolicyNet(3, (8,), norm=norm).double()
    names = (f"{net.head}.weight", f"{net.head}.bias") if head_only else None
    # In float64: the batched and the one-task paths sum in different orders, and in float32
    # the CPU's kernels decide by how much (8e-5 relative on one Xeon, below 1e-5 on an EPYC).
    theta = {k: v.double().requires_grad_() for k, v in init_params(net, seed=3).items()}
    xs, ys = _tasks([2, 5, 3], seed=4)
    qxs, qys = _tasks([4, 1, 3], seed=5)
    xs, ys, qxs, qys = ([t.double() for t in ts] for ts in (xs, ys, qxs, qys))
    losses = adapted_query_losses(
        net,
        theta,
        stack_tasks(xs, ys),
        stack_tasks(qxs, qys),
        steps=2,
        lr=0.1,
        loss="mse",
        backend=backend,
        names=names,
    )
    grads = torch.autograd.grad(losses.sum(), list(theta.values()))
    expected = []
    for x, y, qx, qy in zip(xs, ys, qxs, qys, strict=True):
        phi = adapt(net, theta, x, y, steps=2, lr=0.1, create_graph=True, names=names).params
        expected.append(task_loss(net, phi, qx, qy))
    torch.testing.assert_close(losses, torch.stack(expected), atol=1e-12, rtol=1e-10)
    reference = torch.autograd.grad(torch.stack(expected).sum(), list(theta.values()))
    for got, want in zip(grads, reference, strict=True):
        torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-10)


def _qlike_tasks(sizes: list[int], seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    xs = [3.0 * torch.randn(n, 3, generator=g) for n in sizes]
    ys = [torch.randn(n, generator=g) ** 2 + 1e-3 for n in sizes]
    return xs, ys


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", sorted(SIZES))
def test_keep_best_per_task_matches_one_task_at_a_time(backend: str, shape: str) -> None:
    # A step size that overshoots on QLIKE for some tasks: each task's best iterate, as the
    # single-task loop keeps it.
    net = PolicyNet(3, (8,), output_scale=0.1)
    theta = init_params(net, seed=5)
    xs, ys = _qlike_tasks(SIZES[shape], seed=2)
    kwargs = {"steps": 8, "lr": 3.0, "loss": "qlike"}
    stacked = adapt_tasks(net, theta, xs, ys, backend=backend, keep_best=True, **kwargs)
    last = adapt_tasks(net, theta, xs, ys, backend=backend, **kwargs)
    kept_early = 0
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        single = adapt(net, theta, x, y, backend="autograd", keep_best=True, **kwargs)
        kept_early += single.kept != single.steps
        for name in theta:
            torch.testing.assert_close(stacked[name][i], single.params[name], atol=1e-5, rtol=1e-4)
        mine = {k: v[i] for k, v in stacked.items()}
        theirs = {k: v[i] for k, v in last.items()}
        assert task_loss(net, mine, x, y, "qlike") <= task_loss(net, theirs, x, y, "qlike") + 1e-6
    assert kept_early > 0  # the step size did overshoot somewhere
