"""Fast weights: few-shot adaptation of a policy as a pure function of a dict of tensors.

``Params`` is ``dict[str, Tensor]`` keyed like ``net.named_parameters()``. The network is only
the architecture; it is never mutated and no tensor handed in is modified in place, so a dict
read once stays a valid snapshot.

The inner loop is plain gradient descent, ``{k: p - lr * g}`` (``lr`` a number, one tensor per
parameter for learned step sizes, or a list of those, one an inner step, for a learned
schedule), over all parameters or a named subset (the head only, for ANIL); ``step=``
replaces that step by another rule with the same call (:mod:`adaptd.adapters.steps`, e.g. a
proximal step toward an anchor). Its gradients come from either backend of
:mod:`adaptd.adapters.losses` ("autograd", explicit matrix products; "func",
``functional_call`` that composes with ``vmap``), which compute the same maths, for either
loss ("mse", "cross_entropy" or "qlike").

This module is the library's entry point for fast weights: it also re-exports the losses and
the step sizes from the modules that define them (:mod:`.losses`, :mod:`.steps`,
:mod:`.types`).

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
>>> classifier = PolicyNet(in_dim=3, hidden=(8,), out_dim=2)
>>> labels = (x[:, 0] > 0).long()
>>> fit = adapt(classifier, init_params(classifier, 0), x, labels, steps=5, lr=0.5,
...             loss="cross_entropy")
>>> fit.losses[-1] < fit.losses[0]
True
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import Any

import torch
from torch import Tensor

from .checks import non_negative_int, one_of
from .losses import (
    BACKENDS,
    Backend,
    check_loss,
    cross_entropy,
    grad_and_loss,
    mse,
    reduce_rows,
    row_losses,
    task_loss,
)
from .network import PolicyNet
from .steps import SGD_STEP, InnerStep, StepSchedule, StepSize, rate_schedule, rates_at
from .types import AdaptResult, Loss, Params

__all__ = [
    "BACKENDS",
    "AdaptResult",
    "Backend",
    "Params",
    "StepSchedule",
    "StepSize",
    "adapt",
    "check_loss",
    "copy_params_like",
    "cross_entropy",
    "grad_and_loss",
    "mse",
    "rate_schedule",
    "rates_at",
    "reduce_rows",
    "row_losses",
    "saved_weights",
    "task_loss",
    "weights_state",
]


def adapt(
    net: PolicyNet,
    params: Mapping[str, Tensor],
    x: Tensor,
    y: Tensor,
    *,
    steps: int,
    lr: StepSchedule,
    deadline_s: float | None = None,
    backend: Backend = "autograd",
    create_graph: bool = False,
    loss: Loss = "mse",
    names: Collection[str] | None = None,
    step: InnerStep = SGD_STEP,
    keep_best: bool = False,
) -> AdaptResult:
    """Take up to ``steps`` gradient steps of size ``lr`` on the support set ``(x, y)``.

    Parameters
    ----------
    net
        The architecture; never modified.
    params
        Starting fast weights (typically a meta-learned initialisation); not modified.
    x, y
        Support features ``(n, in_dim)`` and targets ``(n,)``, ``n >= 1``; ``x`` (and, for
        "mse", ``y``) cast to the dtype of ``params``, class ids to ``int64``.
    steps, lr
        Inner-loop length (``>= 0``) and step size: a positive number, a mapping from
        every adapted parameter name to a tensor broadcastable to it (Meta-SGD's learned
        per-parameter step sizes), or a list of those, one a step (a learned schedule;
        steps past its end reuse its last entry, see :func:`rate_schedule`).
    deadline_s
        Wall-clock budget from the start of the call, checked with ``time.perf_counter``
        before every step; once spent, the loop stops and returns the weights so far with
        ``deadline_hit=True`` (zero steps if the budget is already spent at the start).
        ``None`` means no deadline.
    backend
        "autograd" (explicit forward, ``torch.autograd.grad``) or "func" (``functional_call``,
        ``torch.func.grad``).
    create_graph
        Keep the inner loop differentiable (for second-order meta-gradients); the default
        first-order loop detaches every step.
    loss
        "mse", "cross_entropy" or "qlike".
    names
        Parameters to adapt (default all); the others keep their starting values.
    step
        What one step does with the gradients and step sizes (see
        :mod:`adaptd.adapters.steps`): plain gradient descent ``{k: p - lr * g}`` by default,
        or a variant such as a proximal step toward an anchor
        (:class:`~adaptd.adapters.continual.proximal.ProximalStep`).
    keep_best
        Return the iterate with the least support loss (the start included) instead of the
        last; ``AdaptResult.kept`` says which. A step size that suits the initialisation can
        overshoot from weights far from it, and on a loss with an exponential (QLIKE) a few
        steps too far can leave weights orders of magnitude worse than the start; the loop
        computes every iterate's loss anyway, so keeping the best costs a reference to its
        weights. Not with ``create_graph`` (a meta-gradient runs through every step).
    """
    start = time.perf_counter()
    if keep_best and create_graph:
        raise ValueError("keep_best needs create_graph=False (meta-gradients use every step)")
    _check_adapt_args(net, params, x, y, steps=steps, deadline_s=deadline_s)
    check_loss(net, loss)
    one_of("backend", backend, BACKENDS)
    keys = list(params) if names is None else list(names)
    if unknown := set(keys) - set(params):
        raise ValueError(f"names holds unknown parameters {sorted(unknown)}")
    schedule = rate_schedule(lr, keys)
    dtype = next(iter(params.values())).dtype
    x = x.to(dtype)
    if loss == "cross_entropy":
        y = _class_ids(y, net.out_dim)
    else:
        y = y.to(dtype)
        if loss == "qlike" and not bool((y > 0).all()):
            raise ValueError("y must be positive (realised-variance ratios) for 'qlike'")
    current: Params = dict(params) if create_graph else {k: v.detach() for k, v in params.items()}
    if create_graph and backend == "autograd":
        # autograd.grad needs every differentiated input to require grad; constants become
        # fresh leaves (the caller's tensors are not touched).
        current.update({k: _differentiable(current[k]) for k in keys})
    losses: list[float] = []
    taken = 0
    deadline_hit = False
    best: tuple[float, int, Params] | None = None
    for index in range(steps):
        if deadline_s is not None and time.perf_counter() - start >= deadline_s:
            deadline_hit = True
            break
        grads, value = grad_and_loss(
            net, current, x, y, backend=backend, create_graph=create_graph, loss=loss, names=keys
        )
        losses.append(float(value.detach()))
        if keep_best and (best is None or losses[-1] < best[0]):
            best = (losses[-1], index, current)
        with torch.set_grad_enabled(create_graph):
            current = step(current, grads, rates_at(schedule, index), keys)
        taken += 1
    with torch.no_grad():
        losses.append(float(task_loss(net, current, x, y, loss)))
    kept = None
    if keep_best:
        kept = taken
        if best is not None and not losses[-1] <= best[0]:  # NaN is no better either
            _, kept, current = best
    seconds = time.perf_counter() - start
    return AdaptResult(current, taken, tuple(losses), deadline_hit, seconds, kept)


def copy_params_like(values: object, like: Mapping[str, Tensor], what: str) -> Params:
    """Detached copies of ``values`` in the dtypes of ``like``, after checking that it maps
    exactly ``like``'s names to tensors of the same shapes (a ValueError naming ``what``, e.g.
    "state params", otherwise): for restoring saved weights."""
    if not isinstance(values, Mapping) or set(values) != set(like):
        got = sorted(values) if isinstance(values, Mapping) else type(values).__name__
        raise ValueError(f"{what} {got} do not match the expected {sorted(like)}")
    for name, value in values.items():
        shape, expected = tuple(getattr(value, "shape", ())), tuple(like[name].shape)
        if not isinstance(value, Tensor) or shape != expected:
            raise ValueError(f"{what} {name} has shape {shape}, expected {expected}")
    return {k: values[k].detach().clone().to(like[k].dtype) for k in like}


def weights_state(algorithm: str, updates: int, params: Mapping[str, Tensor]) -> dict[str, Any]:
    """What every learner's ``state_dict`` starts with: its algorithm's name, its update count
    and a copy of its weights (read back by :func:`saved_weights`)."""
    return {
        "algorithm": algorithm,
        "updates": updates,
        "params": {k: v.clone() for k, v in params.items()},
    }


def saved_weights(state: object, algorithm: str, like: Mapping[str, Tensor]) -> tuple[Params, int]:
    """The weights (copies, in ``like``'s dtypes) and update count of a learner's saved
    ``state``, once it is checked to be ``algorithm``'s with weights shaped like ``like``; a
    ValueError otherwise.

    >>> import torch
    >>> weights = {"w": torch.ones(2)}
    >>> saved_weights(weights_state("maml", 3, weights), "maml", weights)[1]
    3
    >>> saved_weights(weights_state("maml", 3, weights), "reptile", weights)
    Traceback (most recent call last):
    ...
    ValueError: state is for algorithm 'maml', not 'reptile'
    """
    got = state.get("algorithm") if isinstance(state, Mapping) else type(state).__name__
    if not isinstance(state, Mapping) or got != algorithm:
        raise ValueError(f"state is for algorithm {got!r}, not {algorithm!r}")
    params = copy_params_like(state.get("params"), like, "state params")
    return params, int(state.get("updates", 0))


def _differentiable(value: Tensor) -> Tensor:
    return value if value.requires_grad else value.detach().requires_grad_()


def _class_ids(y: Tensor, n_classes: int) -> Tensor:
    ids = y.to(torch.int64)
    if not torch.equal(ids.to(y.dtype), y) or bool((ids < 0).any() | (ids >= n_classes).any()):
        raise ValueError(f"y must hold class ids 0..{n_classes - 1} for 'cross_entropy'")
    return ids


def _check_adapt_args(
    net: PolicyNet,
    params: Mapping[str, Tensor],
    x: Tensor,
    y: Tensor,
    *,
    steps: int,
    deadline_s: float | None,
) -> None:
    non_negative_int("steps", steps)
    if deadline_s is not None and not (deadline_s >= 0):
        raise ValueError(f"deadline_s must be None or >= 0, got {deadline_s!r}")
    if not params:
        raise ValueError("params is empty")
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] != net.in_dim:
        raise ValueError(f"x must have shape (n >= 1, {net.in_dim}), got {tuple(x.shape)}")
    if tuple(y.shape) != (x.shape[0],):
        raise ValueError(f"y must have shape ({x.shape[0]},) to match x, got {tuple(y.shape)}")
