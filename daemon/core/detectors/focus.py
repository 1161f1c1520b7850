"""FOCuS: the exact CUSUM statistic for a change in mean of unknown size, by functional pruning.

Romano, Eckley, Fearnhead & Rigaill (2023), "Fast online changepoint detection via
functional pruning CUSUM statistics", JMLR 24(81) (arXiv:2110.08205). On standardised
values ``z`` (in control: mean 0, variance 1), a change at a candidate start ``tau`` to an
unknown mean ``mu`` has log-likelihood ratio ``sum_{i=tau..t} (mu z_i - mu**2 / 2)``; its
maximum over ``mu`` and ``tau`` is the statistic

    Q_t = max_tau (z_tau + ... + z_t)**2 / (2 (t - tau + 1)),

a CUSUM over every shift size at once (Page's CUSUM, :class:`~.cusum.Cusum`, fixes the
size). Computed naively it costs ``O(t)`` an update. FOCuS keeps only the candidates that
can still maximise it: with ``S_j = z_1 + ... + z_j`` (``S_0 = 0``), candidate ``j`` (a
new segment from the value after ``j``) contributes ``mu (S_t - S_j) - (t - j) mu**2 / 2``,
whose difference from another candidate's does not depend on ``t``. So a candidate beaten
by another for every ``mu > 0`` (or every ``mu < 0``) is beaten for ever and is pruned: for
``mu > 0`` the survivors are the vertices of the lower convex hull of the points
``(j, S_j)`` on which the hull rises, for ``mu < 0`` those of the upper hull on which it
falls (Romano et al.'s pruning for a known pre-change mean, here known by the
standardisation, run once per sign: the points where their quadratics cross are twice these
hulls' slopes). Each update adds the point ``(t, S_t)``, pops the points it makes dominated
(amortised O(1)) and maximises over the survivors, ``O(log t)`` of them in expectation in
control (the paper bounds the expected number), so the statistic is exact at ``O(log t)``
an update.

**Bounded memory.** At most ``max_candidates`` (start, sum) pairs are kept, both signs
together (each sign's list also holds the newest point): past that, the oldest is dropped,
and the statistic is then the maximum over the candidates kept, a lower bound (exact while
the cap is not reached). In control the lists stay far below the default 200: at most 15 to
21 over 10,000 values (five seeds), 31 over the 20,000 simulated streams of up to 10**6
values below. Only a long drift whose prefix sums are convex or concave (an accelerating
one), all of whose points lie on the hull, fills them.

**Threshold, calibrated by simulation.** The user states ``false_alarms_per_10k``, the
expected false alarms per 10,000 in-control events, so the in-control average run length
from a (re)start is ``ARL0 = 10_000 / false_alarms_per_10k``. ``Q_t`` has no closed-form
run length. Large-threshold approximations for such generalized likelihood ratio statistics
(Siegmund & Venkatraman 1995, "Using the generalized likelihood ratio statistic for
sequential detection of a change-point", Ann. Statist. 23) have the form
``C exp(h) / sqrt(h)`` in the threshold ``h`` on ``Q_t`` (``exp(b**2 / 2) / b`` in their
``b = sqrt(2 h)``); their constant was not used. Instead that form, with corrections in
``1 / h``, was fitted to simulation (:data:`ARL_FIT`):

    log ARL(h) = h - log(h) / 2 + a0 + a1 / h + a2 / h**2.

The simulation ran the exact statistic (the algorithm above, compiled) on 20,000
independent N(0, 1) streams with known parameters, each until ``Q_t`` passed 12.5 or for
10**6 values, and recorded each stream's first passage over 181 thresholds from 3.5 to 12.5
(one stream gives a run length for every threshold); the ARL at each threshold is
``sum(min(T, H)) / #(T <= H)``, the mean run length, exact for geometric run lengths when
the horizon ``H`` censors some (it did only above ``h = 12``). The fit, weighted by the
estimates' standard errors (0.7 %), is within 1.4 % of every simulated ARL from 80 to
130,000, and :func:`threshold_for` inverts it by bisection over the range it is valid for,
:data:`RATE_RANGE` (0.1 to 100 false alarms per 10,000: ``h`` from 11.88 down to 4.28);
other rates raise ``ValueError``. Checked on 2e7 fresh events each, the statistic with known
parameters gave 98.7, 10.03 and 0.99 false alarms per 10,000 at targets of 100, 10 and 1,
and the self-starting detector 76.2, 9.79 and 1.004 against the 76.9, 9.71 and 0.997 that
its warm-ups leave (each alarm is followed by ``warmup`` events that cannot alarm, so its
long-run rate is the target times ``ARL0 / (ARL0 + warmup)``, as for
:class:`~.cusum.Cusum`). The default, one false alarm per 10,000, gives ``h = 9.42`` and a
mean delay of 18.2 events for a 1-sd shift (600 simulated runs), against 16.7 for the CUSUM
tuned to exactly that shift; for shifts the CUSUM is not tuned to, FOCuS is the faster (75
against 117 events at 0.5 sd, where the CUSUM also missed 72 of the 600 changes within 600
events, 5.2 against 5.9 at 2 sd, 2.7 against 3.7 at 3 sd).

**Standardisation (self-starting)** is :class:`~.cusum.Cusum`'s: each value is standardised
by the mean and standard deviation of the values before it since the (re)start, turned into
a Student-t with ``n - 1`` degrees of freedom and mapped to its normal score (Wallace 1959),
so that the ``z`` are nearly independent N(0, 1) in control and the calibration above holds
from the first monitored value. Nothing is raised during the first ``warmup`` values after
the start and after every alarm (extended while all of them are equal); the statistic
starts at the first value after the warm-up. The scheme is free of the input's scale and
offset. ``known=(mean, sd)`` skips the estimate and standardises by the given values
instead: then there is no warm-up, and the statistic starts at the first value and again at
the value after each alarm (for tests, and for streams whose in-control law is known).

**Alarm** when ``Q_t`` exceeds the threshold ``h``; the alarm's ``location`` is the arg max
start (the first index of the new segment; among exact ties, the earliest), its ``score``
``Q_t``. The running statistic and its arg max are :attr:`Focus.statistic` and
:attr:`Focus.start`. After an alarm the detector re-warms from the next value, as
:class:`~.cusum.Cusum` does and for the same reason (estimates from the values that drove
the statistic would start off-centre). Non-finite values are counted (the index advances)
but otherwise ignored.

Parameters: ``false_alarms_per_10k`` (target rate), ``warmup`` (values after the start and
after every alarm before any alarm, at least 3), ``max_candidates`` (memory cap, at least
4), ``known`` (fixed in-control mean and standard deviation, or ``None``).

A 1-sd rise at index 500 of a seeded Gaussian stream:

>>> import numpy as np
>>> x = np.random.default_rng(7).normal(10.0, 2.0, 1000)
>>> x[500:] += 1.0 * 2.0
>>> detector = Focus()
>>> round(detector.threshold, 2)
9.42
>>> alarms = [a for a in map(detector.update, x) if a is not None]
>>> [(a.index, a.location) for a in alarms]
[(516, 503)]
>>> round(arl_of(threshold_for(20.0)))  # 20 per 10,000: ARL0 500
500
"""

from __future__ import annotations

import math

from .protocol import Alarm
from .standardise import SelfStarting, check_warmup

__all__ = ["ARL_FIT", "RATE_RANGE", "Focus", "arl_of", "threshold_for"]

ARL_FIT = (0.6165, 3.6206, -7.5881)
"""``(a0, a1, a2)`` of ``log ARL(h) = h - log(h) / 2 + a0 + a1 / h + a2 / h**2``, the
two-sided in-control average run length of ``Q_t`` from a fresh start, fitted to simulation
(see the module's docstring)."""

RATE_RANGE = (0.1, 100.0)
"""The false alarms per 10,000 events that the fit was checked for."""

_REBASE = 2.0**20  # |S| past which the kept sums are re-based at 0 (keeps differences exact)


def arl_of(h: float) -> float:
    """The fitted in-control average run length of the two-sided FOCuS statistic (known
    parameters) from a fresh start at threshold ``h``: checked against simulation for ``h``
    from 4.05 to 12.15 (ARL 80 to 130,000).

    >>> round(arl_of(8.0))
    2727
    """
    if not (math.isfinite(h) and h > 0.0):
        raise ValueError(f"h must be a positive number, got {h!r}")
    a0, a1, a2 = ARL_FIT
    return math.exp(h - 0.5 * math.log(h) + a0 + a1 / h + a2 / (h * h))


def threshold_for(false_alarms_per_10k: float) -> float:
    """The threshold ``h`` on ``Q_t`` for ``false_alarms_per_10k`` expected false alarms per
    10,000 in-control events (:func:`arl_of` equal to ``10_000 / false_alarms_per_10k``),
    by bisection; the rate must lie in :data:`RATE_RANGE`.

    >>> round(threshold_for(1.0), 3)
    9.416
    """
    lo_rate, hi_rate = RATE_RANGE
    try:
        rate = float(false_alarms_per_10k)
    except (TypeError, ValueError):
        rate = math.nan
    if not lo_rate <= rate <= hi_rate:  # NaN fails too
        raise ValueError(
            f"false_alarms_per_10k must lie in [{lo_rate}, {hi_rate}] (the calibrated range), "
            f"got {false_alarms_per_10k!r}"
        )
    log_arl = math.log(10_000.0 / rate)
    lo, hi = 2.0, 20.0  # log arl_of increases on [2, 20] for the fitted constants
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if math.log(arl_of(mid)) < log_arl:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * hi:
            break
    return 0.5 * (lo + hi)


class Focus:
    """Two-sided self-starting FOCuS for a change in mean of unknown size, re-warming after
    each alarm.

    Parameters
    ----------
    false_alarms_per_10k
        Expected false alarms per 10,000 in-control events, in :data:`RATE_RANGE`; sets
        :attr:`threshold`.
    warmup
        Values after the start and after every alarm before any alarm (at least 3); unused
        with ``known``.
    max_candidates
        Most (start, sum) pairs kept, both signs together (at least 4); the oldest go first.
    known
        ``(mean, sd)`` of the in-control values, to standardise by instead of the running
        estimates (``sd > 0``); ``None`` (the default) estimates them.
    """

    __slots__ = (
        "_index",
        "_neg",
        "_pos",
        "_scale",
        "_sum",
        "_t",
        "false_alarms_per_10k",
        "known",
        "max_candidates",
        "start",
        "statistic",
        "threshold",
        "warmup",
    )

    name = "focus"

    def __init__(
        self,
        false_alarms_per_10k: float = 1.0,
        warmup: int = 30,
        max_candidates: int = 200,
        known: tuple[float, float] | None = None,
    ) -> None:
        self.threshold = threshold_for(false_alarms_per_10k)
        """The threshold ``h`` on the statistic ``Q_t``."""
        self.false_alarms_per_10k = float(false_alarms_per_10k)
        self.warmup = check_warmup(warmup)
        if (
            isinstance(max_candidates, bool)
            or not isinstance(max_candidates, int)
            or max_candidates < 4
        ):
            raise ValueError(f"max_candidates must be an integer >= 4, got {max_candidates!r}")
        self.max_candidates = max_candidates
        if known is not None:
            try:
                mean, sd = (float(v) for v in known)
            except (TypeError, ValueError):
                mean = sd = math.nan
            if not (math.isfinite(mean) and math.isfinite(sd) and sd > 0.0):
                raise ValueError(f"known must be (finite mean, sd > 0), got {known!r}")
            known = (mean, sd)
        self.known = known
        self.reset()

    @property
    def candidates(self) -> int:
        """The (start, sum) pairs kept now, both signs together."""
        return len(self._pos) + len(self._neg)

    def reset(self) -> None:
        """Forget everything seen (the next update is index 0 again)."""
        self._index = 0
        self._restart()

    def _restart(self) -> None:
        self._scale = SelfStarting(self.warmup)
        self._t = 0  # standardised values since the statistic (re)started, and their sum
        self._sum = 0.0
        # (t, S_t, start) of the kept candidates, oldest first: the rising lower hull (mu > 0)
        # and the falling upper hull (mu < 0); both end with the newest point.
        self._pos: list[tuple[int, float, int]] = []
        self._neg: list[tuple[int, float, int]] = []
        self.statistic = 0.0
        """``Q_t`` at the last update (0 while warming up)."""
        self.start = -1
        """The arg max start of :attr:`statistic` (-1 while there is none)."""

    def update(self, x: float) -> Alarm | None:
        """Take the next value; an :class:`~.protocol.Alarm` when a change is detected."""
        i = self._index
        self._index = i + 1
        x = float(x)
        if not math.isfinite(x):
            return None
        known = self.known
        if known is not None:
            z = (x - known[0]) / known[1]
        else:
            score = self._scale.score(x)
            if score is None:
                return None
            z = score
        # the statistic: add the point (t, S_t), prune what it dominates, maximise
        pos, neg = self._pos, self._neg
        t = self._t
        if not t:  # the origin: a segment from this value
            pos.append((0, 0.0, i))
            neg.append((0, 0.0, i))
        t += 1
        s = self._sum + z
        while pos:  # mu > 0: pop the points at or above s, and those above the chord to it
            xl, sl, _ = pos[-1]
            if sl >= s:
                pos.pop()
                continue
            if len(pos) > 1:
                xp, sp, _ = pos[-2]
                if (sl - sp) * (t - xl) >= (s - sl) * (xl - xp):
                    pos.pop()
                    continue
            break
        while neg:  # mu < 0, mirrored
            xl, sl, _ = neg[-1]
            if sl <= s:
                neg.pop()
                continue
            if len(neg) > 1:
                xp, sp, _ = neg[-2]
                if (sl - sp) * (t - xl) <= (s - sl) * (xl - xp):
                    neg.pop()
                    continue
            break
        best, arg = 0.0, -1
        for xk, sk, start in pos:  # oldest first, strict >: the earliest of exact ties
            d = s - sk
            v = d * d / (t - xk)
            if v > best:
                best, arg = v, start
        for xk, sk, start in neg:
            d = s - sk
            v = d * d / (t - xk)
            if v > best or (v == best and start < arg):
                best, arg = v, start
        best *= 0.5
        self.statistic, self.start = best, arg
        if best > self.threshold:
            self._restart()
            return Alarm(i, arg, best)
        pos.append((t, s, i + 1))
        neg.append((t, s, i + 1))
        if len(pos) + len(neg) > self.max_candidates:  # drop the oldest (each side keeps 1)
            if len(neg) < 2 or (len(pos) > 1 and pos[0][2] <= neg[0][2]):
                del pos[0]
            else:
                del neg[0]
        if abs(s) > _REBASE:  # only differences matter: keep them exact
            self._pos = [(xk, sk - s, start) for xk, sk, start in pos]
            self._neg = [(xk, sk - s, start) for xk, sk, start in neg]
            s = 0.0
        self._t, self._sum = t, s
        return None

    def __repr__(self) -> str:
        return (
            f"Focus(false_alarms_per_10k={self.false_alarms_per_10k!r}, "
            f"warmup={self.warmup!r}, max_candidates={self.max_candidates!r}, "
            f"known={self.known!r})"
        )
