"""The trust region of one adaptation (``adaptation.trust_region``): how far the adapted policy
may move from its parent, the policy that subscribers hold.

The bound is relative to the parent's size, over the whole network as one vector,
``||theta - theta_parent|| <= trust_region * max(||theta_parent||, NORM_FLOOR)``, so one
setting means the same for every task and network width. It is enforced by projected
gradient descent (:mod:`adaptd.adapters.trust`): the start of the inner loop (the
initialisation, or a returning regime's last policy, either of which may lie far from the
parent) is projected onto the ball, and every inner step, plain or proximal
(:mod:`.protection`), is followed by the projection of the weights it adapts. The adapted
weights are within the bound however the loop ends, even when the deadline stops it before
its first step.

A bound around a parent that is losing would hold subscribers near a losing policy, so it is
lifted (:func:`lifts`) when the parent does not beat its task's constant baseline on the
query examples: that adaptation is unbounded, as without the setting, and the gate decides
as always.

Examples
--------
>>> import torch
>>> from adaptd.adapters.steps import SGD_STEP
>>> parent = {"w": torch.tensor([3.0, 4.0])}
>>> region = TrustRegion(parent, relative=0.2)  # radius 0.2 * ||parent|| = 1
>>> start, step = region.bound({"w": torch.tensor([3.0, 8.0])}, SGD_STEP)
>>> start["w"]
tensor([3., 5.])
>>> moved = region.measure(start)
>>> round(moved.distance, 6), moved.active
(0.2, True)
>>> lifts(loss_parent=torch.tensor([1.0, 3.0]), loss_baseline=torch.tensor([2.0, 2.0]))
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from torch import Tensor

from adaptd.adapters.fast_weights import Params
from adaptd.adapters.steps import InnerStep
from adaptd.adapters.trust import TrustRegionStep, distance, norm, project

__all__ = ["NORM_FLOOR", "Movement", "TrustRegion", "lifts"]

NORM_FLOOR = 1e-6
"""The parent's norm below which the bound is relative to this instead: an all-zero parent
still has a ball (a tiny one) and a finite relative distance."""


class Movement(NamedTuple):
    """How far an adaptation moved its policy from the parent."""

    distance: float
    """``||theta - theta_parent|| / max(||theta_parent||, NORM_FLOOR)``."""
    active: bool
    """The bound held the update back: the start or an inner step was projected onto it."""


class TrustRegion:
    """The ball around one adaptation's parent, and the measure of the adapted weights.

    Parameters
    ----------
    parent
        The parent policy's weights, every parameter.
    relative
        The radius relative to the parent's norm (``adaptation.trust_region``); None leaves
        the adaptation unbounded and only measures it.
    """

    def __init__(self, parent: Mapping[str, Tensor], relative: float | None) -> None:
        self.parent = dict(parent)
        self.scale = max(float(norm(self.parent)), NORM_FLOOR)
        self.radius = None if relative is None else relative * self.scale
        self._start_clipped = False
        self._step: TrustRegionStep | None = None

    def bound(self, start: Mapping[str, Tensor], step: InnerStep) -> tuple[Params, InnerStep]:
        """Where the inner loop starts and the step it takes: ``start`` projected onto the
        ball and ``step`` followed by the projection (both as given when unbounded)."""
        if self.radius is None:
            return dict(start), step
        self._start_clipped = bool(distance(start, self.parent) > self.radius)
        self._step = TrustRegionStep(self.parent, self.radius, step)
        return project(start, self.parent, self.radius), self._step

    def measure(self, params: Mapping[str, Tensor]) -> Movement:
        """How far ``params`` (the adapted weights) are from the parent, and whether the
        bound was active in reaching them."""
        clipped = self._step is not None and self._step.clipped > 0
        moved = float(distance(params, self.parent)) / self.scale
        return Movement(moved, self._start_clipped or clipped)


def lifts(loss_parent: Tensor, loss_baseline: Tensor | None) -> bool:
    """Whether the bound is lifted: the task has a constant baseline and the parent's mean
    query loss is not below the baseline's (a retired policy's replacement, which is the
    baseline, is lifted too: a ball around it would pin the stream to the baseline)."""
    if loss_baseline is None:
        return False
    # "Not below" rather than "above": a parent whose loss is NaN is not ahead either.
    return not float(loss_parent.mean()) < float(loss_baseline.mean())
