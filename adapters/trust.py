"""A trust region for the inner loop: fast weights kept within an L2 ball around a centre.

The distance is the L2 norm of the difference over every entry of the centre together (the
whole network as one vector). :func:`project` is the Euclidean projection onto the ball
``||w - c|| <= radius``: a point inside is returned unchanged (bit for bit), a point
outside moves along the segment toward the centre onto the boundary,
``c + (w - c) * radius / ||w - c||``. With ``names`` only those entries move and the others
are held where they are: the held entries' distance is spent first, and the moving entries'
difference is scaled to fit in what is left of the radius (to zero if nothing is left).

:class:`TrustRegionStep` is an :class:`~adaptd.adapters.steps.InnerStep`: another step (plain
gradient descent by default, or a proximal step) followed by the projection of the adapted
entries, which makes the inner loop projected gradient descent on the ball. A loop that
starts outside the ball should start from its projection (``project(start, centre, r)``):
when the held entries alone are farther than the radius, no step can bring them in.

Examples
--------
>>> import torch
>>> centre = {"w": torch.zeros(2), "b": torch.zeros(1)}
>>> far = {"w": torch.tensor([3.0, 0.0]), "b": torch.tensor([4.0])}
>>> float(distance(far, centre))
5.0
>>> on_the_boundary = project(far, centre, radius=2.5)
>>> on_the_boundary["w"], on_the_boundary["b"]
(tensor([1.5000, 0.0000]), tensor([2.]))
>>> inside = project(far, centre, radius=6.0)
>>> all(torch.equal(inside[k], far[k]) for k in far)
True
>>> project(far, centre, radius=13**0.5, names=["b"])["b"]  # w spends 3 of sqrt(13)
tensor([2.])
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor

from .checks import in_interval
from .steps import SGD_STEP, InnerStep
from .types import Params

__all__ = ["TrustRegionStep", "distance", "norm", "project"]


def norm(params: Mapping[str, Tensor]) -> Tensor:
    """The L2 norm of every entry together (the weights as one vector)."""
    return _sum_squares(params.values()).sqrt()


def distance(params: Mapping[str, Tensor], centre: Mapping[str, Tensor]) -> Tensor:
    """``||params - centre||`` over every entry of ``centre`` (``params`` holds them all)."""
    return _sum_squares(params[k] - c for k, c in centre.items()).sqrt()


def project(
    params: Mapping[str, Tensor],
    centre: Mapping[str, Tensor],
    radius: float,
    names: Sequence[str] | None = None,
) -> Params:
    """The nearest point to ``params`` within ``radius`` of ``centre`` that moves only
    ``names`` (default every entry of ``centre``); entries of ``params`` outside ``centre``
    are returned unchanged. Differentiable and free of data-dependent branches (it runs in a
    second-order inner loop and under ``vmap``)."""
    return _projected(params, centre, radius, names)[0]


class TrustRegionStep:
    """Another inner step, then :func:`project` of the adapted entries onto the ball.

    Parameters
    ----------
    centre
        The centre of the ball, every parameter (kept detached).
    radius
        The ball's radius, a finite number ``>= 0`` (0 holds the adapted entries at the
        centre).
    step
        The step whose result is projected: plain gradient descent by default, or any
        :class:`~adaptd.adapters.steps.InnerStep` (a proximal step composes this way).

    ``clipped`` counts the calls whose step left the ball (and was projected back onto it).
    """

    def __init__(
        self, centre: Mapping[str, Tensor], radius: float, step: InnerStep = SGD_STEP
    ) -> None:
        self.centre = {k: v.detach() for k, v in centre.items()}
        self.radius = in_interval("radius", radius, 0.0, math.inf, closed=(True, False))
        self.step = step
        self._shrinks: list[Tensor] = []

    def __call__(
        self,
        params: Mapping[str, Tensor],
        grads: Mapping[str, Tensor],
        rates: Mapping[str, float | Tensor],
        names: Sequence[str],
    ) -> Params:
        """``step``'s weights, projected onto the ball moving only ``names``."""
        out, shrink = _projected(
            self.step(params, grads, rates, names), self.centre, self.radius, names
        )
        # Kept as tensors: reading them here would synchronise every step for a statistic.
        self._shrinks.append(shrink.detach())
        return out

    @property
    def clipped(self) -> int:
        """Steps so far whose result was outside the ball."""
        return sum(int(bool(s > 0)) for s in self._shrinks)

    def __repr__(self) -> str:
        return f"TrustRegionStep(radius={self.radius}, step={self.step!r})"


def _projected(
    params: Mapping[str, Tensor],
    centre: Mapping[str, Tensor],
    radius: float,
    names: Sequence[str] | None,
) -> tuple[Params, Tensor]:
    """:func:`project`, and the fraction of the moving entries' difference removed (0 inside
    the ball)."""
    moving = list(centre) if names is None else list(names)
    if unknown := set(moving) - set(centre):
        raise ValueError(f"names holds parameters the centre lacks: {sorted(unknown)}")
    still = set(moving)
    held = _sum_squares(params[k] - c for k, c in centre.items() if k not in still)
    diffs = {k: params[k] - centre[k] for k in moving}
    squares = _sum_squares(diffs.values())
    tiny = torch.finfo(squares.dtype).tiny
    # Clamped before the square roots, whose gradient at 0 is infinite (a NaN through a
    # second-order loop otherwise).
    budget = (radius**2 - held).clamp(min=tiny).sqrt()
    length = squares.clamp(min=tiny).sqrt()
    # Exactly 1 inside the ball (budget / budget), where the point is kept as it is; outside,
    # centre + scale * d lands on the boundary without the cancellation of p - (1 - scale) d.
    scale = budget / torch.maximum(length, budget)
    inside = scale >= 1.0
    moved = {k: torch.where(inside, params[k], centre[k] + scale * d) for k, d in diffs.items()}
    return {**params, **moved}, 1.0 - scale


def _sum_squares(tensors: Iterable[Tensor]) -> Tensor:
    return sum((t.pow(2).sum() for t in tensors), torch.zeros(()))
