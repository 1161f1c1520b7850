"""Online features of one stream: O(1) work per event, dimensionless, clipped.

Every feature at event t uses only events up to t. Returns are log returns; their scale
``vol`` is the slow exponentially weighted (EW) root mean square of returns, so features
and labels are comparable across assets whatever their price level or volatility.

With ``s`` the ``vol`` before this event, each feature clipped to +/- ``label_clip``:

- ``ret_z``: this log return / s.
- ``mean_fast_z``, ``mean_slow_z``: EW mean of returns / (s * sqrt(sum of squared EW
  weights)), i.e. in units of the mean's own standard deviation under i.i.d. returns.
- ``vol_ratio``: log(fast EW volatility / slow EW volatility).
- ``mom_{h}_z``: log(p_t / p_{t-h}) / (s * sqrt(h)), from a buffer of recent log prices.
- ``spread_z``: relative spread (ask - bid) / mid as a z-score against its own slow EW mean
  and variance before this event; 0.0 without both quotes.
- ``volume_z``: the same for log1p(volume); 0.0 without a volume.

Then the calendar features chosen in ``calendar`` (:mod:`.calendar`), from the event time.

>>> import random
>>> from adaptd.daemon.config.settings import FeatureSettings
>>> settings = FeatureSettings(momentum_horizons=(5, 20), warmup_events=20)
>>> feature_names(settings)
('ret_z', 'mean_fast_z', 'mean_slow_z', 'vol_ratio', 'mom_5_z', 'mom_20_z', 'spread_z', 'volume_z')
>>> rng = random.Random(7)
>>> extractor, price = FeatureExtractor(settings), 100.0
>>> for _ in range(20):
...     price *= 1.0 + rng.gauss(0.0, 0.01)
...     assert extractor.update(price) is None  # warming up
>>> x = extractor.update(price * 1.05, bid=price * 1.0499, ask=price * 1.0501, volume=3.0)
>>> len(x), extractor.count, round(x[0], 1)  # a 5 % jump on ~1 % volatility
(8, 21, 5.5)
"""

from __future__ import annotations

import math
from typing import Any

from .calendar import Calendar
from .feature_spec import (
    VOL_FLOOR,
    FeatureParams,
    alpha_of,
    feature_names,
    feature_spec,
    horizons_of,
    names_of,
)

__all__ = [
    "VOL_FLOOR",
    "FeatureExtractor",
    "FeatureParams",
    "alpha_of",
    "feature_names",
    "feature_spec",
]

_VAR_FLOOR = VOL_FLOOR * VOL_FLOOR
# z-scores of spread and volume divide by max(std, _REL_FLOOR * |mean| + _ABS_FLOOR): a
# constant spread (one tick) must not turn the next tick change into an infinite z.
_REL_FLOOR = 1e-3
_ABS_FLOOR = 1e-12
_log, _log1p, _sqrt = math.log, math.log1p, math.sqrt  # module globals: cheaper per event


class FeatureExtractor:
    """Features of one stream, updated event by event.

    Scaling uses ``vol`` from *before* the event's return is included, so a crash shows as
    a large ``ret_z`` instead of being partly absorbed by its own variance contribution.
    EW statistics are seeded from the first observations: until ``1/n`` drops below the EW
    weight they are plain running means, so the early estimates are unbiased.

    After each :meth:`update` (treat these as read-only): ``count`` events seen,
    ``log_price`` of this event, ``ret`` its log return (0.0 on the first), ``vol`` the slow
    EW volatility including this return (> 0), ``scale`` the volatility that scaled this
    event's features (``vol`` before the update), ``sq_sum`` the running sum of squared log
    returns (a realised variance between two events is the difference of their sums),
    ``ts_ms`` the event's time (None if it had none).

    Parameters
    ----------
    settings
        Horizons, half-lives, the clip and the warm-up length.
    """

    __slots__ = (
        "_a_fast",
        "_a_slow",
        "_calendar",
        "_inv_sqrt_h",
        "_keep",
        "_mean_fast",
        "_mean_slow",
        "_prices",
        "_spread",
        "_var_fast",
        "_var_slow",
        "_volume",
        "_w2_fast",
        "_w2_slow",
        "clip",
        "count",
        "fast_halflife",
        "horizons",
        "log_price",
        "ret",
        "scale",
        "slow_halflife",
        "sq_sum",
        "ts_ms",
        "vol",
        "warmup_events",
    )

    def __init__(self, settings: FeatureParams) -> None:
        self.horizons = horizons_of(settings)
        self.fast_halflife = float(settings.fast_halflife)
        self.slow_halflife = float(settings.slow_halflife)
        self.clip = float(settings.label_clip)
        self.warmup_events = int(settings.warmup_events)
        self._a_fast = alpha_of(self.fast_halflife)
        self._a_slow = alpha_of(self.slow_halflife)
        self._inv_sqrt_h = tuple((h, 1.0 / math.sqrt(h)) for h in self.horizons)
        self._keep = max(self.horizons) + 1
        self._calendar = Calendar(settings.calendar) if settings.calendar else None
        self._reset()

    def _reset(self) -> None:
        self.count = 0
        self.log_price = 0.0
        self.ret = 0.0
        self.sq_sum = 0.0
        self.ts_ms: int | None = None
        self.vol = VOL_FLOOR
        self.scale = VOL_FLOOR
        self._mean_fast = self._mean_slow = 0.0
        self._var_fast = self._var_slow = 0.0
        # Sum of squared EW weights: the variance of an EW mean of unit iid returns.
        self._w2_fast = self._w2_slow = 1.0
        self._prices: list[float] = []
        self._spread = _EwZ(self._a_slow)
        self._volume = _EwZ(self._a_slow)

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the vectors this extractor makes: those of the settings it was made
        with, which a restored extractor keeps."""
        return names_of(self.horizons, () if self._calendar is None else self._calendar.names)

    @property
    def fast_var(self) -> float:
        """The fast EW mean of squared log returns per event, including this one (RiskMetrics'
        variance with lambda = 2^(-1/fast_halflife); floored like ``vol``)."""
        v = self._var_fast
        return v if v > _VAR_FLOOR else _VAR_FLOOR

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        # Extractors pickled before ``sq_sum`` existed start it at 0: only differences of
        # it are ever used, and from then on they are exact.
        self.sq_sum = 0.0
        self._calendar = None  # and before calendar features, without them
        self.ts_ms = None  # and before event times were kept, without one
        for name, value in state[1].items():
            setattr(self, name, value)

    def update(
        self,
        price: float,
        bid: float | None = None,
        ask: float | None = None,
        volume: float | None = None,
        ts_ms: int | None = None,
    ) -> tuple[float, ...] | None:
        """Take one event (a valid price > 0; quotes with 0 < bid <= ask; volume >= 0; its
        time, which calendar features need) and return its feature vector, or None during the
        first ``warmup_events`` events."""
        lp = _log(price)
        n = self.count + 1
        self.count = n
        self.ts_ms = ts_ms
        ret = lp - self.log_price if n > 1 else 0.0
        self.log_price = lp
        self.ret = ret
        prices = self._prices
        prices.append(lp)
        if len(prices) >= 2 * self._keep:
            del prices[: self._keep]

        scale = self.vol
        self.scale = scale
        if n > 1:
            # Bias-safe EW: a plain mean over the first returns, until 1/m < alpha.
            m = n - 1
            af = self._a_fast if m * self._a_fast >= 1.0 else 1.0 / m
            a_s = self._a_slow if m * self._a_slow >= 1.0 else 1.0 / m
            r2 = ret * ret
            self.sq_sum += r2
            self._mean_fast += af * (ret - self._mean_fast)
            self._mean_slow += a_s * (ret - self._mean_slow)
            self._var_fast += af * (r2 - self._var_fast)
            var_slow = self._var_slow + a_s * (r2 - self._var_slow)
            self._var_slow = var_slow
            self._w2_fast = (1.0 - af) * (1.0 - af) * self._w2_fast + af * af
            self._w2_slow = (1.0 - a_s) * (1.0 - a_s) * self._w2_slow + a_s * a_s
            self.vol = _sqrt(var_slow) if var_slow > _VAR_FLOOR else VOL_FLOOR

        spread_z = volume_z = 0.0
        if bid is not None and ask is not None:
            spread_z = self._spread.update(2.0 * (ask - bid) / (ask + bid))
        if volume is not None:
            volume_z = self._volume.update(_log1p(volume))
        if n <= self.warmup_events:
            return None

        inv = 1.0 / scale
        var_fast = self._var_fast if self._var_fast > _VAR_FLOOR else _VAR_FLOOR
        var_slow = self._var_slow if self._var_slow > _VAR_FLOOR else _VAR_FLOOR
        raw = [
            ret * inv,
            self._mean_fast * inv / _sqrt(self._w2_fast),
            self._mean_slow * inv / _sqrt(self._w2_slow),
            0.5 * _log(var_fast / var_slow),
        ]
        for h, inv_sqrt_h in self._inv_sqrt_h:
            raw.append((lp - prices[-1 - h]) * inv * inv_sqrt_h)
        raw.append(spread_z)
        raw.append(volume_z)
        c = self.clip
        x = tuple([v if -c < v < c else (c if v > 0.0 else -c) for v in raw])
        calendar = self._calendar
        if calendar is None:
            return x
        if ts_ms is None:
            raise ValueError("calendar features need the event time ts_ms")
        return x + calendar.at(ts_ms)  # bounded already: a clip below 1 would bend them


class _EwZ:
    """z-score of each value against the EW mean and variance of the values before it."""

    __slots__ = ("alpha", "mean", "n", "var")

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self.n = 0
        self.mean = 0.0
        self.var = 0.0

    def update(self, x: float) -> float:
        n = self.n + 1
        self.n = n
        mean = self.mean
        d = x - mean
        if n > 1:
            floor = _REL_FLOOR * abs(mean) + _ABS_FLOOR
            var = self.var
            z = d / _sqrt(var) if var > floor * floor else d / floor
        else:
            z = 0.0
        a = self.alpha if n * self.alpha >= 1.0 else 1.0 / n
        self.mean = mean + a * d
        # EW (West) variance; with a = 1/n it is exactly the population variance so far.
        self.var = (1.0 - a) * (self.var + a * d * d)
        return z
