"""Per-parameter importance and the quadratic penalty built on it: the maths EWC, online EWC,
SI and MAS share (and the daemon's protection of its meta-learned initialisation).

The diagonal Fisher information of a model at ``params`` on data ``(x, y)`` is the mean over
examples of the squared gradient of each example's log-likelihood. "empirical" uses the
observed labels; "true" takes the expectation over the model's own predictive distribution
(for classification, ``sum_c p_c (d log p_c)^2``; for regression with a unit-variance
Gaussian likelihood, the squared output gradient). Per-example gradients come from
``torch.func.vmap`` over ``torch.func.grad``, in chunks.

Examples
--------
>>> import torch
>>> from adaptd.adapters.network import PolicyNet, init_params
>>> from adaptd.adapters.continual.protocol import ContinualModel
>>> net = PolicyNet(3, (4,), out_dim=2)
>>> model = ContinualModel(net, init_params(net, seed=0))
>>> x, y = torch.randn(10, 3), torch.randint(0, 2, (10,))
>>> fisher = fisher_diagonal(model, model.params, x, y)
>>> sorted(fisher) == sorted(model.params), all(bool((f >= 0).all()) for f in fisher.values())
(True, True)
>>> float(quadratic_penalty(model.params, model.params, fisher))
0.0
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Literal

import torch
from torch import Tensor
from torch.func import grad, vmap

from ..checks import one_of
from ..fast_weights import Params
from .protocol import ContinualModel, restrict

__all__ = [
    "FISHER_KINDS",
    "FisherKind",
    "check_pair",
    "check_per_example",
    "check_shapes",
    "copy_params",
    "fisher_diagonal",
    "quadratic_penalty",
    "subsample",
]

FisherKind = Literal["empirical", "true"]
FISHER_KINDS: tuple[FisherKind, ...] = ("empirical", "true")


def fisher_diagonal(
    model: ContinualModel,
    params: Mapping[str, Tensor],
    x: Tensor,
    y: Tensor,
    *,
    kind: FisherKind = "empirical",
    classes: Sequence[int] | None = None,
    names: Collection[str] | None = None,
    chunk: int = 256,
) -> Params:
    """Diagonal Fisher information of ``model`` at ``params`` on ``(x, y)``, one tensor per
    parameter (detached, non-negative, shaped like it).

    Networks with batch normalisation are refused (ValueError): an example's own output, hence
    its gradient, is not defined without the rest of its batch.

    Parameters
    ----------
    kind
        "empirical" (gradients of the observed labels' log-likelihood) or "true"
        (expectation over the model's predictive distribution).
    classes
        Restrict a classifier's outputs to these classes (task-incremental tasks).
    names
        Parameters to compute it for (default: all); the others are held fixed.
    chunk
        Examples per vectorised batch (bounds memory).
    """
    one_of("kind", kind, FISHER_KINDS)
    check_per_example(model, x, "the Fisher information")
    keys = list(params) if names is None else list(names)
    fixed = {k: v.detach() for k, v in params.items() if k not in keys}
    inputs = {k: params[k].detach() for k in keys}
    classify = model.loss == "cross_entropy"

    def log_likelihood(sub: Params, xi: Tensor, target: Tensor) -> Tensor:
        out = model.output({**fixed, **sub}, xi.unsqueeze(0))
        if classify:
            logp = torch.log_softmax(restrict(out, classes), dim=-1)[0]
            return torch.gather(logp, 0, target.reshape(1)).reshape(())
        if kind == "true":  # unit-variance Gaussian: d log p = d f * (y - f), E[(y - f)^2] = 1
            return out.reshape(())
        return -0.5 * (out.reshape(()) - target) ** 2

    per_example = vmap(grad(log_likelihood), in_dims=(None, 0, 0))
    total = {k: torch.zeros_like(v) for k, v in inputs.items()}
    for lo in range(0, len(x), chunk):
        xs, ys = x[lo : lo + chunk], y[lo : lo + chunk]
        if classify and kind == "true":
            with torch.no_grad():
                probs = torch.softmax(restrict(model.output(params, xs), classes), dim=-1)
            for c in range(probs.shape[-1]):
                if classes is not None and c not in classes:
                    continue
                target = torch.full((len(xs),), c, dtype=torch.long)
                grads = per_example(inputs, xs, target)
                weight = probs[:, c]
                for k, g in grads.items():
                    total[k] += torch.einsum("n,n...->...", weight, g.pow(2))
        else:
            grads = per_example(inputs, xs, ys)
            for k, g in grads.items():
                total[k] += g.pow(2).sum(0)
    return {k: (v / len(x)).detach() for k, v in total.items()}


def quadratic_penalty(
    params: Mapping[str, Tensor],
    anchor: Mapping[str, Tensor],
    importance: Mapping[str, Tensor],
) -> Tensor:
    """``sum_k sum importance_k * (params_k - anchor_k)^2`` over the names in ``importance``
    (a 0-d tensor, differentiable in ``params``); callers scale it (EWC's ``lambda / 2``)."""
    terms = [(importance[k] * (params[k] - anchor[k]).pow(2)).sum() for k in importance]
    if not terms:
        return torch.zeros(())
    return torch.stack(terms).sum()


def subsample(x: Tensor, y: Tensor, count: int, seed: int) -> tuple[Tensor, Tensor]:
    """At most ``count`` rows of ``(x, y)``, a random subset drawn with ``seed``."""
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} and {len(y)}")
    if len(x) <= count:
        return x, y
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:count]
    return x[idx], y[idx]


def copy_params(values: Mapping[str, Tensor] | None) -> Params | None:
    """Detached copies of ``values`` (``None`` stays ``None``): state that later steps cannot
    change."""
    return None if values is None else {k: v.detach().clone() for k, v in values.items()}


def check_per_example(model: ContinualModel, x: Tensor, what: str) -> None:
    """ValueError unless per-example gradients of ``model`` on ``x`` are defined: ``x`` holds
    an example (``what``, the statistic computed from them, names it in the message) and the
    network does not normalise over its batch."""
    if len(x) == 0:
        raise ValueError(f"{what} needs at least one example")
    if getattr(model.net, "norm", "none") != "none":
        # one example normalised with its own batch statistics has a constant output, so its
        # gradients would be silently zero before the normalisation
        raise ValueError(f"model.net must have norm='none' for per-example gradients: {model.net}")


def check_pair(importance: Mapping[str, Tensor], anchor: Mapping[str, Tensor], what: str) -> None:
    """ValueError unless a saved ``importance`` and ``anchor`` name the same parameters with
    the same shapes; ``what`` names the pair in the message."""
    if set(importance) != set(anchor):
        raise ValueError(f"state's {what} name different parameters")
    check_shapes(importance, anchor)


def check_shapes(importance: Mapping[str, Tensor], params: Mapping[str, Tensor]) -> None:
    """ValueError naming the first parameter that is missing from ``params`` or has changed
    shape since the importance was computed (the network was rebuilt or grew)."""
    for k, f in importance.items():
        if k not in params:
            raise ValueError(f"parameter {k!r} has an importance but is missing from the weights")
        if tuple(params[k].shape) != tuple(f.shape):
            raise ValueError(
                f"parameter {k!r} has shape {tuple(params[k].shape)} but its importance has shape "
                f"{tuple(f.shape)}"
            )
