"""Task losses of a policy network run with fast weights, and their gradients, through two
backends that compute the same maths.

* "autograd": :func:`adaptd.adapters.network.forward` (explicit matrix products) and
  ``torch.autograd.grad``, the lower per-call overhead for one small task;
* "func": ``torch.func.functional_call`` on the module and ``torch.func.grad``, the generic
  path that composes with ``torch.func.vmap``.

Losses (``loss=``, see :data:`adaptd.adapters.types.LOSSES`): "mse" for regression (float
targets ``(n,)``, net output ``(n,)``), "cross_entropy" for classification (integer targets
``(n,)`` in ``0..out_dim-1``, net output ``(n, out_dim)`` logits), "qlike" for a variance
forecast (positive targets ``y``, a realised variance in units of a reference variance, net
output ``(n,)`` the log ``z`` of the forecast in those units): ``y e^-z + z - log y - 1``,
the QLIKE loss of Patton (2011) shifted to be 0 at the perfect forecast ``z = log y``. Of
the losses that rank variance forecasts the same whatever the noise in the realised
variance, it is the one least sensitive to that noise's extremes.

Examples
--------
>>> import torch
>>> from adaptd.adapters.network import PolicyNet, init_params
>>> net = PolicyNet(in_dim=2, hidden=(4,))
>>> params = init_params(net, seed=0)
>>> x, y = torch.ones(3, 2), torch.zeros(3)
>>> grads, value = grad_and_loss(net, params, x, y)
>>> sorted(grads) == sorted(params), bool(torch.isclose(value, mse(net, params, x, y)))
(True, True)
>>> float(task_loss(net, params, x, y)) == float(value)
True
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Literal

import torch
from torch import Tensor
from torch.func import functional_call, grad_and_value

from .network import PolicyNet, forward
from .types import LOSSES, QLIKE_BOUND, Loss, Params

__all__ = [
    "BACKENDS",
    "QLIKE_BOUND",
    "Backend",
    "check_loss",
    "cross_entropy",
    "detached_leaves",
    "grad_and_loss",
    "mse",
    "reduce_rows",
    "row_losses",
    "task_loss",
]

Backend = Literal["autograd", "func"]
BACKENDS: tuple[Backend, ...] = ("autograd", "func")


def row_losses(output: Tensor, y: Tensor, loss: Loss) -> Tensor:
    """Per-row loss, shaped like ``y`` (``(n,)`` or stacked ``(T, n)``)."""
    if loss == "mse":
        return (output - y) ** 2
    if loss == "qlike":
        # The clamp keeps exp finite in float32 for any output a diverging step could give.
        # Padding rows of stacked tasks hold y = 0 (weight 0): log 0 would make their
        # weighted loss, and every gradient, NaN.
        y = torch.where(y > 0, y, torch.ones_like(y))
        ratio = y * torch.exp(-output.clamp(-QLIKE_BOUND, QLIKE_BOUND))
        return ratio - torch.log(ratio) - 1.0  # y e^-z + z - log y - 1, rounded as numpy's
    logits = output.reshape(-1, output.shape[-1])
    rows = torch.nn.functional.cross_entropy(logits, y.reshape(-1), reduction="none")
    return rows.reshape(y.shape)


def reduce_rows(rows: Tensor, weights: Tensor | None = None) -> Tensor:
    """Mean over the last dimension, or the ``weights``-weighted sum (weights ``1/n_i`` on real
    rows and 0 on padding give each task's own mean)."""
    return rows.mean(-1) if weights is None else (rows * weights).sum(-1)


def detached_leaves(params: Mapping[str, Tensor], names: Collection[str] | None = None) -> Params:
    """``params`` with each entry in ``names`` (default: every entry) replaced by a detached
    view that requires grad: leaves that a loss is differentiated with respect to, so that the
    gradient stops there and never reaches whatever computed ``params``. The other entries are
    the same tensors.

    >>> params = {"w": torch.ones(2, requires_grad=True) * 2, "b": torch.zeros(1)}
    >>> leaves = detached_leaves(params, ["w"])
    >>> leaves["w"].is_leaf, leaves["w"].requires_grad, leaves["b"] is params["b"]
    (True, True, True)
    """
    keys = params if names is None else names
    return {**params, **{k: params[k].detach().requires_grad_() for k in keys}}


def task_loss(
    net: PolicyNet,
    params: Mapping[str, Tensor],
    x: Tensor,
    y: Tensor,
    loss: Loss = "mse",
    *,
    weights: Tensor | None = None,
    backend: Backend = "autograd",
) -> Tensor:
    """The mean ``loss`` of ``net`` run with ``params`` on ``(x, y)`` (per task when stacked).

    ``weights`` (row weights, see :func:`reduce_rows`) also mask batch-norm statistics. The
    "autograd" backend uses the explicit forward, "func" ``functional_call``. No argument
    checks: this is the hot path, also called under ``torch.func.vmap``.
    """
    if backend == "autograd":
        output = forward(net, params, x, weights)
    else:
        output = functional_call(net, dict(params), (x, weights))
    return reduce_rows(row_losses(output, y, loss), weights)


def mse(net: PolicyNet, params: Mapping[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
    """Mean squared error of ``net`` run with ``params`` on ``x`` against ``y`` (a 0-d tensor)."""
    return torch.mean((forward(net, params, x) - y) ** 2)


def cross_entropy(net: PolicyNet, params: Mapping[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy of the logits of ``net`` run with ``params`` against class ids ``y``."""
    return torch.nn.functional.cross_entropy(forward(net, params, x), y)


def grad_and_loss(
    net: PolicyNet,
    params: Mapping[str, Tensor],
    x: Tensor,
    y: Tensor,
    *,
    backend: Backend = "autograd",
    create_graph: bool = False,
    loss: Loss = "mse",
    names: Collection[str] | None = None,
) -> tuple[Params, Tensor]:
    """One gradient of the support loss with respect to ``params``, and the loss itself.

    ``names`` restricts the gradient to those parameters (the others are held fixed); by
    default every parameter. With ``create_graph=False`` the gradients are detached. With
    ``create_graph=True`` they stay differentiable with respect to whatever ``params`` depend
    on (second-order meta-learning); for the "autograd" backend every differentiated tensor
    must then require grad.
    """
    keys = list(params) if names is None else list(names)
    if backend == "autograd":
        leaves = dict(params) if create_graph else detached_leaves(params, keys)
        with torch.enable_grad():
            value = task_loss(net, leaves, x, y, loss)
            grads = torch.autograd.grad(value, [leaves[k] for k in keys], create_graph=create_graph)
        if not create_graph:
            value = value.detach()
        return dict(zip(keys, grads, strict=True)), value
    if backend == "func":
        fixed = {k: v for k, v in params.items() if k not in keys}
        inputs = {k: params[k] if create_graph else params[k].detach() for k in keys}

        def objective(sub: Params) -> Tensor:
            return task_loss(net, {**fixed, **sub}, x, y, loss, backend="func")

        return grad_and_value(objective)(inputs)
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def check_loss(net: PolicyNet, loss: str) -> None:
    """ValueError unless ``loss`` is known and fits the net's output width."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if loss in ("mse", "qlike") and net.out_dim != 1:
        raise ValueError(f"loss {loss!r} needs a net with out_dim=1, got out_dim={net.out_dim}")
    if loss == "cross_entropy" and net.out_dim < 2:
        raise ValueError("loss 'cross_entropy' needs a net with out_dim >= 2 (one logit a class)")
