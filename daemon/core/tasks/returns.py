"""The scaled forward return: adaptd's first policy task.

The label of the example formed at event t is the forward log return over H events in units
of the volatility known at t, clipped::

    y = clip((log_price[t+H] - log_price[t]) / (vol_t * sqrt(H)), +/- clip)

The policy regresses it with the squared error; the baseline is the zero forecast (no skill:
a scaled return is about as likely up as down). This task predates policy tasks: its model
ids are the stream ids and its Redis keys carry no task name (``qualified = False``), so a
deployment from before keeps its policies, versions, replay and checkpoint.

>>> import math
>>> from types import SimpleNamespace
>>> task = ReturnTask(horizon=2, clip=10.0)
>>> rule = task.label_rule()
>>> a = rule.anchor(SimpleNamespace(log_price=math.log(100.0), vol=0.01))
>>> round(rule.label(a, SimpleNamespace(log_price=math.log(102.0), vol=0.02)), 4)
1.4003
>>> task.losses(np.array([0.5, 0.0]), np.array([1.0, -1.0])).tolist()
[0.25, 1.0]
>>> task.baseline().losses(np.array([2.0, -1.0])).tolist()
[4.0, 1.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from adaptd.adapters.checks import positive, positive_int
from adaptd.adapters.protocol import Loss

from .protocol import Head

__all__ = ["ForwardReturnRule", "ReturnTask", "ZeroForecast"]


class ForwardReturnRule:
    """The label rule of :class:`ReturnTask`: the anchor is ``(log_price, 1 / (vol*sqrt(H)))``.

    Parameters
    ----------
    horizon
        H, the events between an example and its label.
    clip
        Labels are clipped to +/- this value.
    """

    __slots__ = ("_inv_sqrt_h", "clip", "horizon")

    def __init__(self, horizon: int, clip: float) -> None:
        self.horizon = positive_int("horizon", horizon)
        self.clip = positive("clip", clip)
        self._inv_sqrt_h = 1.0 / math.sqrt(horizon)

    def anchor(self, tick: Any) -> tuple[float, float]:
        vol = tick.vol
        if not vol > 0.0:
            raise ValueError(f"vol must be positive, got {vol!r}")
        return tick.log_price, self._inv_sqrt_h / vol

    def label(self, anchor: tuple[float, float], tick: Any) -> float:
        y = (tick.log_price - anchor[0]) * anchor[1]
        c = self.clip
        if not -c < y < c:
            y = c if y > 0.0 else -c
        return y


class ZeroForecast:
    """Predicts 0 for every scaled return: its squared error is the label's square."""

    name = "zero forecast"
    constant_output = 0.0

    def losses(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=np.float64) ** 2


@dataclass(frozen=True)
class ReturnTask:
    """Regress the volatility-scaled forward return over ``horizon`` events.

    Parameters
    ----------
    horizon
        H (``features.label_horizon``).
    clip
        Labels are clipped to +/- this value (``features.label_clip``).
    """

    horizon: int
    clip: float

    name: ClassVar[str] = "return"
    qualified: ClassVar[bool] = False
    loss: ClassVar[Loss] = "mse"
    head: ClassVar[Head] = Head(out_dim=1, output_scale=0.1, link="identity")
    features: ClassVar[tuple[str, ...] | None] = None

    def __post_init__(self) -> None:
        self.label_rule()  # checks the horizon and the clip

    def label_rule(self) -> ForwardReturnRule:
        return ForwardReturnRule(self.horizon, self.clip)

    def losses(self, output: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (np.asarray(output, dtype=np.float64) - y) ** 2

    def baseline(self) -> ZeroForecast:
        return ZeroForecast()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": {
                "horizon": self.horizon,
                "clip": self.clip,
                "definition": "forward log return over H events / (vol_t * sqrt(H)), clipped",
            },
            "loss": self.loss,
            "output": "scaled forward return",
            "link": self.head.link,
            "baseline": ZeroForecast.name,
        }
