"""The detectors of the benchmark, how each is configured, and one online run.

Every detector sees the series one value at a time, as the daemon would, and its alarms'
*locations* are the predicted change points (an alarm that only says "now" is late by its
delay, and TCPD's margin of 5 is tight). The input is the series' first channel, either as
it is (``level``) or as first differences (``diff``: a change of slope becomes a change of
mean), chosen like any other parameter.

Each of adaptd's detectors runs a second time with its alarms confirmed by PELT over the
window before them (``+pelt``: :class:`~adaptd.daemon.core.detectors.confirm.Confirmed`),
to measure the confirmation both ways; its grid adds the penalty and the wait.

river's detectors are the baselines, used as they are with their default parameters, on
inputs standardised by the mean and deviation of the first ``WARMUP`` values (they are not
scale-free and the series' units range from persons to barrels); their location is the
alarm itself.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from river.drift import ADWIN, KSWIN, PageHinkley

from adaptd.daemon.core.detectors import Alarm, ChangeDetector
from adaptd.daemon.core.detectors.bocpd import BOCPD
from adaptd.daemon.core.detectors.confirm import Confirmation, Confirmed
from adaptd.daemon.core.detectors.cusum import Cusum
from adaptd.daemon.core.detectors.focus import Focus
from adaptd.daemon.core.detectors.page_hinkley import PageHinkley as OurPageHinkley
from adaptd.daemon.core.detectors.resegment import Resegment
from adaptd.daemon.core.detectors.river import RiverDetector

__all__ = ["CANDIDATES", "Candidate", "Standardised", "detect", "inputs", "locations"]

WARMUP = 10
"""Values river's detectors are standardised by (ours learn their own scale)."""


class Standardised:
    """A detector fed ``(x - m) / s``, with ``m`` and ``s`` the mean and deviation of the first
    ``WARMUP`` values (river's detectors are not scale-free)."""

    def __init__(self, detector: ChangeDetector) -> None:
        self.detector = detector
        self.name = detector.name
        self._head: list[float] = []
        self._mean, self._sd = 0.0, 1.0

    def reset(self) -> None:
        self.detector.reset()
        self._head = []

    def update(self, x: float) -> Alarm | None:
        if len(self._head) < WARMUP:
            self._head.append(x)
            self._mean = float(np.mean(self._head))
            self._sd = float(np.std(self._head)) or 1.0
        alarm = self.detector.update((x - self._mean) / self._sd)
        if alarm is not None and alarm.index < WARMUP:
            return None  # the scale was still being learnt
        return alarm


@dataclass(frozen=True)
class Candidate:
    """A detector, its default parameters and the grid leave-one-out chooses from."""

    name: str
    make: Callable[..., ChangeDetector]
    default: Mapping[str, Any]
    grid: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    default_seen_scores: bool = False
    """Its default parameters were chosen after its scores on these series were seen: its
    default F1 is then optimistic, and only its leave-one-out F1 is a fair figure."""

    def configs(self) -> list[dict[str, Any]]:
        """Every point of the grid (with ``input``), the default first."""
        keys = list(self.grid)
        points = [dict(zip(keys, v, strict=True)) for v in itertools.product(*self.grid.values())]
        default = dict(self.default)
        return [default] + [p for p in points if p != default]


def _river(name: str, cls: Callable[[], Any]) -> Callable[..., ChangeDetector]:
    def make(**_: Any) -> ChangeDetector:
        return Standardised(RiverDetector(name, cls()))

    return make


def _confirmed(make: Callable[..., ChangeDetector]) -> Callable[..., ChangeDetector]:
    def build(penalty: float = 3.0, after: int = 10, **params: Any) -> ChangeDetector:
        return Confirmed(make(**params), Confirmation(penalty=penalty), after)

    return build


INPUTS = ("level", "diff")
CONFIRM_GRID = {"penalty": (1.5, 3.0, 6.0), "after": (5, 10, 20)}

CANDIDATES: dict[str, Candidate] = {
    "bocpd": Candidate(
        "bocpd",
        BOCPD,
        {"input": "level", "model": "constant"},
        {
            "input": INPUTS,
            "model": ("constant", "trend"),
            "expected_run": (50.0, 100.0, 250.0, 1000.0),
            "threshold": (0.5, 0.7, 0.9),
            "warmup": (5, 10),
        },
    ),
    "bocpd_trend": Candidate("bocpd_trend", BOCPD, {"input": "level", "model": "trend"}),
    "cusum": Candidate(
        "cusum",
        Cusum,
        {"input": "level"},
        {
            "input": INPUTS,
            "false_alarms_per_10k": (1.0, 10.0, 100.0),
            "k": (0.25, 0.5, 1.0),
            "warmup": (5, 10, 30),
        },
    ),
    "focus": Candidate(
        "focus",
        Focus,
        {"input": "level"},
        {
            "input": INPUTS,
            "false_alarms_per_10k": (1.0, 10.0, 100.0),
            "warmup": (5, 10, 30),
        },
    ),
    "page_hinkley": Candidate(
        "page_hinkley",
        OurPageHinkley,
        {"input": "level"},
        {
            "input": INPUTS,
            "false_alarms_per_10k": (1.0, 10.0, 100.0),
            "delta": (0.25, 0.5, 1.0),
            "warmup": (5, 10, 30),
        },
    ),
    "resegment": Candidate(
        "resegment",
        Resegment,
        {"input": "level"},
        {
            "input": INPUTS,
            "penalty": (3.0, 5.0, 8.0, 12.0),
            "stable": (10, 20, 40),
            # None: constant segments; else a segment may follow a line (its slope's cost)
            "trend_penalty": (None, 0.25, 0.5, 1.0, 2.0),
        },
        default_seen_scores=True,  # penalty 8, stable 20: picked from a dozen tried here
    ),
    "cusum+pelt": Candidate(
        "cusum+pelt",
        _confirmed(Cusum),
        {"input": "level"},
        {"input": INPUTS, "false_alarms_per_10k": (1.0, 10.0, 100.0), **CONFIRM_GRID},
    ),
    "focus+pelt": Candidate(
        "focus+pelt",
        _confirmed(Focus),
        {"input": "level"},
        {"input": INPUTS, "false_alarms_per_10k": (1.0, 10.0, 100.0), **CONFIRM_GRID},
    ),
    "bocpd+pelt": Candidate(
        "bocpd+pelt",
        _confirmed(BOCPD),
        {"input": "level", "model": "constant"},
        {"input": INPUTS, "model": ("constant", "trend"), **CONFIRM_GRID},
    ),
    "bocpd_trend+pelt": Candidate(
        "bocpd_trend+pelt", _confirmed(BOCPD), {"input": "level", "model": "trend"}
    ),
    "river_adwin": Candidate("river_adwin", _river("river_adwin", ADWIN), {"input": "level"}),
    "river_page_hinkley": Candidate(
        "river_page_hinkley", _river("river_page_hinkley", PageHinkley), {"input": "level"}
    ),
    "river_kswin": Candidate(
        "river_kswin", _river("river_kswin", functools.partial(KSWIN, seed=0)), {"input": "level"}
    ),
}


def inputs(values: np.ndarray, how: str) -> np.ndarray:
    """The first channel as the detector sees it: ``level`` or ``diff`` (0 first)."""
    x = np.asarray(values, np.float64)[:, 0]
    if how == "level":
        return x
    if how == "diff":
        return np.diff(x, prepend=x[0])
    raise ValueError(f"input must be one of {INPUTS}, got {how!r}")


def detect(candidate: Candidate, config: Mapping[str, Any], values: np.ndarray) -> list[Alarm]:
    """Run one configuration online over a series; its alarms in order."""
    params = {k: v for k, v in config.items() if k != "input"}
    detector = candidate.make(**params)
    alarms = []
    for x in inputs(values, config.get("input", "level")):
        alarm = detector.update(float(x))
        if alarm is not None:
            alarms.append(alarm)
    return alarms


def locations(alarms: list[Alarm], n_obs: int) -> list[int]:
    """The predicted change points: distinct alarm locations inside the series (TCPD adds
    index 0 itself)."""
    return sorted({a.location for a in alarms if 0 < a.location < n_obs})
