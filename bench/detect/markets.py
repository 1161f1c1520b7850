"""The daemon's own detection on the market series: the stream core's
:class:`~adaptd.daemon.core.detection.ShiftDetector` (its channels, scale, warm-up, debounce
and cool-down) fed the full daily series river ships, with each ``detection.detectors``
choice, scored with TCPD's F1 on TCPD's grid.

A shift's predicted change point is its ``change_index`` (the detectors' estimated
location), or its alarm, mapped to TCPD's row ``(row - first) / step``. The error channel
needs a live policy and is left out: this measures the market channels alone.

Each configuration runs twice: as it is, and with ``detection.confirm`` (each shift
relocated or retracted by PELT over the window before it, as the daemon does off its event
loop), to measure the confirmation both ways.
"""

from __future__ import annotations

import itertools
from typing import Any

from adaptd.adapters.changepoints import f1_score
from adaptd.adapters.tasks.series import load as load_market
from adaptd.daemon.config.settings import DetectionSettings, FeatureSettings
from adaptd.daemon.core.detection import ShiftDetector
from adaptd.daemon.core.features import FeatureExtractor

from .data import Series, tcpd_annotations

__all__ = ["CONFIGS", "daemon_detection"]

TCPD_NAMES = {"apple": "apple", "bitcoin": "bitcoin", "brent": "brent_spot"}
CONFIGS: dict[str, dict[str, Any]] = {
    "default (river adwin, page_hinkley)": {},
    "cusum": {"detectors": ["cusum"], "skip": []},
    "focus": {"detectors": ["focus"], "skip": []},
    "bocpd": {"detectors": ["bocpd"], "skip": []},
    "resegment": {"detectors": ["resegment"], "skip": []},
    "resegment with slopes (TCPD's leave-one-out choice)": {
        "detectors": ["resegment"],
        "skip": [],
        "resegment_penalty": 3.0,
        "resegment_stable": 10,
        "resegment_trend_penalty": 0.25,
    },
    "cusum on returns, bocpd on volatility": {
        "detectors": ["cusum", "bocpd"],
        "skip": ["cusum:volatility", "bocpd:returns"],
    },
}
"""Each on the market channels (returns, volatility), the other settings their defaults."""


def _first_row(name: str) -> tuple[int, int]:
    """(first row, step) of TCPD's grid in river's series ``name``."""
    market = load_market(name)
    step = market.sampling_step
    tcpd = tcpd_annotations()[TCPD_NAMES[name]]
    # river's annotations are TCPD's mapped to its rows: row = first + step * k.
    row = min(r for rows in market.annotations.values() for r in rows)
    k = min(k for rows in tcpd.values() for k in rows)
    return row - step * k, step


def _on_grid(rows: list[int], grid: tuple[int, int, int]) -> list[int]:
    """Rows of river's series as TCPD's indices inside its series (0 is TCPD's own)."""
    first, step, n_obs = grid
    indices = {round((r - first) / step) for r in rows if r >= first}
    return sorted(k for k in indices if 0 < k < n_obs)


def daemon_detection(series: list[Series]) -> dict[str, Any]:
    """F1 (margin 5) of each configuration's shifts on Apple, Bitcoin and Brent (``series``
    gives TCPD's length of each)."""
    n_obs = {s.name: s.n_obs for s in series}
    out: dict[str, Any] = {}
    for name, tcpd in TCPD_NAMES.items():
        market = load_market(name)
        annotations = tcpd_annotations()[tcpd]
        first, step = _first_row(name)
        grid = (first, step, n_obs[tcpd])

        row: dict[str, Any] = {}
        for (label, overrides), confirm in itertools.product(CONFIGS.items(), (False, True)):
            settings = DetectionSettings(
                channels=("returns", "volatility"), confirm=confirm, **overrides
            )
            detector = ShiftDetector(settings)
            features = FeatureExtractor(FeatureSettings())
            shifts, retracted = [], 0
            for i, price in enumerate(market.price):
                if features.update(float(price), ts_ms=int(market.ts_ms[i])) is None:
                    continue
                shift = detector.update(i, features.ret, features.vol)
                if shift is None:
                    continue
                window, confirmation = detector.take_window(), detector.confirmation
                if window is not None and confirmation is not None:
                    location = confirmation.check(window[0], window[1], shift.location)
                    if location is None:
                        retracted += 1
                        continue
                    shift = shift._replace(location=location)
                shifts.append(shift)
            if confirm:
                label = f"{label}, confirmed"
            row[label] = {
                "shifts": len(shifts),
                "retracted": retracted,
                "f1_located": f1_score(
                    annotations, _on_grid([s.change_index for s in shifts], grid)
                ),
                "f1_alarm": f1_score(annotations, _on_grid([s.index for s in shifts], grid)),
            }
        row["zero"] = {"shifts": 0, "f1_located": f1_score(annotations, [])}
        row["zero"]["f1_alarm"] = row["zero"]["f1_located"]
        out[tcpd] = row
    return out
