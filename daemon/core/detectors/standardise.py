"""Self-starting standardisation (Hawkins 1987): each value scored against the values before
it since the (re)start, so a detector needs no in-control mean or deviation given to it.

With ``n`` earlier values, mean ``m`` and standard deviation ``s``,
``T = (x - m) / (s * sqrt(1 + 1/n))`` is Student-t with ``n - 1`` degrees of freedom in
control, and :meth:`SelfStarting.score` returns its normal score (Wallace 1959, Ann. Math.
Statist. 30; within 0.003 of the exact one from ``n = 30``): for Gaussian inputs nearly
independent N(0, 1) values, which the CUSUM's and FOCuS's calibrations assume. Nothing is
scored during the first ``warmup`` values, nor while they are all equal (a scale of zero
cannot standardise). Estimates are Welford's, so they keep learning after the warm-up.

>>> s = SelfStarting(3)
>>> [s.score(v) for v in (1.0, 2.0, 3.0)]
[None, None, None]
>>> round(s.score(10.0), 3)  # far above 1, 2, 3
2.27
"""

from __future__ import annotations

import math

__all__ = ["SelfStarting", "check_warmup"]


def check_warmup(warmup: int) -> int:
    """``warmup`` if it is an integer of at least 3, else a ValueError naming it."""
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 3:
        raise ValueError(f"warmup must be an integer >= 3, got {warmup!r}")
    return warmup


class SelfStarting:
    """The running estimates of one (re)started stretch of a stream, and the scores."""

    __slots__ = ("m2", "mean", "n", "warmup")

    def __init__(self, warmup: int) -> None:
        self.warmup = check_warmup(warmup)
        self.restart()

    def restart(self) -> None:
        """Forget the estimates: the next ``warmup`` values are not scored."""
        self.n = 0  # Welford's count, mean and sum of squared deviations
        self.mean = 0.0
        self.m2 = 0.0

    def score(self, x: float) -> float | None:
        """``x``'s normal score against the values before it (None while warming up); then
        ``x`` joins the estimates."""
        n = self.n
        z = None
        if n >= self.warmup and self.m2 > 0.0:
            nu = n - 1
            t = (x - self.mean) / math.sqrt(self.m2 / nu * (1.0 + 1.0 / n))
            z = math.copysign(
                (8 * nu + 1) / (8 * nu + 3) * math.sqrt(nu * math.log1p(t * t / nu)), t
            )
        n += 1
        delta = x - self.mean
        self.mean += delta / n
        self.m2 += delta * (x - self.mean)
        self.n = n
        return z
