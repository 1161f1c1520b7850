"""A second, small policy task that lives outside adaptd: will the price be higher in H events?

It differs from the return task in everything a task decides (the features it reads, its
label, a classification loss and a two-logit head with a softmax link, and a stateful
baseline), so the tests that run it through the conformance suite and the real daemon show
that a new task is this one file: the setting ``adaptation.tasks`` names it as
``direction_task:DirectionTask`` (tests/ is on the path), and nothing else changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from adaptd.adapters.checks import positive_int
from adaptd.daemon.core.tasks.protocol import Head, Tick


class UpRule:
    """The label: 1.0 when the log price is higher ``horizon`` events later, else 0.0."""

    def __init__(self, horizon: int) -> None:
        self.horizon = positive_int("horizon", horizon)

    def anchor(self, tick: Tick) -> float:
        return tick.log_price

    def label(self, anchor: float, tick: Tick) -> float:
        return 1.0 if tick.log_price > anchor else 0.0


class ClassFrequency:
    """Forecasts each class with its running frequency so far (Laplace-smoothed)."""

    name = "running class frequency"
    constant_output = None  # the frequencies move: no constant network forecasts them

    def __init__(self) -> None:
        self.counts = [1.0, 1.0]

    def losses(self, y: np.ndarray) -> np.ndarray:
        out = np.empty(len(y), dtype=np.float64)
        for i, label in enumerate(np.asarray(y, dtype=np.int64)):
            out[i] = -math.log(self.counts[label] / sum(self.counts))
            self.counts[label] += 1.0
        return out


@dataclass(frozen=True)
class DirectionTask:
    """Classify the direction of the price over the next ``horizon`` events."""

    horizon: int
    clip: float

    name: ClassVar[str] = "direction"
    qualified: ClassVar[bool] = True
    loss: ClassVar[Any] = "cross_entropy"
    head: ClassVar[Head] = Head(out_dim=2, output_scale=0.1, link="softmax")
    features: ClassVar[tuple[str, ...] | None] = ("ret_z", "mean_fast_z", "vol_ratio")

    def __post_init__(self) -> None:
        self.label_rule()  # checks the horizon

    def label_rule(self) -> UpRule:
        return UpRule(self.horizon)

    def losses(self, output: np.ndarray, y: np.ndarray) -> np.ndarray:
        logits = np.asarray(output, dtype=np.float64)
        top = logits.max(axis=-1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=-1))
        picked = logits[np.arange(len(logits)), np.asarray(y, dtype=np.int64)]
        return log_norm - picked

    def baseline(self) -> ClassFrequency:
        return ClassFrequency()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": {
                "horizon": self.horizon,
                "definition": "1 when the log price is higher H events later, else 0",
            },
            "loss": self.loss,
            "output": "logits of (down or flat, up)",
            "link": self.head.link,
            "baseline": ClassFrequency.name,
        }
