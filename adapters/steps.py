"""The step of the inner loop, as a hook: what one step does with the gradients it is given.

:func:`adaptd.adapters.fast_weights.adapt` owns the loop (gradients, deadline, step-size
schedule, parameter subset); an :class:`InnerStep` owns the arithmetic of one step. The
default, :data:`SGD_STEP`, is plain gradient descent ``{k: p - lr * g}``; a variant that needs
its own step (a proximal step toward an anchor, a projected step) is one small class with the
same call, handed to ``adapt(..., step=...)``.

Examples
--------
>>> import torch
>>> params = {"w": torch.tensor([1.0, 2.0]), "b": torch.tensor([0.5])}
>>> grads = {"w": torch.tensor([1.0, -1.0])}
>>> new = SGD_STEP(params, grads, {"w": 0.1}, ["w"])
>>> new["w"], new["b"] is params["b"]
(tensor([0.9000, 2.1000]), True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from torch import Tensor

from .types import Params

__all__ = ["SGD_STEP", "InnerStep", "SGDStep"]


@runtime_checkable
class InnerStep(Protocol):
    """One step of the inner loop.

    The loop calls it once a step, as ``params = step(params, grads, rates, names)``, under
    ``torch.set_grad_enabled(create_graph)``: with ``create_graph=True`` the new weights must
    stay a differentiable function of ``params``, ``grads`` and ``rates``.
    """

    def __call__(
        self,
        params: Mapping[str, Tensor],
        grads: Mapping[str, Tensor],
        rates: Mapping[str, float | Tensor],
        names: Sequence[str],
    ) -> Params:
        """The weights after this step: every entry of ``params``, those in ``names`` moved.

        Parameters
        ----------
        params
            The current weights, every parameter (not to be modified in place).
        grads
            The support loss's gradient for each name in ``names``.
        rates
            This step's step size for each name in ``names``: a number, or a tensor
            broadcastable to the parameter (learned step sizes may be negative).
        names
            The parameters this loop adapts; the others must be returned unchanged.
        """
        ...


class SGDStep:
    """Plain gradient descent, ``p <- p - rate * g`` on the adapted parameters.

    Stateless: :data:`SGD_STEP` is the instance the loops use by default.
    """

    def __call__(
        self,
        params: Mapping[str, Tensor],
        grads: Mapping[str, Tensor],
        rates: Mapping[str, float | Tensor],
        names: Sequence[str],
    ) -> Params:
        """``params`` with ``params[k] - rates[k] * grads[k]`` for every ``k`` in ``names``."""
        return {**params, **{k: params[k] - rates[k] * grads[k] for k in names}}

    def __repr__(self) -> str:
        return "SGDStep()"


SGD_STEP = SGDStep()
"""The default inner step (plain gradient descent)."""
