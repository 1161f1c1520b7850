"""Detectors by name, with their parameters: what the daemon's ``detection`` settings make.

>>> make_detector("cusum", DetectorParams(cusum_false_alarms_per_10k=10.0)).name
'cusum'
>>> make_detector("adwin", DetectorParams()).name
'adwin'
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

from river.drift import ADWIN

from .bocpd import BOCPD
from .cusum import Cusum
from .focus import Focus
from .protocol import ChangeDetector
from .resegment import Resegment
from .river import AcyclicPageHinkley, RiverDetector

__all__ = ["DETECTORS", "DetectorParams", "make_detector"]

DETECTORS = ("adwin", "page_hinkley", "cusum", "focus", "bocpd", "resegment")
"""river's ADWIN and Page-Hinkley, and adaptd's own CUSUM, FOCuS, BOCPD and re-segmentation."""


def _default(cls: type, parameter: str) -> Any:
    """The default of one of a detector's constructor parameters: adaptd's own detectors
    write theirs once, in the class, and the settings read them from here."""
    return inspect.signature(cls).parameters[parameter].default


class DetectorParams(NamedTuple):
    """Every detector's parameters (the ``detection`` settings of the same names, whose
    defaults are these)."""

    # river's detectors: ADWIN's delta is river's default; Page-Hinkley's are the daemon's own.
    adwin_delta: float = 0.002
    ph_threshold: float = 30.0
    ph_delta: float = 0.1
    ph_alpha: float = 1.0
    cusum_k: float = _default(Cusum, "k")
    cusum_false_alarms_per_10k: float = _default(Cusum, "false_alarms_per_10k")
    focus_false_alarms_per_10k: float = _default(Focus, "false_alarms_per_10k")
    bocpd_expected_run: float = _default(BOCPD, "expected_run")
    bocpd_threshold: float = _default(BOCPD, "threshold")
    resegment_penalty: float = _default(Resegment, "penalty")
    resegment_stable: int = _default(Resegment, "stable")
    resegment_window: int = _default(Resegment, "window")
    resegment_trend_penalty: float | None = _default(Resegment, "trend_penalty")

    @classmethod
    def of(cls, source: Any) -> DetectorParams:
        """The parameters read from anything that has them as attributes (the settings);
        those it lacks keep their defaults."""
        return cls(**{k: getattr(source, k) for k in cls._fields if hasattr(source, k)})


def make_detector(name: str, params: DetectorParams) -> ChangeDetector:
    """A fresh detector ``name`` (one of :data:`DETECTORS`) with ``params``."""
    if name == "adwin":
        return RiverDetector(name, ADWIN(delta=params.adwin_delta))
    if name == "page_hinkley":
        river = AcyclicPageHinkley(
            threshold=params.ph_threshold, delta=params.ph_delta, alpha=params.ph_alpha, mode="both"
        )
        return RiverDetector(name, river)
    if name == "cusum":
        return Cusum(k=params.cusum_k, false_alarms_per_10k=params.cusum_false_alarms_per_10k)
    if name == "focus":
        return Focus(false_alarms_per_10k=params.focus_false_alarms_per_10k)
    if name == "bocpd":
        return BOCPD(expected_run=params.bocpd_expected_run, threshold=params.bocpd_threshold)
    if name == "resegment":
        return Resegment(
            penalty=params.resegment_penalty,
            stable=params.resegment_stable,
            window=params.resegment_window,
            trend_penalty=params.resegment_trend_penalty,
        )
    raise ValueError(f"unknown detector {name!r}; choose from {DETECTORS}")
