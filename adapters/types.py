"""The types every part of the library shares, torch-free at import: the weights (``Params``),
the task losses (``Loss``) and what one adaptation produced (``AdaptResult``).

They live here, below both the interface (:mod:`adaptd.adapters.protocol`) and the inner loop
(:mod:`adaptd.adapters.fast_weights`), so that each imports them one way.

Examples
--------
>>> LOSSES
('mse', 'cross_entropy', 'qlike')
>>> AdaptResult({}, steps=0, losses=(1.0,), deadline_hit=True, seconds=0.0).deadline_hit
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["LOSSES", "QLIKE_BOUND", "AdaptResult", "Loss", "Params"]

Params = dict[str, "Tensor"]
"""Weights (or gradients, step sizes, importances) by parameter name, keyed like
``net.named_parameters()``."""

Loss = Literal["mse", "cross_entropy", "qlike"]
"""Task loss: "mse" for regression (targets ``(n,)`` float), "cross_entropy" for
classification (targets ``(n,)`` integer class ids, network output ``(n, n_classes)``),
"qlike" for a variance forecast (targets ``(n,)`` positive realised-variance ratios, network
output ``(n,)`` the log of the forecast ratio; see :func:`adaptd.adapters.losses.row_losses`)."""
LOSSES: tuple[Loss, ...] = ("mse", "cross_entropy", "qlike")

QLIKE_BOUND = 30.0
"""|log forecast ratio| beyond which "qlike" is flat: a forecast e^30 times off is off."""


class AdaptResult(NamedTuple):
    """What one adaptation produced."""

    params: Params
    """The adapted fast weights (detached unless ``create_graph=True``)."""
    steps: int
    """Gradient steps actually taken (fewer than requested when the deadline hit)."""
    losses: tuple[float, ...]
    """Support loss before step 1, after step 1, ..., after the last step (``steps + 1`` values)."""
    deadline_hit: bool
    """True when the deadline stopped the loop before the requested steps."""
    seconds: float
    """Wall-clock time of the whole call."""
    kept: int | None = None
    """Index in ``losses`` of the iterate returned as ``params`` when the loop kept its best
    iterate (``adapt(..., keep_best=True)``); None: the last one."""

    @property
    def loss(self) -> float:
        """The support loss of ``params`` (NaN when no loss was recorded)."""
        if not self.losses:
            return float("nan")
        return self.losses[-1 if self.kept is None else self.kept]
