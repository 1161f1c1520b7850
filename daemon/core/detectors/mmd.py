"""A streaming kernel two-sample test: change detection over a stream of feature vectors.

After each vector the detector asks whether the ``recent`` latest vectors (default 20) come
from the same distribution as the ``window`` vectors before them (the reference, default
50), with the maximum mean discrepancy (MMD) of a Gaussian kernel (Gretton, Borgwardt,
Rasch, Schölkopf & Smola 2012, "A kernel two-sample test", JMLR 13). Unlike a set of
univariate detectors, one per coordinate, it can see a change in how the coordinates move
together (a correlation that flips sign while each coordinate keeps its distribution), if
the change is large enough for its windows (measured below), as well as changes in any one
coordinate. It is a :class:`~.protocol.VectorDetector`.

**The statistic.** With reference ``x_1..x_n`` and recent ``y_1..y_m``, the unbiased
estimate (Gretton et al., eq. 3; :func:`mmd2_unbiased`)

    MMD2 = sum_{i != j} k(x_i, x_j) / (n (n-1)) + sum_{i != j} k(y_i, y_j) / (m (m-1))
           - 2 sum_{i, j} k(x_i, y_j) / (n m),      k(a, b) = exp(-|a - b|^2 / (2 s^2)),

has mean 0 when nothing changed. The bandwidth ``s`` is the median heuristic on the
reference (:func:`median_bandwidth`): the median distance between two of its vectors
(Gretton et al., section 8; Garreau, Jitkrittum & Kanagawa 2017, "Large sample analysis of
the median heuristic", arXiv:1707.07269). The detector thresholds the *studentised*
statistic ``MMD2 / sqrt(V)``, where ``V`` is the estimate's variance when nothing changed,

    V = 2 E[kc(x, x')^2] (1/(n (n-1)) + 1/(m (m-1)) + 2/(n m)),

``kc`` the kernel centred at the data's distribution, under which the three sums are
uncorrelated; ``E[kc^2]`` is the mean square of the reference's doubly-centred kernel
matrix off its diagonal (:func:`window_statistic`). Studentising lets one threshold serve
far more data than the raw MMD2 can: simulated 99.9 % quantiles of the raw statistic are
2.6 times higher for equicorrelated (0.8) Gaussian coordinates than for independent ones
(d = 8), and 3.2 times higher in one dimension than in eight; of the studentised statistic
1.4 and 1.2 times (40,000 windows each). (The B-statistic of Li, Xie, Dai & Song 2019,
"Scan B-statistic for kernel change-point detection", Sequential Analysis 38, is
normalised by its null variance for the same reason.)

**One split, and the location.** The test runs at one split, the last ``recent`` vectors
against the ``window`` before them, so a vector costs one kernel matrix and the threshold
depends on the dimension alone; a scan over several splits would multiply both the cost
and what the calibration has to cover, for little: a shift that the split sees late is
still seen. The split is scanned only at an alarm, to place it: ``location`` is the first
index of the new regime under the single change that most lowers the kernel least-squares
cost of the whole window, ``s (N - s) / N`` times the V-statistic MMD2 between its first
``s`` vectors and the rest (Arlot, Celisse & Harchaoui 2019, "A kernel multiple
change-point algorithm via model selection", JMLR 20; ``N = window + recent``), all splits
at once from the kernel matrix's 2-D prefix sums. ``score`` is the studentised statistic
at the alarm.

**Standardisation (self-starting).** Each coordinate is scaled by its standard deviation
over the vectors since the (re)start that have left the recent window (Welford's
algorithm), so the kernel weighs the coordinates alike and the detector is free of each
coordinate's scale and offset; the recent vectors are left out so that a change does not
set its own yardstick. (Centring does nothing to a Gaussian kernel; it keeps the squared
distances' digits.) A coordinate constant so far is scaled by ``1e-6`` of its level
(``1e-12`` at zero), so that when it moves the move is very large. A vector with a value
that is not finite is counted (the index advances) and otherwise ignored.

**Threshold.** The user states ``false_alarms_per_10k``, the expected false alarms per
10,000 monitored in-control events (an in-control run length of ``10_000 /
false_alarms_per_10k`` from the first event that can alarm). A permutation test per event
would cost hundreds of kernel matrices; the threshold is instead set once, by simulation
(:mod:`.mmd_calibration`)
(:func:`.calibrate`): 4,000,000 N(0, I_d) vectors through the vectorised statistic
(:func:`.null_statistics`), the detector's alarm rule replayed on the series (first passage
over the threshold, then ``N - 1`` blind events while the restart refills the window), and
the threshold bisected until the rate matches. :data:`THRESHOLDS` holds the results for
the default windows at d = 1..8, 10, 12, 16, 24, 32 and rates from 0.25 to 100 per 10,000
(a rate's relative error is about 1/sqrt(alarms): 10 % at 0.25, 5 % at 1, under 2 % from
10 on, which is 0.06 or less in the threshold);
:func:`threshold_for` interpolates in log-dimension and log-rate and gives a dimension
above 32 the threshold of 32, which errs towards fewer false alarms (the threshold falls
with the dimension: 8.22 at d = 1, 5.58 at d = 8, 4.56 at d = 32, for one per 10,000).
Other windows need ``threshold=`` from :func:`.calibrate`. Measured on the detector itself
(self-starting scale, restarts and all) on N(0, I) streams: at a target of 1 per 10,000,
0.94 for d = 8 (140 alarms in 1,500,000 events) and 1.05 for d = 2 (156); at 10, 10.4 for
d = 8 (290 in 300,000), 9.0 for d = 2 (255) and 11.5 for d = 32 (213 in 200,000), all
within the Monte Carlo error.

The calibration is exact for independent Gaussian coordinates only, because the kernel
statistic's null distribution depends on the data's. At a target of 10 per 10,000
(300,000 events each), Student-t coordinates (4 degrees of freedom, d = 8) gave 10.5,
log-normal ones 15.8, equicorrelated Gaussian ones 24.6 (d = 8, correlation 0.5) and 13.4
(d = 2, 0.8): correlated features run at up to a few times the stated rate (whitening them
by a covariance estimated in control would address that; it is not done here). Above all
the test assumes vectors independent over time: serially correlated features look
different from one window to the next with no change at all. AR(1) coordinates (d = 8,
target 10) gave 41 false alarms per 10,000 at a lag-one autocorrelation of 0.1, 117 at 0.2
and 1,233 at 0.5. Rolling means and volatilities need differencing, or a detector of their
own, before this one.

**After an alarm** the detector restarts from the alarm, as :class:`~.cusum.Cusum` does:
the window and the scale estimates start again from the next vector (vectors from before
an alarm, false or not, would make the next run depend on this one), so nothing is raised
during the first ``window + recent - 1`` vectors after the start and after every alarm.

**Cost and memory.** One ``N x N`` kernel matrix per vector (``N = 70``): about 60 µs per
vector for d = 8 (53-70 µs from d = 2 to 32; 44 µs of it the kernel test, the rest the
window and the scaling), measured one vector at a time on a 2-core machine where the CUSUM
takes 0.6 µs per value. An alarm adds about 45 µs for the location. Memory is the ``N x
d`` window, its ``N`` indices and three vectors of ``d``, whatever the stream's length.

**The defaults, measured** (100 streams of 600 N(0, I) vectors each, a change at index
300; found = the first alarm after it within 60 events; then the median delay and the share
located within 5). A shift of 1.5 sd in one coordinate: d = 2 92 %, 15 events, 89 %; d = 4
94 %, 16, 89 %; d = 8 87 %, 17, 78 %. Of 1 sd, d = 4: 44 %, 19, 38 %. Every sd doubled,
d = 8: 100 %, 12, 99 %. A correlation of two coordinates going from +0.8 to -0.8 (each
stays N(0, 1)): 5 % in d = 2, the statistic being too noisy at 20 recent vectors; with
``window=100, recent=50`` (``threshold`` 6.61 from :func:`.calibrate` for d = 2 and one per
10,000) 95 % within 140 events, median delay 44, 88 % located within 5. With two more
independent coordinates (d = 4) even those windows find 6 %: the median-heuristic kernel
spreads its attention over every coordinate, so a change in how two of many move together
is the hardest case for it.

Parameters: ``window`` (reference vectors, at least 2), ``recent`` (latest vectors, at
least 2), ``false_alarms_per_10k`` (target rate), ``dim`` (the vectors' dimension; None:
that of the first vector), ``threshold`` (on the studentised statistic; None: from the
table).

A shift of 1.5 standard deviations in one coordinate of four, at index 300:

>>> rng = np.random.default_rng(7)
>>> x = rng.normal(size=(600, 4)) * [1.0, 10.0, 0.1, 3.0]
>>> x[300:, 1] += 1.5 * 10.0
>>> detector = KernelMMD()
>>> alarms = [a for a in map(detector.update, x) if a is not None]
>>> [(a.index, a.location) for a in alarms]
[(314, 297)]
>>> round(detector.threshold, 3) == THRESHOLDS[4][RATES.index(1.0)]
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .mmd_statistic import (
    WindowStatistic,
    _check_int,
    _kernel_test,
    _location,
    _pairs,
    median_bandwidth,
    mmd2_unbiased,
    window_statistic,
)
from .protocol import Alarm

__all__ = [
    "RATES",
    "RECENT",
    "THRESHOLDS",
    "WINDOW",
    "KernelMMD",
    "WindowStatistic",
    "median_bandwidth",
    "mmd2_unbiased",
    "threshold_for",
    "window_statistic",
]

WINDOW = 50
"""The default reference window: vectors before the recent ones."""
RECENT = 20
"""The default recent window: the latest vectors."""


RATES = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
"""The false-alarm rates (per 10,000 monitored events) of :data:`THRESHOLDS`."""
THRESHOLDS = {
    1: (10.091, 9.178, 8.222, 7.291, 6.120, 5.194, 4.265, 3.098, 2.256),
    2: (8.667, 8.022, 7.203, 6.480, 5.515, 4.756, 3.987, 2.969, 2.229),
    3: (7.879, 7.214, 6.581, 5.991, 5.129, 4.492, 3.808, 2.901, 2.210),
    4: (7.401, 6.857, 6.275, 5.684, 4.915, 4.322, 3.702, 2.840, 2.197),
    5: (7.139, 6.569, 6.030, 5.520, 4.760, 4.211, 3.613, 2.798, 2.180),
    6: (6.804, 6.286, 5.830, 5.336, 4.648, 4.105, 3.542, 2.763, 2.169),
    7: (6.758, 6.232, 5.697, 5.210, 4.543, 4.024, 3.475, 2.719, 2.138),
    8: (6.451, 6.011, 5.577, 5.080, 4.420, 3.928, 3.398, 2.692, 2.134),
    10: (6.114, 5.744, 5.356, 4.904, 4.305, 3.830, 3.339, 2.656, 2.111),
    12: (5.947, 5.551, 5.198, 4.762, 4.217, 3.745, 3.282, 2.626, 2.094),
    16: (5.754, 5.358, 4.966, 4.592, 4.077, 3.644, 3.202, 2.582, 2.078),
    24: (5.430, 5.091, 4.717, 4.377, 3.907, 3.509, 3.096, 2.518, 2.046),
    32: (5.181, 4.873, 4.558, 4.227, 3.769, 3.408, 3.024, 2.471, 2.015),
}
"""``calibrate(d, RATES, events=4_000_000, seed=1000 + d)`` for the default windows: the
threshold on the statistic, by dimension, at each of :data:`RATES`."""


def threshold_for(dim: int, false_alarms_per_10k: float) -> float:
    """The threshold of the default windows for ``dim`` coordinates and a rate in
    ``[RATES[0], RATES[-1]]``, interpolated in :data:`THRESHOLDS` linearly in the logarithms
    of the dimension and of the rate; dimensions beyond the table's take its largest (the
    thresholds fall with the dimension, so that errs towards fewer false alarms)."""
    _check_int("dim", dim, 1)
    rate = float(false_alarms_per_10k)
    if not RATES[0] <= rate <= RATES[-1]:
        raise ValueError(
            f"false_alarms_per_10k must be in [{RATES[0]}, {RATES[-1]}] (the table's range; "
            f"outside it pass threshold= from calibrate()), got {false_alarms_per_10k!r}"
        )
    dims = sorted(THRESHOLDS)
    log_rates = np.log(RATES)

    def at(d: int) -> float:
        return float(np.interp(math.log(rate), log_rates, THRESHOLDS[d]))

    if dim >= dims[-1]:
        return at(dims[-1])
    j = int(np.searchsorted(dims, dim))
    if dims[j] == dim:
        return at(dim)
    lo, hi = dims[j - 1], dims[j]
    w = (math.log(dim) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return (1.0 - w) * at(lo) + w * at(hi)


# -- the detector --------------------------------------------------------------------------


class KernelMMD:
    """Kernel two-sample test between a reference window and the latest vectors, restarted
    after each alarm; the parameters are described in the module docstring.

    Attributes: ``window``, ``recent`` and ``false_alarms_per_10k`` as given (the rate is
    only a label when ``threshold`` is given); ``dim``, the vectors' dimension, and
    ``threshold``, on the studentised statistic, are None until the first vector when
    ``dim`` was not given.
    """

    __slots__ = (
        "_buffer",
        "_count",
        "_given",
        "_index",
        "_indices",
        "_m2",
        "_mean",
        "_n",
        "_pairs",
        "dim",
        "false_alarms_per_10k",
        "recent",
        "threshold",
        "window",
    )

    name = "mmd"

    def __init__(
        self,
        window: int = WINDOW,
        recent: int = RECENT,
        false_alarms_per_10k: float = 1.0,
        dim: int | None = None,
        threshold: float | None = None,
    ) -> None:
        self.window = _check_int("window", window, 2)
        self.recent = _check_int("recent", recent, 2)
        if dim is not None:
            _check_int("dim", dim, 1)
        rate = float(false_alarms_per_10k)
        if threshold is None:
            if (self.window, self.recent) != (WINDOW, RECENT):
                raise ValueError(
                    f"the threshold table is for window={WINDOW}, recent={RECENT}; for "
                    f"window={self.window}, recent={self.recent} pass threshold="
                    f"calibrate(dim, [{rate}], window={self.window}, recent={self.recent})[0]"
                )
            threshold_for(1, rate)  # checks the rate now rather than at the first vector
        elif not (math.isfinite(threshold) and threshold > 0.0):
            raise ValueError(f"threshold must be a positive number, got {threshold!r}")
        self.false_alarms_per_10k = rate
        self._given = (dim, None if threshold is None else float(threshold))
        self._pairs = _pairs(self.window, self.window + self.recent)
        self.reset()

    def reset(self) -> None:
        """Forget everything seen (the next update is index 0 again), including a dimension
        learnt from the first vector."""
        self._index = 0
        self.dim, self.threshold = self._given
        if self.dim is not None:
            self._set_dim(self.dim)

    def _set_dim(self, dim: int) -> None:
        self.dim = dim
        if self._given[1] is None:
            self.threshold = threshold_for(dim, self.false_alarms_per_10k)
        self._restart()

    def _restart(self) -> None:
        d = self.dim or 0
        self._buffer = np.zeros((self.window + self.recent, d))  # oldest first
        self._indices = np.zeros(self.window + self.recent, dtype=np.int64)  # their indices
        self._count = 0  # vectors in the buffer
        self._n = 0  # Welford's count, mean and sums of squared deviations, per coordinate,
        self._mean = np.zeros(d)  # over the values since the restart that have left the
        self._m2 = np.zeros(d)  # recent window

    @property
    def index(self) -> int:
        """How many vectors the detector has seen (the index the next one will get)."""
        return self._index

    def update(self, x: Sequence[float] | np.ndarray) -> Alarm | None:
        """Take the next vector; an :class:`~.protocol.Alarm` when a change is detected.

        Raises ValueError on a vector of another dimension (the state is left as it was).
        """
        v = np.array(x, dtype=float).reshape(-1)
        if self.dim is None:
            self._set_dim(v.size)
        elif v.size != self.dim:
            raise ValueError(f"expected a vector of {self.dim} values, got {v.size}")
        i = self._index
        self._index = i + 1
        if not np.isfinite(v).all():
            return None
        n, m = self.window, self.recent
        size = n + m
        buf, where = self._buffer, self._indices
        count = self._count
        if count < size:
            buf[count] = v
            where[count] = i
            self._count = count = count + 1
        else:
            buf[:-1] = buf[1:]
            buf[-1] = v
            where[:-1] = where[1:]
            where[-1] = i
        if count > m:  # the vector that has just left the recent window joins the estimates
            self._n += 1
            w = buf[count - m - 1]
            delta = w - self._mean
            self._mean += delta / self._n
            self._m2 += delta * (w - self._mean)
        if count < size:
            return None
        sd = np.sqrt(self._m2 / (self._n - 1))
        # A coordinate constant so far would divide by zero; a floor relative to its level
        # makes any later movement of it very large instead.
        np.maximum(sd, np.maximum(1e-6 * np.abs(self._mean), 1e-12), out=sd)
        kernel, test = _kernel_test((buf - self._mean) / sd, n, self._pairs)
        if not test.statistic > self.threshold:
            return None
        # By the buffer's own indices: a skipped vector inside the window is not in it.
        location = int(where[_location(kernel)])
        self._restart()
        return Alarm(i, location, test.statistic)

    def __repr__(self) -> str:
        dim, threshold = self._given
        return (
            f"KernelMMD(window={self.window!r}, recent={self.recent!r}, "
            f"false_alarms_per_10k={self.false_alarms_per_10k!r}, dim={dim!r}, "
            f"threshold={threshold!r})"
        )
