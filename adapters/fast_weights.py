"""Fast weights: few-shot adaptation of a policy as a pure function of a dict of tensors.

``Params`` is ``dict[str, Tensor]`` keyed like ``net.named_parameters()``. The network is only
the architecture, called through ``torch.func.functional_call``; it is never mutated and no
tensor handed in is modified in place, so a dict read once stays a valid snapshot.

The inner loop is plain gradient descent, ``{k: p - lr * g}``, with the gradient from either
``torch.autograd.grad`` ("autograd", the lower per-call overhead for one small task) or
``torch.func.grad`` ("func", composable with ``torch.func.vmap``). Both compute the same maths.

Examples
--------
>>> import torch
>>> from adaptd.adapters.network import PolicyNet, init_params
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> net = PolicyNet(in_dim=3, hidden=(8,))
>>> x = torch.randn(12, 3)
>>> y = x[:, 0] - 0.5
>>> result = adapt(net, init_params(net, seed=0), x, y, steps=5, lr=0.1)
>>> result.steps, len(result.losses), result.deadline_hit
(5, 6, False)
>>> result.losses[-1] < result.losses[0]
True
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Literal, NamedTuple

import torch
from torch import Tensor
from torch.func import functional_call, grad_and_value

from .network import PolicyNet

__all__ = ["BACKENDS", "AdaptResult", "Backend", "Params", "adapt", "grad_and_loss", "mse"]

Params = dict[str, Tensor]
Backend = Literal["autograd", "func"]
BACKENDS: tuple[Backend, ...] = ("autograd", "func")


def mse(net: PolicyNet, params: Mapping[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
    """Mean squared error of ``net`` run with ``params`` on ``x`` against ``y`` (a 0-d tensor).

    No argument checks: this is the hot path, also called under ``torch.func.vmap``.
    """
    prediction = functional_call(net, dict(params), (x,))
    return torch.mean((prediction - y) ** 2)


def grad_and_loss(
    net: PolicyNet,
    params: Mapping[str, Tensor],
    x: Tensor,
    y: Tensor,
    *,
    backend: Backend = "autograd",
    create_graph: bool = False,
) -> tuple[Params, Tensor]:
    """One gradient of the support MSE with respect to ``params``, and the loss itself.

    With ``create_graph=False`` the gradients are detached. With ``create_graph=True`` they stay
    differentiable with respect to whatever ``params`` depend on (second-order meta-learning);
    for the "autograd" backend every tensor in ``params`` must then require grad.
    """
    if backend == "autograd":
        leaves = (
            params if create_graph else {k: v.detach().requires_grad_() for k, v in params.items()}
        )
        with torch.enable_grad():
            loss = mse(net, leaves, x, y)
            grads = torch.autograd.grad(loss, tuple(leaves.values()), create_graph=create_graph)
        if not create_graph:
            loss = loss.detach()
        return dict(zip(leaves.keys(), grads, strict=True)), loss
    if backend == "func":
        inputs = dict(params) if create_graph else {k: v.detach() for k, v in params.items()}
        grads, loss = grad_and_value(lambda p: mse(net, p, x, y))(inputs)
        return grads, loss
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


class AdaptResult(NamedTuple):
    """What one adaptation produced."""

    params: Params
    """The adapted fast weights (detached unless ``create_graph=True``)."""
    steps: int
    """Gradient steps actually taken (fewer than requested when the deadline hit)."""
    losses: tuple[float, ...]
    """Support loss before step 1, after step 1, ..., after the last step (``steps + 1`` values)."""
    deadline_hit: bool
    """True when the deadline stopped the loop before the requested steps."""
    seconds: float
    """Wall-clock time of the whole call."""


def adapt(
    net: PolicyNet,
    params: Mapping[str, Tensor],
    x: Tensor,
    y: Tensor,
    *,
    steps: int,
    lr: float,
    deadline_s: float | None = None,
    backend: Backend = "autograd",
    create_graph: bool = False,
) -> AdaptResult:
    """Take up to ``steps`` gradient steps of size ``lr`` on the support set ``(x, y)``.

    Parameters
    ----------
    net
        The architecture; run through ``functional_call`` and never modified.
    params
        Starting fast weights (typically a meta-learned initialisation); not modified.
    x, y
        Support features ``(n, in_dim)`` and targets ``(n,)``, ``n >= 1``; cast to the dtype
        of ``params``.
    steps, lr
        Inner-loop length (``>= 0``) and step size (``> 0``).
    deadline_s
        Wall-clock budget from the start of the call, checked with ``time.perf_counter``
        before every step; once spent, the loop stops and returns the weights so far with
        ``deadline_hit=True`` (zero steps if the budget is already spent at the start).
        ``None`` means no deadline.
    backend
        "autograd" (``torch.autograd.grad``) or "func" (``torch.func.grad``).
    create_graph
        Keep the inner loop differentiable (for second-order meta-gradients); the default
        first-order loop detaches every step.
    """
    start = time.perf_counter()
    _check_adapt_args(net, params, x, y, steps=steps, lr=lr, deadline_s=deadline_s)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    dtype = next(iter(params.values())).dtype
    x = x.to(dtype)
    y = y.to(dtype)
    current: Params = dict(params) if create_graph else {k: v.detach() for k, v in params.items()}
    if create_graph and backend == "autograd":
        # autograd.grad needs every input to require grad; constants become fresh leaves.
        current = {
            k: v if v.requires_grad else v.detach().requires_grad_() for k, v in current.items()
        }
    losses: list[float] = []
    taken = 0
    deadline_hit = False
    for _ in range(steps):
        if deadline_s is not None and time.perf_counter() - start >= deadline_s:
            deadline_hit = True
            break
        grads, loss = grad_and_loss(net, current, x, y, backend=backend, create_graph=create_graph)
        losses.append(float(loss.detach()))
        if create_graph:
            current = {k: v - lr * grads[k] for k, v in current.items()}
        else:
            with torch.no_grad():
                current = {k: v - lr * grads[k] for k, v in current.items()}
        taken += 1
    with torch.no_grad():
        losses.append(float(mse(net, current, x, y)))
    return AdaptResult(current, taken, tuple(losses), deadline_hit, time.perf_counter() - start)


def _check_adapt_args(
    net: PolicyNet,
    params: Mapping[str, Tensor],
    x: Tensor,
    y: Tensor,
    *,
    steps: int,
    lr: float,
    deadline_s: float | None,
) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if deadline_s is not None and not (deadline_s >= 0):
        raise ValueError(f"deadline_s must be None or >= 0, got {deadline_s!r}")
    if not params:
        raise ValueError("params is empty")
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] != net.in_dim:
        raise ValueError(f"x must have shape (n >= 1, {net.in_dim}), got {tuple(x.shape)}")
    if tuple(y.shape) != (x.shape[0],):
        raise ValueError(f"y must have shape ({x.shape[0]},) to match x, got {tuple(y.shape)}")
