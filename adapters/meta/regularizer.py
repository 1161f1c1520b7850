"""Regularizers of a meta-learned initialisation (:class:`~adaptd.adapters.protocol.Regularizer`)
from a differentiable penalty function, and the gradient they share.

:class:`FunctionRegularizer` makes any differentiable function of the weights a regularizer:
its autograd gradient for the Adam learners, an explicit gradient step for Reptile. A penalty
that an explicit step can overshoot brings its own bounded step instead (online EWC's,
:class:`~adaptd.adapters.continual.anchored_regularizer.AnchoredRegularizer`).

Examples
--------
>>> import torch
>>> pull = FunctionRegularizer(lambda p: 2.0 * (p["w"] ** 2).sum())
>>> pull.gradient({"w": torch.tensor([1.0, -0.5])})["w"]
tensor([ 4., -2.])
>>> pull.decoupled_step({"w": torch.tensor([1.0, -0.5])}, 0.1)["w"]
tensor([ 0.4000, -0.2000])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from ..fast_weights import Params

__all__ = ["FunctionRegularizer", "penalty_gradient"]


def penalty_gradient(
    penalty: Callable[[Params], Tensor | None], params: Mapping[str, Tensor]
) -> Params | None:
    """The gradient of ``penalty`` at ``params``, one detached tensor per parameter (zeros
    where it does not depend on one); ``None`` when it returns ``None`` or a value that does
    not depend on ``params``. ValueError unless the value is a scalar."""
    leaves = {k: v.detach().requires_grad_() for k, v in params.items()}
    with torch.enable_grad():
        value = penalty(leaves)
        if value is None or not value.requires_grad:
            return None
        if value.numel() != 1:
            raise ValueError(f"regularizer must return a scalar, got shape {tuple(value.shape)}")
        grads = torch.autograd.grad(value, list(leaves.values()), allow_unused=True)
    return {
        k: torch.zeros_like(v) if g is None else g.detach()
        for (k, v), g in zip(params.items(), grads, strict=True)
    }


class FunctionRegularizer:
    """A differentiable function of the weights as a meta-learner's regularizer.

    Parameters
    ----------
    penalty
        ``penalty(params) -> Tensor | None``: a scalar, differentiable in ``params``, or
        ``None`` for no penalty (yet).
    """

    def __init__(self, penalty: Callable[[Params], Tensor | None]) -> None:
        if not callable(penalty):
            raise ValueError(f"penalty must be callable, got {penalty!r}")
        self.penalty = penalty

    def gradient(self, params: Mapping[str, Tensor]) -> Params | None:
        """The penalty's gradient at ``params`` (:func:`penalty_gradient`)."""
        return penalty_gradient(self.penalty, params)

    def decoupled_step(self, params: Mapping[str, Tensor], size: float) -> Params | None:
        """An explicit gradient step's move, ``size`` times the gradient at ``params``."""
        grads = self.gradient(params)
        return None if grads is None else {k: size * g for k, g in grads.items()}

    def __repr__(self) -> str:
        return f"FunctionRegularizer({self.penalty!r})"
