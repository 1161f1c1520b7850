"""Risk: forecast the variance of the next H events' returns, and from it VaR and expected
shortfall.

The reference ``s2_t`` is a variance forecast known at t. By default (``reference=
"garch_fit"``) it is a GARCH(1,1) fitted online (:mod:`.variance`): variance-targeting
recursions, the long-run level being the stream's slow EW variance (the features' ``vol``
squared)::

    g_t = (1 - a - b) * vol_t^2 + a * u_t^2 + b * g_(t-1)

one for each ``(a, b)`` of a small grid (and asymmetric ones, in which a fall raises the
variance more than a rise), scored by QLIKE as each next return arrives; the reference is
the geometric mean of the default recursion (a = 0.05, b = 0.93) and the one with the least
QLIKE so far (chosen again every 32 events). ``u_t`` is the return divided by the square
root of its UTC hour's variance factor, and the forecast is multiplied back by the factors
of the hours ahead (``periodicity``; on a daily stream stamped at one hour the factor is
exactly 1).
``reference="garch"`` is the default recursion alone, with ``garch_a`` and ``garch_b``, and
``reference="ewma"`` the features' fast EWMA of squared returns (``fast_var``: RiskMetrics'
estimator with lambda = 2^(-1/features.fast_halflife), 0.933 for the default half-life of 10
events). The references were chosen on the earlier halves of the market benchmark's series
only (docs/benchmarks.md, "Markets"). The label of the example formed at event t is the
realised variance of the next H log returns in units of what that reference expects::

    y = clip(sum(r[t+1..t+H]^2) / (s2_t * H), floor, cap)

Daily series hold exact-zero returns, so a realised variance can be 0; it is floored at
``floor`` (a fraction of the expected variance; the rule counts the floored labels) and capped
at ``cap`` so that one crash does not dominate an adaptation set. The policy outputs ``z``,
the log of its forecast ratio: its variance forecast is ``s2_t * H * exp(z)``; a subscriber
applies the "exp" link and multiplies. So ``z = 0`` is the reference's forecast, which is the
baseline, and the policy learns what the reference misses (a regime's level), from the
features. It adapts with QLIKE, the field's loss for variance forecasts.

VaR and expected shortfall at the task's ``levels`` follow from the forecast as those of a
zero-mean normal (or a Student t with ``dof``), taken at tail probabilities that adaptive
conformal inference keeps at the levels' violation rates (``calibration``; see
:mod:`adaptd.adapters.conformal`); the message says so, and :meth:`RiskTask.tail` computes
them as a subscriber would.

>>> import math
>>> from types import SimpleNamespace
>>> task = RiskTask(horizon=2, clip=10.0, reference="ewma")
>>> rule = task.label_rule()
>>> a = rule.anchor(SimpleNamespace(sq_sum=0.5, fast_var=0.0001))
>>> round(rule.label(a, SimpleNamespace(sq_sum=0.5 + 0.0004)), 6)  # twice the EWMA's 0.0002
2.0
>>> rule.label(a, SimpleNamespace(sq_sum=0.5)), rule.floored  # no move at all: floored
(0.01, 1)
>>> task.losses(np.array([math.log(2.0)]), np.array([2.0])).round(12).tolist()
[0.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from adaptd.adapters.checks import positive, positive_int, tail_levels
from adaptd.adapters.conformal import var_path
from adaptd.adapters.forecasting import normal_var_es, qlike, t_var_es
from adaptd.adapters.types import QLIKE_BOUND, Loss

from .protocol import Head
from .risk_message import reference_definition, tail_definition
from .variance import GarchGrid, Periodicity

__all__ = ["REFERENCES", "EwmaVariance", "RealisedVarianceRule", "RiskTask", "risk_of"]

REFERENCES = ("garch_fit", "garch", "ewma")
"""The reference variances the risk task can adjust."""


class RealisedVarianceRule:
    """The label rule of :class:`RiskTask`: the anchor is ``(sq_sum_t, 1 / (s2_t H))``.

    ``floored`` and ``labelled`` count the labels made and those raised to the floor;
    ``reference`` is ``s2_t`` at the latest event (for reports and clients). ``garch`` is
    ``(a, b)`` of a fixed GARCH reference; ``fit``, of the default recursion of a fitted one,
    becomes its :class:`GarchGrid` (both None: the fast EWMA); ``season`` is the
    :class:`Periodicity` of a GARCH reference, or None.
    """

    __slots__ = (
        "_floor_var",
        "_state",
        "cap",
        "fit",
        "floor",
        "floored",
        "garch",
        "horizon",
        "labelled",
        "reference",
        "season",
    )

    def __init__(
        self,
        horizon: int,
        floor: float,
        cap: float,
        garch: tuple[float, float] | None = None,
        *,
        fit: tuple[float, float] | None = None,
        periodicity: float | None = None,
    ) -> None:
        self.horizon = positive_int("horizon", horizon)
        self.floor = positive("floor", floor)
        self.cap = positive("cap", cap)
        if not floor < 1.0 < cap:
            raise ValueError(f"floor < 1 < cap is needed, got floor={floor!r}, cap={cap!r}")
        for ab in (garch, fit):
            if ab is not None and not (ab[0] > 0 and ab[1] >= 0 and sum(ab) < 1):
                raise ValueError(f"garch (a, b) needs a > 0, b >= 0, a + b < 1, got {ab}")
        if fit is not None and garch is not None:
            raise ValueError("a fitted reference has no fixed (a, b)")
        self.garch = garch
        self.fit = None if fit is None else GarchGrid(fit)
        on = garch is not None or fit is not None
        self.season = Periodicity(periodicity) if on and periodicity is not None else None
        self.floored = 0
        self.labelled = 0
        self.reference = self._state = self._floor_var = math.nan

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        # Rules snapshotted before the GARCH reference keep the EWMA they labelled with, and
        # those before the fitted one their fixed recursion, whose state was the reference.
        self.garch = self.fit = self.season = None
        self.reference = self._floor_var = math.nan
        for name, value in state[1].items():
            setattr(self, name, value)
        if "_state" not in state[1]:
            self._state = self.reference

    def anchor(self, tick: Any) -> tuple[float, float]:
        var = tick.fast_var
        if not var > 0.0:
            raise ValueError(f"fast_var must be positive, got {var!r}")
        fit, garch = self.fit, self.garch
        if fit is not None or garch is not None:
            ret2, vol2 = tick.ret * tick.ret, tick.vol * tick.vol
            season = self.season
            if season is None:
                p = following = ahead = 1.0
            else:
                p = season.observe(tick.ts_ms, ret2 / vol2)
                following, ahead = season.outlook(self.horizon)
            if fit is not None:
                last = self._floor_var
                y = None if last != last else max(ret2, self.floor * last)
                s = fit.update(ret2 / p, tick.ret < 0.0, vol2, y, start=var)
                fit.scale = following
            else:
                a, b = garch  # type: ignore[misc]
                last = self._state
                s = var if last != last else (1.0 - a - b) * vol2 + a * ret2 / p + b * last
                self._state = s
            s *= ahead
            self._floor_var = var
            var = s
        self.reference = var
        return tick.sq_sum, 1.0 / (var * self.horizon)

    def label(self, anchor: tuple[float, float], tick: Any) -> float:
        y = (tick.sq_sum - anchor[0]) * anchor[1]
        self.labelled += 1
        if y < self.floor:
            self.floored += 1
            return self.floor
        return y if y < self.cap else self.cap


def _qlike_of_outputs(output: np.ndarray, y: np.ndarray) -> np.ndarray:
    z = np.clip(np.asarray(output, dtype=np.float64), -QLIKE_BOUND, QLIKE_BOUND)
    return qlike(np.asarray(y, dtype=np.float64), np.exp(z))


class EwmaVariance:
    """The task's reference variance as the forecast (``z = 0``): QLIKE of ``y`` against 1.
    Named after the reference (the fast EWMA, or the variance-targeting GARCH)."""

    name = "EWMA variance"
    """The class default: baselines pickled in snapshots before the GARCH reference have no
    name of their own, and were the EWMA's."""
    constant_output = 0.0

    def __init__(self, name: str = "EWMA variance") -> None:
        self.name = name

    def losses(self, y: np.ndarray) -> np.ndarray:
        return _qlike_of_outputs(np.zeros(len(y)), y)


@dataclass(frozen=True)
class RiskTask:
    """Forecast the variance of the sum of the next ``horizon`` log returns.

    Parameters
    ----------
    horizon
        H (``features.label_horizon``).
    clip
        ``features.label_clip``: labels (variance ratios) are capped at it.
    levels
        Tail probabilities of the VaR and expected shortfall the message defines.
    floor
        Realised variance ratios below it are raised to it.
    dof
        None: VaR and ES are a normal's; else a Student t's with these degrees of freedom
        (> 2), scaled to the forecast variance (fatter tails for the same variance).
    calibration
        The step ``gamma`` of adaptive conformal inference (:mod:`adaptd.adapters.conformal`):
        each VaR is taken at a tail probability that moves down after every violation and
        up after none, so that violations keep to the nominal level on a misspecified tail;
        None: at the levels themselves.
    reference
        "garch_fit": the variance-targeting GARCH(1,1) fitted online over a grid
        (:class:`~.variance.GarchGrid`); "garch": the recursion with ``garch_a`` and
        ``garch_b``; "ewma": the features' fast EWMA.
    periodicity
        The half-life, in visits of an hour, of the hour-of-day variance factors a GARCH
        reference is scaled by (:class:`~.variance.Periodicity`); None: no periodicity.
    """

    horizon: int
    clip: float
    levels: tuple[float, ...] = (0.01, 0.05)
    floor: float = 0.01
    dof: float | None = None
    calibration: float | None = 0.005
    reference: str = "garch_fit"
    garch_a: float = 0.05
    garch_b: float = 0.93
    periodicity: float | None = 20.0

    name: ClassVar[str] = "risk"
    qualified: ClassVar[bool] = True
    loss: ClassVar[Loss] = "qlike"
    head: ClassVar[Head] = Head(out_dim=1, output_scale=0.01, link="exp")
    features: ClassVar[tuple[str, ...] | None] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", tail_levels("levels", self.levels))
        if self.dof is not None and not self.dof > 2.0:
            raise ValueError(f"dof must be above 2 (a finite variance) or None, got {self.dof}")
        if self.calibration is not None and not 0.0 < self.calibration < 1.0:
            raise ValueError(f"calibration must be in (0, 1) or None, got {self.calibration}")
        if self.reference not in REFERENCES:
            raise ValueError(f"reference must be one of {REFERENCES}, got {self.reference!r}")
        if self.periodicity is not None:
            positive("periodicity", self.periodicity)
        self.label_rule()  # checks the horizon, the floor, the cap and the GARCH parameters

    def label_rule(self) -> RealisedVarianceRule:
        ab = (self.garch_a, self.garch_b)
        return RealisedVarianceRule(
            self.horizon,
            self.floor,
            positive("clip", self.clip),
            ab if self.reference == "garch" else None,
            fit=ab if self.reference == "garch_fit" else None,
            periodicity=self.periodicity,
        )

    def losses(self, output: np.ndarray, y: np.ndarray) -> np.ndarray:
        return _qlike_of_outputs(output, y)

    def baseline(self) -> EwmaVariance:
        return EwmaVariance(self._reference_name())

    def tail(self, outcome: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """VaR and expected shortfall, ``(events, levels)``, as the message defines them, from
        each event's forecast ``variance`` of the sum of the next H log returns and that sum,
        ``outcome`` (NaN while unknown; the adaptive levels learn from it H events later)."""
        return var_path(
            outcome,
            variance,
            self.levels,
            dof=self.dof,
            gamma=self.calibration,
            horizon=self.horizon,
        )

    def _reference_name(self) -> str:
        return "EWMA variance" if self.reference == "ewma" else "GARCH variance"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": {
                "horizon": self.horizon,
                "floor": self.floor,
                "cap": self.clip,
                "definition": (
                    "sum of the next H squared log returns / (s2_t * H), floored and capped"
                ),
            },
            "loss": self.loss,
            "output": "log of the forecast variance ratio",
            "link": self.head.link,
            "baseline": self._reference_name(),
            "forecast": {
                "variance": "s2_t * H * exp(output): of the sum of the next H log returns",
                **reference_definition(
                    self.reference, self.garch_a, self.garch_b, self.periodicity
                ),
                "levels": list(self.levels),
                **tail_definition(self.dof, self.calibration),
            },
        }


def risk_of(
    variance: float, levels: tuple[float, ...], dof: float | None = None
) -> dict[str, dict[str, float]]:
    """VaR and expected shortfall at each level of a zero-mean return with ``variance``
    (normal, or Student t with ``dof``), as the message defines them (for reports and
    clients).

    >>> risk_of(0.0004, (0.05,))["0.05"]["var"].__round__(4)
    0.0329
    """
    out = {}
    for level in levels:
        var, es = normal_var_es(variance, level) if dof is None else t_var_es(variance, level, dof)
        out[f"{level:g}"] = {"var": float(var), "es": float(es)}
    return out
