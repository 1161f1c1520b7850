"""An anchored penalty (online EWC, MAS, SI) as the regularizer of a meta-learned
initialisation (:class:`~adaptd.adapters.protocol.Regularizer`).

The penalty is ``scale * sum_k F_k (theta_k - anchor_k)^2``, with ``F`` the strategy's
importance. The Adam learners add its gradient to their meta-gradient; Adam's steps are
bounded, so nothing more is needed there. Reptile applies it as an explicit decoupled step of
size ``s = meta_lr * inner_lr`` (:mod:`adaptd.adapters.meta.reptile`), which multiplies each
coordinate's distance to the anchor by ``1 - 2 * s * scale * F``: past ``F = 1 / (s * scale)``
it overshoots the anchor by more than it started from and diverges (measured in the daemon:
NaN weights within 40 rounds at ``lam = 100``, where the Fisher reaches 10 on the output bias).
The decoupled step therefore caps each importance at ``1 / (2 * s * scale)`` (``1 / (s * lam)``
for EWC): a coordinate that important is pulled exactly back to its anchor in one step, and no
further. The cap belongs to the explicit step alone; the gradient is the penalty's own.

The regularizer reads the strategy's current importance and anchor at every call, so
consolidating the strategy (a new Fisher, a new anchor) takes effect at the next update.

Examples
--------
>>> import torch
>>> from adaptd.adapters.continual.online_ewc import OnlineEWC
>>> ewc = OnlineEWC(lam=10.0)
>>> regularizer = AnchoredRegularizer(ewc)
>>> regularizer.gradient({"w": torch.ones(2)}) is None  # nothing consolidated yet
True
>>> ewc.fold({"w": torch.tensor([0.5, 100.0])}, {"w": torch.zeros(2)}, decay=1.0)
>>> regularizer.gradient({"w": torch.ones(2)})["w"]  # lam * F * (w - anchor)
tensor([   5., 1000.])
>>> regularizer.decoupled_step({"w": torch.ones(2)}, 0.01)["w"]  # F capped at 1 / (0.01 * 10)
tensor([0.0500, 1.0000])
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from ..fast_weights import Params
from ..meta.regularizer import penalty_gradient
from .anchored import AnchoredPenalty
from .importance import quadratic_penalty

__all__ = ["AnchoredRegularizer"]


class AnchoredRegularizer:
    """A meta-learner's regularizer from an :class:`AnchoredPenalty` (online EWC, MAS, SI).

    Parameters
    ----------
    penalty
        The strategy that holds the importance and the anchor; the caller consolidates it,
        the regularizer only reads it.
    """

    def __init__(self, penalty: AnchoredPenalty) -> None:
        if not isinstance(penalty, AnchoredPenalty):
            raise ValueError(f"penalty must be an AnchoredPenalty, got {type(penalty).__name__}")
        self.penalty = penalty

    def gradient(self, params: Mapping[str, Tensor]) -> Params | None:
        """The gradient of the penalty at ``params``; None before the first consolidation."""
        return penalty_gradient(self.penalty.penalty_at, params)

    def decoupled_step(self, params: Mapping[str, Tensor], size: float) -> Params | None:
        """``size`` times the gradient at ``params`` of the penalty with each importance capped
        at ``1 / (2 * size * scale)`` (see the module docstring); None before the first
        consolidation or with a zero strength."""
        importance, anchor, scale = self.penalty.importance, self.penalty.anchor, self.penalty.scale
        if importance is None or anchor is None or scale == 0:
            return None
        cap = 1.0 / (size * (2.0 * scale))
        capped = {k: f.clamp(max=cap) for k, f in importance.items()}
        grads = penalty_gradient(lambda p: scale * quadratic_penalty(p, anchor, capped), params)
        return None if grads is None else {k: size * g for k, g in grads.items()}

    def __repr__(self) -> str:
        return f"AnchoredRegularizer({type(self.penalty).__name__}, scale={self.penalty.scale})"
