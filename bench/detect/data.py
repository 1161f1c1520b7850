"""The series of the detection benchmark, on the grid their annotations index.

TCPD's series (van den Burg & Williams 2020) are vendored in ``tcpd/`` with their
annotations and the published per-series scores of TCPDBench's 14 methods (MIT licence,
``tcpd/LICENSE``; four series carry their own, in their folders). Ten of TCPD's 42 series
are not redistributed by TCPD; two of them, ``bitcoin`` and ``apple``, are rebuilt here
from the CSV files river ships, on TCPD's grid (``adaptd.adapters.tasks.series`` knows
their sampling step and first row). TCPD's ``apple`` has two channels (close and volume):
its close alone is used, and it is kept out of the univariate means. ``run_log`` (pace and
distance) is TCPD's other multivariate series.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from adaptd.adapters.tasks.series import load as load_market

__all__ = ["TCPD", "Series", "load_series", "published", "tcpd_annotations"]

TCPD = Path(__file__).resolve().parent / "tcpd"

RIVER_REBUILT = {"bitcoin": (1, 774), "apple": (2, 622)}
"""TCPD series rebuilt from river's CSV files: TCPD's channel count and length (river's
Bitcoin runs 48 rows past TCPD's; the lengths reproduce the published zero baseline's
cover, which depends on the length alone)."""


@dataclass(frozen=True)
class Series:
    """One series: its values (n, channels), the annotators' change points and where the
    values came from."""

    name: str
    values: np.ndarray
    annotations: dict[str, list[int]]
    source: str
    tcpd_channels: int

    @property
    def n_obs(self) -> int:
        return len(self.values)

    @property
    def univariate(self) -> bool:
        """Univariate in TCPD (the benchmark's univariate means are over these)."""
        return self.tcpd_channels == 1


@cache
def tcpd_annotations() -> dict[str, dict[str, list[int]]]:
    """TCPD's annotations of all 42 series: ``{series: {annotator: [indices]}}``, each index
    the first of a new segment."""
    return json.loads((TCPD / "annotations.json").read_text())


@cache
def published(kind: str) -> dict[str, dict[str, float | None]]:
    """TCPDBench's published scores, ``kind`` one of ``default_f1``, ``default_cover``,
    ``oracle_f1``, ``oracle_cover``: ``{series: {method: score or None (failed)}}``."""
    return json.loads((TCPD / "scores" / f"{kind}_scores.json").read_text())


def _tcpd(name: str) -> Series:
    raw = json.loads((TCPD / "datasets" / name / f"{name}.json").read_text())
    columns = []
    for channel in raw["series"]:
        column = np.array([np.nan if v is None else v for v in channel["raw"]], np.float64)
        # TCPDBench's methods see a missing value (two in uk_coal_employ) filled in; an
        # online detector gets the last value instead.
        for i in np.flatnonzero(np.isnan(column)):
            column[i] = column[i - 1] if i else np.nanmean(column)
        columns.append(column)
    return Series(
        name=name,
        values=np.column_stack(columns),
        annotations=tcpd_annotations()[name],
        source=f"TCPD: {raw.get('longname', name)}",
        tcpd_channels=int(raw["n_dim"]),
    )


def _from_river(name: str) -> Series:
    market = load_market(name)
    step = market.sampling_step
    offset = min(min(rows) for rows in market.annotations.values() if rows) % step
    channels, n_obs = RIVER_REBUILT[name]
    price = market.price[offset::step][:n_obs]
    if len(price) != n_obs:
        raise ValueError(
            f"{name}: river's file gives {len(price)} rows on TCPD's grid, not {n_obs}"
        )
    return Series(
        name=name,
        values=price[:, None],
        annotations=tcpd_annotations()[name],
        source=f"river's {market.stream}, every {step} row(s) from row {offset}, close only",
        tcpd_channels=channels,
    )


def load_series() -> list[Series]:
    """Every series: TCPD's vendored ones and the two rebuilt from river, by name."""
    names = sorted(p.name for p in (TCPD / "datasets").iterdir() if p.is_dir())
    out = [_tcpd(n) for n in names] + [_from_river(n) for n in RIVER_REBUILT]
    return sorted(out, key=lambda s: s.name)
