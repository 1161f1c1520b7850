"""The step of the inner loop: its step sizes (a number, learned tensors, or a schedule of
those, one an inner step) and, as a hook, what one step does with the gradients it is given.

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
>>> [dict(rates_at(rate_schedule([0.1, 0.2], ["w"]), step)) for step in range(3)]
[{'w': 0.1}, {'w': 0.2}, {'w': 0.2}]
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Protocol, runtime_checkable

from torch import Tensor

from .checks import positive_finite
from .types import Params

__all__ = [
    "SGD_STEP",
    "InnerStep",
    "SGDStep",
    "StepSchedule",
    "StepSize",
    "rate_schedule",
    "rates_at",
]

StepSize = float | Mapping[str, Tensor]
"""A step size for every parameter, or one tensor (broadcastable to it) per adapted parameter."""
StepSchedule = StepSize | Sequence[StepSize]
"""One ``StepSize`` for every inner step, or a list (tuple) of them, entry ``i`` for step ``i``;
steps past the end of the list reuse its last entry (see :func:`rate_schedule`)."""


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


def rate_schedule(lr: StepSchedule, keys: Collection[str]) -> list[Mapping[str, float | Tensor]]:
    """``lr`` as a non-empty list of step sizes by parameter name, entry ``i`` for inner step
    ``i``; a loop longer than the list reuses its last entry (:func:`rates_at`).

    A learned schedule is only trained for the steps it has; reusing its last entry (rather
    than, say, cycling or stopping) continues from the rates that the end of the inner loop
    was trained with, where the weights are closest to those of extra steps.

    >>> [dict(rates) for rates in rate_schedule(0.1, ["w"])]
    [{'w': 0.1}]
    """
    if isinstance(lr, Sequence) and not isinstance(lr, str):
        if len(lr) == 0:
            raise ValueError("lr is an empty schedule: it needs at least one step's sizes")
        return [_step_rates(rates, keys, f"lr[{i}]") for i, rates in enumerate(lr)]
    return [_step_rates(lr, keys, "lr")]


def rates_at(
    schedule: Sequence[Mapping[str, float | Tensor]], step: int
) -> Mapping[str, float | Tensor]:
    """The step sizes of inner step ``step`` (from 0): ``schedule[step]``, or its last entry
    for a step past its end."""
    return schedule[min(step, len(schedule) - 1)]


def _step_rates(lr: object, keys: Collection[str], name: str) -> Mapping[str, float | Tensor]:
    if isinstance(lr, Mapping):
        if missing := set(keys) - set(lr):
            raise ValueError(f"{name} has no step size for {sorted(missing)}")
        return lr
    positive_finite(name, lr)
    return dict.fromkeys(keys, lr)
