"""A proximal inner step: a gradient step on the task loss, then the exact minimiser of that
step's quadratic model plus an anchored (EWC-style) penalty.

With anchor ``a``, per-parameter importance ``F`` (a diagonal Fisher), strength ``lam`` and
step size ``r``, one step is

    w <- a + (w - r * g - a) / (1 + lam * F * max(r, 0))

the minimiser over ``w'`` of ``|w' - (w - r g)|^2 / (2 r) + lam / 2 * F (w' - a)^2``. It
shrinks each weight's move away from the anchor by a factor in ``(0, 1]``, so it stays stable
however large ``r * lam * F`` gets; an explicit gradient step on the same penalty overshoots
the anchor and diverges once that product exceeds 2. A negative step size (a learned Meta-SGD
rate may turn negative) has no proximal form: that coordinate takes the plain step.

This is what the daemon uses to adapt a returning regime from its last policy without
overwriting it (``adapt(..., start=policy, step=ProximalStep(policy, fisher, lam))``).

Examples
--------
>>> import torch
>>> step = ProximalStep({"w": torch.zeros(2)}, {"w": torch.tensor([0.0, 1.0])}, lam=9.0)
>>> step({"w": torch.zeros(2)}, {"w": torch.tensor([-1.0, -1.0])}, {"w": 0.1}, ["w"])["w"]
tensor([0.1000, 0.0526])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor

from ..checks import non_negative

__all__ = ["ProximalStep"]


class ProximalStep:
    """Gradient step, then the proximal map of ``lam / 2 * sum F (w - anchor)^2``.

    An :class:`~adaptd.adapters.steps.InnerStep` for
    :func:`~adaptd.adapters.fast_weights.adapt` and the learners' ``adapt``.

    Parameters
    ----------
    anchor
        The weights the penalty pulls toward (typically the start of the adaptation), at
        least every adapted parameter; kept detached.
    importance
        Non-negative importance ``F`` of every adapted parameter, shaped like it.
    lam
        Strength of the penalty, ``>= 0`` (0 is the plain gradient step).
    """

    def __init__(
        self, anchor: Mapping[str, Tensor], importance: Mapping[str, Tensor], lam: float
    ) -> None:
        self.anchor = {k: v.detach() for k, v in anchor.items()}
        self.importance = dict(importance)
        self.lam = non_negative("lam", lam)

    def __call__(
        self,
        params: Mapping[str, Tensor],
        grads: Mapping[str, Tensor],
        rates: Mapping[str, float | Tensor],
        names: Sequence[str],
    ) -> dict[str, Tensor]:
        """``params`` with each adapted weight moved by the proximal step."""
        out = dict(params)
        for k in names:
            rate, anchor = rates[k], self.anchor[k]
            # A learned step size may be negative (Meta-SGD): no shrinkage there.
            forward = rate.clamp(min=0.0) if isinstance(rate, Tensor) else max(rate, 0.0)
            shrink = 1.0 + self.lam * self.importance[k] * forward
            out[k] = anchor + (params[k] - rate * grads[k] - anchor) / shrink
        return out

    def __repr__(self) -> str:
        return f"ProximalStep(lam={self.lam}, names={sorted(self.importance)})"
