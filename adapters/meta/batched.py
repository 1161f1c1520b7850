"""The inner loop over a batch of tasks, as one ``torch.func.vmap`` call.

Measured on the 2-core machine (``torch.set_num_threads(1)``, ``PolicyNet(10, (32, 32))``,
12 shots, 5 steps), one adaptation per task:

=======  ===================  ===================  ===================  ===================
tasks    loop, autograd       vmap, autograd       loop, func           vmap, func
=======  ===================  ===================  ===================  ===================
1        1.4 ms               2.7 ms               2.8 ms               3.5 ms
2        2.6 ms               2.7 ms               5.5 ms               3.5 ms
8        10.2 ms              3.0 ms               21.0 ms              3.6 ms
16       19.9 ms              3.4 ms               42.2 ms              4.1 ms
=======  ===================  ===================  ===================  ===================

so vmap is used from ``VMAP_MIN_TASKS`` tasks on (break-even for autograd at two, a clear win
from there) and a single task is adapted directly.

Tasks of different sizes (an episode cut short by a shift) are zero-padded to the longest and
their loss weighted by ``1/n_i`` on real rows and 0 on padding: the same loss and gradients as
each task's own mean squared error, still in one vmap call.

The "autograd" backend under vmap runs the batched forward through vmap and takes the gradient
of the summed task losses with ``torch.autograd.grad``: task ``i``'s loss depends only on its
own copy of the weights, so that gradient is exactly the stack of per-task gradients. The
"func" backend vmaps ``torch.func.grad`` itself.

Adapted weights and per-task gradients are returned stacked: ``{name: (n_tasks, *shape)}``.

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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor
from torch.func import functional_call, grad_and_value, vmap

from ..fast_weights import Backend, Params, adapt, grad_and_loss, mse
from ..network import PolicyNet

__all__ = ["VMAP_MIN_TASKS", "adapt_tasks", "broadcast", "task_grads", "task_losses"]

VMAP_MIN_TASKS = 2

TaskLoss = Callable[..., Tensor]


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
) -> Params:
    """First-order inner loop from ``theta`` on every task; the adapted weights, stacked."""
    if len(xs) < VMAP_MIN_TASKS:
        results = [
            adapt(net, theta, x, y, steps=steps, lr=lr, backend=backend).params
            for x, y in zip(xs, ys, strict=True)
        ]
        return {k: torch.stack([r[k] for r in results]) for k in theta}
    loss, data = _batched(net, xs, ys)
    if backend == "func":

        def inner(*task: Tensor) -> Params:
            current = {k: v.detach() for k, v in theta.items()}
            for _ in range(steps):
                grads, _ = grad_and_value(loss)(current, *task)
                current = {k: v - lr * grads[k] for k, v in current.items()}
            return current

        return vmap(inner)(*data)
    current = {k: v.detach().clone() for k, v in broadcast(theta, len(xs)).items()}
    for _ in range(steps):
        grads, _ = _autograd_task_grads(loss, current, data)
        with torch.no_grad():
            current = {k: v - lr * grads[k] for k, v in current.items()}
    return current


def task_losses(
    net: PolicyNet, params: Mapping[str, Tensor], xs: Sequence[Tensor], ys: Sequence[Tensor]
) -> Tensor:
    """Per-task MSE ``(n_tasks,)`` of stacked weights ``params`` on each task's data."""
    with torch.no_grad():
        if len(xs) < VMAP_MIN_TASKS:
            rows = [_row(params, i) for i in range(len(xs))]
            return torch.stack([mse(net, p, x, y) for p, x, y in zip(rows, xs, ys, strict=True)])
        loss, data = _batched(net, xs, ys)
        return vmap(loss)(dict(params), *data)


def task_grads(
    net: PolicyNet,
    params: Mapping[str, Tensor],
    xs: Sequence[Tensor],
    ys: Sequence[Tensor],
    *,
    backend: Backend,
) -> tuple[Params, Tensor]:
    """Per-task gradients of each task's MSE at its own stacked weights, and the losses."""
    if len(xs) < VMAP_MIN_TASKS:
        pairs = [
            grad_and_loss(net, _row(params, i), x, y, backend=backend)
            for i, (x, y) in enumerate(zip(xs, ys, strict=True))
        ]
        grads = {k: torch.stack([g[k] for g, _ in pairs]) for k in params}
        return grads, torch.stack([value for _, value in pairs])
    loss, data = _batched(net, xs, ys)
    inputs = {k: v.detach() for k, v in params.items()}
    if backend == "func":
        return vmap(grad_and_value(loss))(inputs, *data)
    return _autograd_task_grads(loss, inputs, data)


def _autograd_task_grads(
    loss: TaskLoss, params: Mapping[str, Tensor], data: tuple[Tensor, ...]
) -> tuple[Params, Tensor]:
    leaves = {k: v.detach().requires_grad_() for k, v in params.items()}
    with torch.enable_grad():
        losses = vmap(loss)(leaves, *data)
        grads = torch.autograd.grad(losses.sum(), tuple(leaves.values()))
    return dict(zip(leaves.keys(), grads, strict=True)), losses.detach()


def _row(params: Mapping[str, Tensor], i: int) -> Params:
    return {k: v[i] for k, v in params.items()}


def _batched(
    net: PolicyNet, xs: Sequence[Tensor], ys: Sequence[Tensor]
) -> tuple[TaskLoss, tuple[Tensor, ...]]:
    """A per-task loss for vmap and the stacked task data it takes after the weights."""
    sizes = [x.shape[0] for x in xs]
    if len(set(sizes)) == 1:
        return (lambda p, x, y: mse(net, p, x, y)), (torch.stack(list(xs)), torch.stack(list(ys)))
    longest = max(sizes)
    x = xs[0].new_zeros((len(xs), longest, xs[0].shape[1]))
    y = ys[0].new_zeros((len(ys), longest))
    w = ys[0].new_zeros((len(ys), longest))
    for i, (xi, yi) in enumerate(zip(xs, ys, strict=True)):
        x[i, : sizes[i]] = xi
        y[i, : sizes[i]] = yi
        w[i, : sizes[i]] = 1.0 / sizes[i]

    def weighted(p: Params, x1: Tensor, y1: Tensor, w1: Tensor) -> Tensor:
        return torch.sum(w1 * (functional_call(net, p, (x1,)) - y1) ** 2)

    return weighted, (x, y, w)
