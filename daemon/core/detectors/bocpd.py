"""Bayesian online change-point detection (BOCPD) for one stream of numbers.

The detector keeps the posterior distribution of the *run length*, the number of values
since the current segment began, and updates it with each value (Adams, R.P. & MacKay,
D.J.C. (2007) *Bayesian Online Changepoint Detection*, arXiv:0710.3742). What one segment
looks like is a conjugate *segment model* (:mod:`.segments`), chosen by ``model``:
``"constant"`` (:class:`~.segments.NormalGamma`), Gaussian values with an unknown mean and
variance under the Normal-Gamma prior ``(mu0, kappa0, alpha0, beta0)``, or ``"trend"``
(:class:`~.segments.LinearTrend`), ``y = a + b s + noise`` at position ``s`` within the
segment under a Normal-Inverse-Gamma prior (the intercept as the constant model's mean, the
slope centred on 0 with scale ``slope_scale`` noise standard deviations per value). Either
way each run-length hypothesis carries its segment's posterior and predicts the next value
with a Student-t. A new segment starts before any value with the constant probability
``1 / expected_run``. Every probability is kept as a logarithm and combined by log-sum-exp,
so a long segment whose likelihood underflows a float is still weighed correctly.

Run length here is ``t - s`` for a segment whose first value is ``s`` and whose latest is
``t``: 0 means the latest value opened a new segment. The stream's first value opens the
first segment; that is not a change.

**Bounded cost.** Every hypothesis is stored explicitly (its segment's first index and its
statistics), never as a dense vector over all run lengths, and at most ``max_run_lengths``
are kept: when a value would make one too many, the least probable hypothesis among those
at least ``window`` old is dropped and the rest renormalised. The young ones are never
dropped, because they are exactly what the alarm rule weighs (a new segment starts with a
small probability and must be allowed to grow). Cost and memory per value are therefore
O(``max_run_lengths``) however long the stream.

**Scale-freeness (online).** Unless ``prior`` is given, the first ``warmup`` values set it:
their mean and standard deviation standardise every value the detector sees, and in those
units the prior is ``(0, kappa0, alpha0, alpha0 - 1)``, whose expected variance
``beta0 / (alpha0 - 1)`` is 1, i.e. the warm-up's variance (the standard deviation is floored
at ``max(1e-6 * |mean|, 1e-12)``, so a constant warm-up does not divide by zero). Once the
prior is known the warm-up values are replayed through the recursion, so the posterior
afterwards is the one from the first value with that prior. Only the past is used
(nothing waits for values after the warm-up) and no alarm is raised during it. A stream
multiplied by a non-zero constant and shifted therefore gives the same alarms, up to
floating-point rounding. An explicit ``prior`` is in the stream's own units and skips the
warm-up (``slope_scale`` is a pure number either way).

**Where a new segment is expected** (``recentre``). With a fixed prior every new segment is
expected near the warm-up's level, which suits a channel that returns to it (returns,
errors), not one that wanders (prices): a new segment far from the warm-up's mean is judged
against a prior that expects it near that mean, found late or not at all. ``recentre=True``
(the default for ``"trend"``) centres the location prior of the segment that opens at
``t`` on the one-step-ahead predictive mean of the most probable hypothesis after
``x[:t]``: a new segment is expected where the data are, and stands out by its departure
from what the current segment predicts, not by its distance from the warm-up. The rest of
the prior (the location's spread, the slope's, the noise's) is unchanged. This makes the
detector an approximation of BOCPD: the run-length posterior it computes is still exact
(pruning aside) for a model whose new segments are drawn around a level that depends on
the past, but that is no longer Adams and MacKay's model with a fixed prior.
``recentre=False`` (the default for ``"constant"``, which then gives exactly the results
it always has) keeps the fixed prior, and the recursion is exact BOCPD.

**Alarm rule.** After each value, ``p`` is the posterior probability that the current
segment began within the last ``window`` values *and* no earlier than the earliest start
that can still be reported: the end of the warm-up at first (a change inside the warm-up
is part of the reference the prior was learnt from), then, after an alarm, the later of the
index after the alarm and its location plus ``min_spacing``. An alarm is raised when
``p >= threshold``; its ``location`` is the most probable such start (the run-length
posterior's mode restricted to those run lengths) and its ``score`` is ``p``. The posterior
is kept as it is after an alarm (nothing restarts), and the same change is not reported
twice: the posterior about where it began can keep moving after the alarm (say from 195 to
200), but starts up to the alarm's index belong to the change already reported, and the
next alarm comes ``min_spacing`` values after one at the earliest. The price: a second change within
an alarm's delay of the first is not reported. A change still not believed ``window``
values after it began is never reported, which bounds the delay.

Parameters (:class:`BOCPD`)
---------------------------
model = "constant"
    The segment model: ``"constant"`` (a mean) or ``"trend"`` (a line).
expected_run = 250
    The prior's mean segment length: the hazard is ``1 / expected_run`` per value.
threshold = 0.9
    Posterior probability of a young, reportable segment that raises an alarm.
window = 50
    How many recent run lengths count as "a change just happened"; the longest delay.
max_run_lengths = 300
    The most run-length hypotheses kept (more than ``window``).
warmup = 10
    Values that set the prior when ``prior`` is not given (at least 2).
min_spacing = 5
    Least distance from an alarm's location to the next one's, and between alarms.
kappa0 = 1, alpha0 = 2
    The shape of the prior set by the warm-up: ``alpha0 > 1`` so the variance has a mean
    to match, 2 the least whole number that does (the new segment's predictive is a
    Student-t with 4 degrees of freedom); ``kappa0 = 1`` puts a new segment's mean within a
    couple of warm-up standard deviations of the warm-up's mean (of its prior centre).
slope_scale = 0.3
    ``"trend"`` only: the slope's prior standard deviation in noise standard deviations
    per value (given the noise variance, whose prior mean is the warm-up's variance): a
    slope of one warm-up standard deviation per 3 values, the steepest that a 10-value
    warm-up which is all trend holds, is one prior sd (why not 0.1 or 1: :mod:`.segments`).
recentre = None
    Centre each new segment on the predicted level (above); None: True for ``"trend"``,
    False for ``"constant"``.
prior = None
    ``(mu0, kappa0, alpha0, beta0)`` in the stream's units, instead of the warm-up.

**The defaults, measured** (false alarms, delays, location errors; why each default): in
docs/detection.md, "BOCPD's defaults". The ``"trend"`` defaults are measured in
:mod:`.segments`.

A Gaussian stream whose mean moves up by three standard deviations at index 200:

>>> import numpy as np
>>> rng = np.random.default_rng(3)
>>> stream = np.concatenate([rng.normal(10.0, 2.0, 200), rng.normal(16.0, 2.0, 200)])
>>> detector = BOCPD()
>>> alarms = [a for x in stream if (a := detector.update(float(x))) is not None]
>>> len(alarms), abs(alarms[0].location - 200) <= 3, alarms[0].index - alarms[0].location < 10
(1, True, True)
>>> run_lengths, probabilities = detector.run_length_posterior
>>> int(run_lengths[np.argmax(probabilities)]) == detector.index - 1 - alarms[0].location
True

A steady trend with a jump of three standard deviations at index 300: the trend model finds
the jump alone; the constant model raises alarms along the trend, then none at all (the
level has left its prior):

>>> rng = np.random.default_rng(0)
>>> t = np.arange(500)
>>> stream = 50.0 + 0.2 * t + 6.0 * (t >= 300) + rng.normal(0.0, 2.0, 500)
>>> def alarms(detector):
...     return [(a.index, a.location) for x in stream if (a := detector.update(float(x)))]
>>> alarms(BOCPD(model="trend"))
[(301, 300)]
>>> alarms(BOCPD(model="constant"))
[(24, 18), (47, 33), (91, 62), (144, 109)]
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from .protocol import Alarm
from .segments import LinearTrend, NormalGamma, log_predictive, logsumexp

__all__ = ["BOCPD", "log_predictive"]

_CLIP = 1e100  # standardised values are clipped to +-_CLIP (update's comment says why)
_MODELS = ("constant", "trend")


class BOCPD:
    """Bayesian online change-point detection with a conjugate segment model; the
    parameters are described in the module docstring."""

    __slots__ = (
        "_buffer",
        "_floor",
        "_log_hazard",
        "_log_survival",
        "_logp",
        "_n",
        "_quiet_until",
        "_scale",
        "_segments",
        "_shift",
        "_starts",
        "_t",
        "_user_prior",
        "alpha0_warmup",
        "expected_run",
        "kappa0_warmup",
        "max_run_lengths",
        "min_spacing",
        "model",
        "recentre",
        "slope_scale",
        "threshold",
        "warmup",
        "window",
    )

    name = "bocpd"

    def __init__(
        self,
        expected_run: float = 250.0,
        threshold: float = 0.9,
        window: int = 50,
        max_run_lengths: int = 300,
        warmup: int = 10,
        min_spacing: int = 5,
        kappa0: float = 1.0,
        alpha0: float = 2.0,
        prior: tuple[float, float, float, float] | None = None,
        model: Literal["constant", "trend"] = "constant",
        slope_scale: float = 0.3,
        recentre: bool | None = None,
    ) -> None:
        if model not in _MODELS:
            raise ValueError(f"model must be one of {_MODELS}, got {model!r}")
        if not (math.isfinite(expected_run) and expected_run > 1.0):
            raise ValueError(f"expected_run must be a finite number > 1, got {expected_run!r}")
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window!r}")
        if max_run_lengths <= window:
            raise ValueError(
                f"max_run_lengths ({max_run_lengths!r}) must exceed window ({window!r})"
            )
        if min_spacing < 1:
            raise ValueError(f"min_spacing must be at least 1, got {min_spacing!r}")
        if not (math.isfinite(slope_scale) and slope_scale > 0.0):
            raise ValueError(f"slope_scale must be finite and > 0, got {slope_scale!r}")
        if prior is None:
            if warmup < 2:
                raise ValueError(f"warmup must be at least 2 without a prior, got {warmup!r}")
            if not (math.isfinite(kappa0) and kappa0 > 0.0):
                raise ValueError(f"kappa0 must be finite and > 0, got {kappa0!r}")
            if not (math.isfinite(alpha0) and alpha0 > 1.0):
                # alpha0 <= 1 leaves the prior variance without a mean to match.
                raise ValueError(f"alpha0 must be finite and > 1, got {alpha0!r}")
        else:
            mu0, k0, a0, b0 = (float(v) for v in prior)
            if not all(map(math.isfinite, (mu0, k0, a0, b0))) or min(k0, a0, b0) <= 0.0:
                raise ValueError(f"prior needs finite mu0 and kappa0, alpha0, beta0 > 0: {prior}")
            prior = (mu0, k0, a0, b0)
        self.model = model
        self.expected_run = float(expected_run)
        self.threshold = float(threshold)
        self.window = int(window)
        self.max_run_lengths = int(max_run_lengths)
        self.warmup = 0 if prior is not None else int(warmup)
        self.min_spacing = int(min_spacing)
        self.kappa0_warmup = float(kappa0)
        self.alpha0_warmup = float(alpha0)
        self.slope_scale = float(slope_scale)
        self.recentre = (model == "trend") if recentre is None else bool(recentre)
        self._user_prior = prior
        self._log_hazard = -math.log(self.expected_run)
        self._log_survival = math.log1p(-1.0 / self.expected_run)
        self.reset()

    # -- state ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything: the next update is index 0 (and the warm-up starts again)."""
        self._t = 0
        self._buffer: list[float] = []
        self._floor = max(1, self.warmup)  # the earliest segment start that may be reported
        self._quiet_until = 0
        # One hypothesis per kept segment start, oldest first, in arrays allocated once
        # (room for one more than the bound: the new hypothesis before pruning): its start
        # and log probability here, its statistics (standardised units) in the model.
        capacity = self.max_run_lengths + 1
        self._n = 0
        self._starts = np.zeros(capacity, dtype=np.int64)
        self._logp = np.zeros(capacity)
        if self.model == "trend":
            self._segments: NormalGamma | LinearTrend = LinearTrend(capacity, self.slope_scale)
        else:
            self._segments = NormalGamma(capacity)
        self._shift, self._scale = 0.0, 1.0
        if self._user_prior is not None:
            self._segments.set_prior(*self._user_prior)
        # else the placeholder prior is replaced after the warm-up

    @property
    def index(self) -> int:
        """How many values the detector has seen (the index the next one will get)."""
        return self._t

    @property
    def prior(self) -> tuple[float, float, float, float] | None:
        """``(mu0, kappa0, alpha0, beta0)`` in the stream's units; None during the warm-up."""
        if self._t < self.warmup:
            return None
        seg, s = self._segments, self._scale
        return (self._shift + s * seg.mu0, seg.kappa0, seg.alpha0, s * s * seg.beta0)

    @property
    def run_length_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """``(run_lengths, probabilities)`` after the latest value, shortest run first.

        Run length ``r`` means the current segment began at index ``index - 1 - r``. Empty
        before the first value and during the warm-up.
        """
        n = self._n
        run_lengths = (self._t - 1) - self._starts[:n][::-1]
        return run_lengths, np.exp(self._logp[:n][::-1])

    def log_predictive(self, x: float) -> np.ndarray:
        """Each hypothesis' log predictive density of ``x`` as the next value, in the order
        of :attr:`run_length_posterior` (in the stream's units, so the standardisation's
        Jacobian is included)."""
        if self._n == 0:
            raise ValueError("no run-length hypotheses yet (nothing seen, or warming up)")
        density = self._segments.log_predictive((float(x) - self._shift) / self._scale)
        return density[::-1] - math.log(self._scale)

    # -- the recursion ----------------------------------------------------------------------

    def update(self, x: float) -> Alarm | None:
        """Take the next value; an :class:`~.protocol.Alarm` when a change is detected.

        Raises ValueError on a value that is not finite (the state is left as it was).
        """
        x = float(x)
        if not math.isfinite(x):
            raise ValueError(f"BOCPD takes finite values, got {x!r}")
        if self._t < self.warmup:
            self._buffer.append(x)
            self._t += 1
            if self._t == self.warmup:
                self._end_warmup()
            return None
        z = (x - self._shift) / self._scale
        # Squared, a value beyond 1e100 standard deviations would overflow to inf and turn
        # the whole posterior into NaN; clipped, it is still infinitely surprising enough.
        self._step(min(max(z, -_CLIP), _CLIP))
        self._t += 1
        return self._check()

    def _end_warmup(self) -> None:
        values = np.asarray(self._buffer)
        mean = float(values.mean())
        # A constant warm-up would make every later value infinitely surprising; a floor
        # relative to the level keeps the units sane.
        sd = max(float(values.std(ddof=1)), 1e-6 * abs(mean), 1e-12)
        k0, a0 = self.kappa0_warmup, self.alpha0_warmup
        self._segments.set_prior(0.0, k0, a0, a0 - 1.0)
        self._shift, self._scale = mean, sd
        self._buffer = []
        # Replay the warm-up so the posterior is the one from index 0 under this prior.
        for t, v in enumerate(values.tolist()):
            self._t = t
            self._step((v - mean) / sd)
        self._t = self.warmup

    def _step(self, z: float) -> None:
        """Bring the posterior from ``x[:t]`` to ``x[:t+1]``, with ``z`` = ``x[t]`` standardised."""
        t, n, seg = self._t, self._n, self._segments
        if n:
            # The new segment's prior is centred before z is seen (z is its first value).
            centre = seg.predictive_mean(int(np.argmax(self._logp[:n]))) if self.recentre else None
            # Growth: each segment goes on (1 - H) and explains z with its own predictive;
            # its statistics take z.
            logp = self._logp[: n + 1]
            logp[:n] += seg.observe(z)
            logp[:n] += self._log_survival
            # Change: a segment starts at t (H) whatever came before, and z comes from the
            # prior; the past's posterior sums to 1, so the joint is H times that density.
            logp[n] = self._log_hazard + seg.start(z, centre)
            logp -= logsumexp(logp)
        else:
            # The first value opens the first segment with certainty.
            seg.start(z)
            self._logp[0] = 0.0
        self._starts[n] = t
        self._n = n = n + 1
        if n > self.max_run_lengths:
            self._prune(t)

    def _prune(self, t: int) -> None:
        """Drop the least probable hypothesis at least ``window`` old.

        A value adds exactly one hypothesis, so one going keeps the bound.
        """
        n = m = self._n
        m -= 1
        # Starts ascend, so the old ones (run length >= window) are a prefix; it is never
        # empty, since at most ``window`` hypotheses are younger and the bound exceeds that.
        old = int(np.searchsorted(self._starts[:n], t - self.window + 1, side="left"))
        j = int(np.argmin(self._logp[:old]))
        dropped = math.exp(float(self._logp[j]))
        for array in (self._starts, self._logp):
            array[j:m] = array[j + 1 : n]  # numpy copies overlapping slices safely
        self._segments.drop(j)
        self._n = m
        logp = self._logp[:m]
        # Renormalise: what is left had probability 1 - dropped (the least probable of at
        # least two old ones, so at most 1/2).
        logp -= math.log1p(-dropped)

    def _check(self) -> Alarm | None:
        t = self._t - 1  # the value just taken
        if t < self._quiet_until:
            return None
        n = self._n
        earliest = max(self._floor, t - self.window + 1)
        first = int(np.searchsorted(self._starts[:n], earliest, side="left"))
        if first == n:
            return None
        young = self._logp[first:n]
        p = float(np.exp(young).sum())  # normalised log probabilities: no overflow
        if p < self.threshold:
            return None
        location = int(self._starts[first + int(np.argmax(young))])
        self._floor = max(location + self.min_spacing, t + 1)
        self._quiet_until = t + self.min_spacing
        return Alarm(t, location, min(p, 1.0))
