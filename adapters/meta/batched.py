"""The inner loop over a batch of tasks, all tasks at once.

Two backends compute the same maths (tests hold them equal):

* "autograd", the fast path: the weights are stacked, one copy a task (``{name: (T, *shape)}``),
  the forward is :func:`adaptd.adapters.network.forward` with ``torch.baddbmm``, and each
  step takes one ``torch.autograd.grad`` of the *sum* of the task losses. Task ``i``'s loss
  depends only on its own copy of the weights, so that gradient is exactly the stack of
  per-task gradients.
* "func", the generic path: ``torch.func.vmap`` over tasks of ``torch.func.grad`` of a
  ``functional_call`` of the module.

Measured on the 2-core machine (one thread) on the MAML sinusoid protocol (meta-batch 25,
10 + 10 points, ``PolicyNet(1, (40, 40), "relu")``), a second-order MAML meta-gradient with
5 inner steps takes about 2x longer through "func" than through "autograd"; see
:mod:`adaptd.adapters.meta.maml` for the figures.

Tasks of different sizes (an episode cut short by a shift) are zero-padded to the longest and
their loss weighted by ``1/n_i`` on real rows and 0 on padding (:class:`TaskBatch`): the same
loss and gradients as each task's own mean, still in one batched call. The same weights mask
the batch-norm statistics, so padding does not change them either.

A single task (fewer than ``VMAP_MIN_TASKS``) is adapted directly, without batching.

Examples
--------
>>> import torch
>>> from adaptd.adapters.network import PolicyNet, init_params
>>> net = PolicyNet(2, (4,))
>>> theta = init_params(net, seed=0)
>>> xs, ys = [torch.ones(3, 2), torch.zeros(5, 2)], [torch.ones(3), torch.zeros(5)]
>>> phi = adapt_tasks(net, theta, xs, ys, steps=2, lr=0.1, backend="autograd")
>>> tuple(phi["layers.0.weight"].shape)
(2, 4, 2)
>>> task_losses(net, phi, xs, ys).shape
torch.Size([2])
>>> stack_tasks(xs, ys).weights[0]
tensor([0.3333, 0.3333, 0.3333, 0.0000, 0.0000])
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import NamedTuple

import torch
from torch import Tensor
from torch.func import grad, grad_and_value, vmap

from ..fast_weights import (
    Backend,
    Params,
    StepSchedule,
    adapt,
    grad_and_loss,
    rate_schedule,
    rates_at,
    reduce_rows,
    row_losses,
    task_loss,
)
from ..network import PolicyNet, features, head
from ..protocol import Loss
from ..steps import SGD_STEP

__all__ = [
    "VMAP_MIN_TASKS",
    "TaskBatch",
    "adapt_tasks",
    "adapted_query_losses",
    "broadcast",
    "stack_tasks",
    "task_grads",
    "task_losses",
]

VMAP_MIN_TASKS = 2


class TaskBatch(NamedTuple):
    """The data of several tasks, stacked (zero-padded to the longest task)."""

    x: Tensor
    """Features ``(T, n, in_dim)``."""
    y: Tensor
    """Targets ``(T, n)``."""
    weights: Tensor | None
    """Row weights ``(T, n)``: ``1/n_i`` on task ``i``'s real rows, 0 on padding; ``None``
    when every task has ``n`` rows (a plain mean)."""

    def data(self) -> tuple[Tensor, ...]:
        """The tensors a per-task function takes under ``vmap``."""
        return (self.x, self.y) if self.weights is None else (self.x, self.y, self.weights)


def stack_tasks(xs: Sequence[Tensor], ys: Sequence[Tensor]) -> TaskBatch:
    """Stack the tasks' data, padding shorter tasks (see :class:`TaskBatch`)."""
    sizes = [x.shape[0] for x in xs]
    if len(set(sizes)) == 1:
        return TaskBatch(torch.stack(list(xs)), torch.stack(list(ys)), None)
    longest = max(sizes)
    x = xs[0].new_zeros((len(xs), longest, xs[0].shape[1]))
    y = ys[0].new_zeros((len(ys), longest))
    w = xs[0].new_zeros((len(ys), longest))
    for i, (xi, yi) in enumerate(zip(xs, ys, strict=True)):
        x[i, : sizes[i]] = xi
        y[i, : sizes[i]] = yi
        w[i, : sizes[i]] = 1.0 / sizes[i]
    return TaskBatch(x, y, w)


def broadcast(params: Mapping[str, Tensor], n_tasks: int) -> Params:
    """The same weights viewed as a stack of ``n_tasks`` (no copy)."""
    return {k: v.expand(n_tasks, *v.shape) for k, v in params.items()}


def adapt_tasks(
    net: PolicyNet,
    theta: Mapping[str, Tensor],
    xs: Sequence[Tensor],
    ys: Sequence[Tensor],
    *,
    steps: int,
    lr: float,
    backend: Backend,
    loss: Loss = "mse",
    keep_best: bool = False,
) -> Params:
    """First-order inner loop from ``theta`` on every task; the adapted weights, stacked.
    ``keep_best``: each task's iterate with the least loss on its own data instead of its
    last (as :func:`adaptd.adapters.fast_weights.adapt` with ``keep_best``)."""
    if len(xs) < VMAP_MIN_TASKS:
        results = [
            adapt(
                net,
                theta,
                x,
                y,
                steps=steps,
                lr=lr,
                backend=backend,
                loss=loss,
                keep_best=keep_best,
            ).params
            for x, y in zip(xs, ys, strict=True)
        ]
        return {k: torch.stack([r[k] for r in results]) for k in theta}
    batch = stack_tasks(xs, ys)
    keys = list(theta)
    rates = dict.fromkeys(keys, lr)
    if backend == "func":
        per_task = _per_task_loss(net, loss)

        def inner(*task: Tensor) -> Params:
            current = {k: v.detach() for k, v in theta.items()}
            best: tuple[Params, Tensor] | None = None
            for _ in range(steps):
                grads, value = grad_and_value(per_task)(current, *task)
                if keep_best:
                    best = _better(current, value, best, ties=False)
                current = SGD_STEP(current, grads, rates, keys)
            if keep_best:
                return _better(current, per_task(current, *task), best, ties=True)[0]
            return current

        return vmap(inner)(*batch.data())
    current = {k: v.detach().clone() for k, v in broadcast(theta, len(xs)).items()}
    best = None
    for _ in range(steps):
        grads, values = _stacked_grads(net, current, batch, loss)
        with torch.no_grad():
            if keep_best:
                best = _better(current, values, best, ties=False)
            current = SGD_STEP(current, grads, rates, keys)
    if keep_best:
        final = task_loss(net, current, batch.x, batch.y, loss, weights=batch.weights).detach()
        with torch.no_grad():
            current = _better(current, final, best, ties=True)[0]
    return current


def _better(
    params: Params, values: Tensor, best: tuple[Params, Tensor] | None, *, ties: bool
) -> tuple[Params, Tensor]:
    """Per task, ``params`` where its loss ``values`` beats the ``best`` so far (or equals
    it, with ``ties``: the last iterate wins a tie), and the best's weights elsewhere; works
    on stacked weights (``values`` ``(T,)``) and under ``vmap`` (``values`` a scalar). A NaN
    loss never beats."""
    if best is None:
        return params, values
    weights, least = best
    wins = values <= least if ties else values < least
    out = {
        k: torch.where(wins.reshape(wins.shape + (1,) * (v.ndim - wins.ndim)), v, weights[k])
        for k, v in params.items()
    }
    return out, torch.where(wins, values, least)


def task_losses(
    net: PolicyNet,
    params: Mapping[str, Tensor],
    xs: Sequence[Tensor],
    ys: Sequence[Tensor],
    loss: Loss = "mse",
) -> Tensor:
    """Per-task loss ``(n_tasks,)`` of stacked weights ``params`` on each task's data."""
    with torch.no_grad():
        batch = stack_tasks(xs, ys)
        return task_loss(net, params, batch.x, batch.y, loss, weights=batch.weights)


def task_grads(
    net: PolicyNet,
    params: Mapping[str, Tensor],
    xs: Sequence[Tensor],
    ys: Sequence[Tensor],
    *,
    backend: Backend,
    loss: Loss = "mse",
) -> tuple[Params, Tensor]:
    """Per-task gradients of each task's loss at its own stacked weights, and the losses."""
    if len(xs) < VMAP_MIN_TASKS:
        pairs = [
            grad_and_loss(
                net, {k: v[i] for k, v in params.items()}, x, y, backend=backend, loss=loss
            )
            for i, (x, y) in enumerate(zip(xs, ys, strict=True))
        ]
        grads = {k: torch.stack([g[k] for g, _ in pairs]) for k in params}
        return grads, torch.stack([value for _, value in pairs])
    batch = stack_tasks(xs, ys)
    inputs = {k: v.detach() for k, v in params.items()}
    if backend == "func":
        return vmap(grad_and_value(_per_task_loss(net, loss)))(inputs, *batch.data())
    return _stacked_grads(net, inputs, batch, loss)


def adapted_query_losses(
    net: PolicyNet,
    theta: Mapping[str, Tensor],
    support: TaskBatch,
    query: TaskBatch,
    *,
    steps: int,
    lr: StepSchedule,
    loss: Loss,
    backend: Backend,
    names: Collection[str] | None = None,
) -> Tensor:
    """Each task's query loss after ``steps`` differentiable inner steps from ``theta``.

    The result ``(T,)`` stays a differentiable function of ``theta`` and of any step-size
    tensors in ``lr`` (a step size, or a schedule of one a step, as for
    :func:`~adaptd.adapters.fast_weights.adapt`): the inner gradients are taken with
    ``create_graph=True``, so the gradient of its mean is the second-order meta-gradient.
    ``names`` limits the inner loop to those parameters (the rest are shared by all tasks and
    only meta-learned).
    """
    keys = list(theta) if names is None else list(names)
    schedule = rate_schedule(lr, keys)
    if backend == "func":
        return _func_query_losses(net, theta, support, query, steps, schedule, loss, keys)
    current = broadcast({k: theta[k] for k in keys}, support.x.shape[0])
    if set(keys) == {f"{net.head}.weight", f"{net.head}.bias"}:
        # Head-only adaptation: the body is fixed in the inner loop, so its features are
        # computed once (unstacked body weights broadcast over the task stack) and stand in
        # for the inputs.
        support, query = (
            b._replace(x=features(net, theta, b.x, b.weights)) for b in (support, query)
        )

        def losses(params: Params, batch: TaskBatch) -> Tensor:
            return _reduce(head(net, params, batch.x), batch, loss)
    else:
        current = {**theta, **current}

        def losses(params: Params, batch: TaskBatch) -> Tensor:
            return task_loss(net, params, batch.x, batch.y, loss, weights=batch.weights)

    for step in range(steps):
        value = losses(current, support).sum()
        grads = torch.autograd.grad(value, [current[k] for k in keys], create_graph=True)
        by_name = dict(zip(keys, grads, strict=True))
        current = SGD_STEP(current, by_name, rates_at(schedule, step), keys)
    return losses(current, query)


def _reduce(output: Tensor, batch: TaskBatch, loss: Loss) -> Tensor:
    return reduce_rows(row_losses(output, batch.y, loss), batch.weights)


def _func_query_losses(
    net: PolicyNet,
    theta: Mapping[str, Tensor],
    support: TaskBatch,
    query: TaskBatch,
    steps: int,
    schedule: Sequence[Mapping[str, float | Tensor]],
    loss: Loss,
    keys: list[str],
) -> Tensor:
    support_loss = _per_task_loss(net, loss)
    query_loss = _per_task_loss(net, loss)
    n_support = len(support.data())

    def per_task(*task: Tensor) -> Tensor:
        current = dict(theta)

        def objective(sub: Params) -> Tensor:
            return support_loss({**current, **sub}, *task[:n_support])

        for step in range(steps):
            grads = grad(objective)({k: current[k] for k in keys})
            current = SGD_STEP(current, grads, rates_at(schedule, step), keys)
        return query_loss(current, *task[n_support:])

    return vmap(per_task)(*support.data(), *query.data())


def _per_task_loss(net: PolicyNet, loss: Loss) -> Callable[..., Tensor]:
    """The loss of one task's rows for ``vmap``: ``f(params, x, y[, weights])``."""

    def per_task(params: Params, x: Tensor, y: Tensor, weights: Tensor | None = None) -> Tensor:
        return task_loss(net, params, x, y, loss, weights=weights, backend="func")

    return per_task


def _stacked_grads(
    net: PolicyNet, params: Mapping[str, Tensor], batch: TaskBatch, loss: Loss
) -> tuple[Params, Tensor]:
    leaves = {k: v.detach().requires_grad_() for k, v in params.items()}
    with torch.enable_grad():
        losses = task_loss(net, leaves, batch.x, batch.y, loss, weights=batch.weights)
        grads = torch.autograd.grad(losses.sum(), tuple(leaves.values()))
    return dict(zip(leaves.keys(), grads, strict=True)), losses.detach()
