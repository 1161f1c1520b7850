"""The risk task's reference variance, fitted online: GARCH(1,1) recursions with variance
targeting over a small grid of parameters, and an intraday periodicity.

One fixed GARCH(1,1) does not suit every market: a fitted GARCH of daily Bitcoin reacts
fast (a near 0.4), one of GOOGL hardly at all, and hourly EUR/USD is dominated by the hour of
the day (its mean squared return is ten times higher at 15:00 UTC than at 04:00). A fitted
GARCH refitted on a rolling window by numerical optimisation is the field's baseline; this
is the same idea at a constant cost per event:

- :class:`Periodicity` estimates the variance's hour-of-day factors online (the periodic
  component of Andersen & Bollerslev 1997): an EW mean per UTC hour of ``r_t^2 / vol_t^2``,
  normalised by their mean over the hours seen. A daily stream stamped at one hour has one
  bucket, whose factor is exactly 1: the reference is then not seasonal at all.
- :class:`GarchGrid` runs the variance-targeting GARCH(1,1) recursion for every
  ``(a, b, g)`` of :data:`GRID` on the deseasonalised returns (``g`` > 0: the GJR form, in
  which a fall raises the variance more than a rise, as in equity indices), scores each
  one-step forecast by QLIKE when the next return arrives (the sum of QLIKE is the Gaussian
  quasi-likelihood, up to a constant: the candidate with the least sum so far is the online
  quasi-maximum-likelihood fit over the grid), and forecasts the geometric mean of the
  default recursion (``GRID[0]``) and that best one: shrinkage towards the default, because
  the best of a grid chosen on a short history is noisy.

Both are pure and snapshot with the stream.

>>> season = Periodicity()
>>> hour = 3_600_000
>>> for day in range(30):  # a market open two hours a day: the first calm, the second busy
...     _ = season.observe(day * 24 * hour, 0.5)
...     _ = season.observe(day * 24 * hour + hour, 2.0)
>>> round(season.factor(0), 2), round(season.factor(1), 2), round(season.outlook(2)[1], 2)
(0.42, 1.58, 1.0)
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["BLOCK", "GRID", "GarchGrid", "Periodicity"]

BLOCK = 32
"""Events between the grid's catch-ups, at which the best recursion is chosen again."""

GRID: tuple[tuple[float, float, float], ...] = (
    (0.05, 0.93, 0.0),
    *((a, round(p - a, 6), 0.0) for p in (0.8, 0.95, 0.99) for a in (0.03, 0.05, 0.1, 0.2)),
    *(
        (a, round(p - a - g / 2, 6), g)
        for p in (0.95, 0.98)
        for a, g in ((0.0, 0.1), (0.02, 0.1), (0.03, 0.15))
    ),
)
"""``(a, b, g)`` of the candidate recursions

    g_t = (1 - a - b - g / 2) vol_t^2 + (a + g [r_t < 0]) u_t^2 + b g_(t-1)

(persistence ``a + b + g / 2``): the default first (which a :class:`GarchGrid` replaces by
its own), then four reactions ``a`` at three persistences, then six asymmetric (GJR)
recursions at two. Chosen on the market benchmark's development split (the earlier halves
only; docs/benchmarks.md, "Markets")."""

_HOUR_MS = 3_600_000


class Periodicity:
    """Hour-of-day factors of the variance, estimated online.

    ``observe(ts_ms, ratio)`` takes an event's time and ``r_t^2 / vol_t^2`` and returns the
    factor of its hour as it was known before the event; the factor of hour ``h`` is
    ``m_h / mean(m)``, ``m_h`` an EW mean of the ratios seen at that hour (half-life
    ``halflife`` visits of the hour, a plain mean with one prior ratio of 1 while that is
    larger), the mean over the hours seen so far. ``ahead(n)`` is the mean factor of the
    next ``n`` events' hours, each hour followed by the hour that last followed it.
    """

    __slots__ = ("_sum", "alpha", "following", "last", "means", "visits")

    def __init__(self, halflife: float = 20.0) -> None:
        if not halflife > 0:
            raise ValueError(f"halflife must be positive, got {halflife!r}")
        self.alpha = 1.0 - 0.5 ** (1.0 / halflife)
        self.means: dict[int, float] = {}
        self.visits: dict[int, int] = {}
        self.following: dict[int, int] = {}
        self.last: int | None = None
        self._sum = 0.0

    def factor(self, hour: int) -> float:
        """The factor of ``hour`` (1 for an hour not seen yet)."""
        m = self.means.get(hour)
        return 1.0 if m is None else m * len(self.means) / self._sum

    def observe(self, ts_ms: int | None, ratio: float) -> float:
        """Take an event (no time: one bucket for all) and return its hour's factor as known
        before it."""
        hour = -1 if ts_ms is None else (ts_ms // _HOUR_MS) % 24
        if self.last is not None:
            self.following[self.last] = hour
        self.last = hour
        means = self.means
        m = means.get(hour)
        before = 1.0 if m is None else m * len(means) / self._sum
        c = self.visits.get(hour, 0) + 1
        self.visits[hour] = c
        w = 1.0 / (c + 1)
        if w < self.alpha:
            w = self.alpha
        if m is None:
            m = 1.0
        new = m + w * (ratio - m)
        means[hour] = new
        # Summed afresh, not kept by increments: with one hour, its factor is exactly 1.
        self._sum = new if len(means) == 1 else sum(means.values())
        return before

    def outlook(self, steps: int) -> tuple[float, float]:
        """The factor of the next event's hour, and the mean factor of the next ``steps``
        events' hours: one walk for both, as the risk task needs them at every event."""
        means, following = self.means, self.following
        n = len(means)
        if n == 1:  # one hour seen (a daily stream): every factor is exactly 1
            return 1.0, 1.0
        whole = self._sum
        hour, total, first = self.last, 0.0, 1.0
        for i in range(steps):
            hour = following.get(hour, hour)  # type: ignore[arg-type]
            m = means.get(hour)  # type: ignore[arg-type]
            f = 1.0 if m is None else m * n / whole
            if i == 0:
                first = f
            total += f
        return first, total / steps


@functools.cache
def _powers(grid: tuple[tuple[float, float, float], ...]) -> tuple[np.ndarray, np.ndarray]:
    """``b^j`` for j = 0..BLOCK, and ``b^(j-1-i)`` for i < j (else 0), per recursion."""
    b = np.array([abg[1] for abg in grid])[:, None, None]
    j = np.arange(BLOCK + 1)[:, None]
    i = np.arange(BLOCK)[None, :]
    lags = np.where(i < j, b ** np.maximum(j - 1 - i, 0), 0.0)
    return b[:, :, 0] ** j[:, 0], lags


class GarchGrid:
    """The variance-targeting GARCH(1,1) recursions of :data:`GRID`, with ``(a, b)`` of
    ``default`` first (symmetric), scored by QLIKE.

    ``update(u2, down, vol2, y)`` takes the event's squared deseasonalised return, whether
    the return was negative, the target ``vol_t^2`` and ``y``, the squared return the
    previous forecasts are scored on (None at the first event), and returns the per-event
    variance forecast ``sqrt(s_default * s_best)``; ``scale`` is the factor the previous
    forecasts were made with (the periodicity's), so that each is scored as it was forecast.

    Only the two recursions in the forecast run every event; the whole grid catches up, and
    the best is chosen again, every :data:`BLOCK` events, in numpy: the same states at under
    half the cost (4 µs an event here, against 10 µs for every recursion every event).

    >>> grid = GarchGrid()
    >>> grid.update(1e-4, False, 1e-4, None, start=1e-4)
    0.0001
    >>> for _ in range(320):  # returns twice their target's size every event
    ...     _ = grid.update(4e-4, False, 1e-4, 4e-4)
    >>> grid.best != 0, grid.forecast > 2e-4  # a more reactive recursion now fits best
    (True, True)
    """

    __slots__ = (
        "_coef",
        "_pending",
        "best",
        "forecast",
        "grid",
        "live",
        "losses",
        "scale",
        "states",
    )

    def __init__(self, default: tuple[float, float] = GRID[0][:2]) -> None:
        first = (*default, 0.0)
        self.grid = (first, *(abg for abg in GRID[1:] if abg != first))
        self._coef = [(1.0 - a - b - 0.5 * g, a, a + g, b) for a, b, g in self.grid]
        """Per recursion: the target's weight, the return's after a rise and after a fall,
        the state's."""
        self.states: list[float] = []
        """Every recursion's state as of the last block's end."""
        self.live = [math.nan, math.nan]
        """The default's and the best one's state now."""
        self.losses = [0.0] * len(self.grid)
        self.best = 0
        self.scale = 1.0
        self.forecast = math.nan
        self._pending: list[tuple[float, float, float, float, float]] = []

    def update(
        self, u2: float, down: bool, vol2: float, y: float | None, start: float = math.nan
    ) -> float:
        live = self.live
        if not self.states:
            self.states = [start] * len(self.grid)
            live[0] = live[1] = start
        else:
            pending = self._pending
            pending.append((u2, float(down), vol2, math.nan if y is None else y, self.scale))
            c, a, a_down, b = self._coef[0]
            live[0] = c * vol2 + (a_down if down else a) * u2 + b * live[0]
            c, a, a_down, b = self._coef[self.best]
            live[1] = c * vol2 + (a_down if down else a) * u2 + b * live[1]
            if len(pending) == BLOCK:
                self._catch_up()
        self.forecast = math.sqrt(live[0] * live[1])
        return self.forecast

    def _catch_up(self) -> None:
        u2, down, vol2, y, scale = np.array(self._pending).T
        self._pending = []
        params = np.array(self.grid)
        a, b, g = params[:, :1], params[:, 1:2], params[:, 2:]
        drive = (1.0 - a - b - 0.5 * g) * vol2 + (a + g * down) * u2
        # s_j = b^j s_0 + sum_(i<j) b^(j-1-i) drive_i for j = 0..BLOCK, all at once: a block
        # is short, so the powers of b stay far from underflow.
        powers, lags = _powers(self.grid)
        states = powers * np.array(self.states)[:, None] + np.einsum("kji,ki->kj", lags, drive)
        before, s = states[:, :-1], states[:, -1]  # each recursion's state before each event
        q = y / (before * scale)
        scored = ~np.isnan(y)
        losses = np.array(self.losses) + (q - np.log(q) - 1.0)[:, scored].sum(axis=1)
        self.losses = losses.tolist()
        self.best = int(np.argmin(losses))  # the first on ties: the default
        self.states = s.tolist()
        self.live[:] = self.states[0], self.states[self.best]  # in place: update holds it
