"""``make bench-detect``: every detector online on TCPD's series and river's market series,
scored with TCPD's F1 (margin 5) and covering, next to TCPDBench's published scores.

For each detector: its default configuration, and one configuration per series chosen by
leave-one-series-out cross-validation (the grid point with the best mean F1 on the *other*
series; never on the series it is scored on). Then, on synthetic streams: false alarms per
10,000 in-control events, detection delay and location error of a shift in mean and one in
variance; and the cost per event and the stored size of each detector's state (the typed,
compressed format a stream's snapshot holds it in).

Last, the daemon's own shift detection (its channels, debounce and cool-down; each choice of
``detection.detectors``) on the full daily market series (:mod:`.markets`).

Writes docs/bench/detect.json and prints the tables of docs/benchmarks.md ("Detection").
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from adaptd.adapters.changepoints import covering, f1_score
from adaptd.daemon.core import state_format

from ..machine import machine
from .data import Series, load_series, published
from .markets import daemon_detection
from .report import goals, markdown
from .runner import CANDIDATES, Candidate, Standardised, detect, locations

MARKETS = ("apple", "bitcoin", "brent_spot")
PUBLISHED_METHODS = (
    "amoc", "binseg", "bocpd", "bocpdms", "cpnp", "ecp", "kcpa", "pelt", "prophet",
    "rbocpdms", "rfpop", "segneigh", "wbs", "zero",
)  # fmt: skip


def score(series: Series, locs: list[int]) -> dict[str, float]:
    return {
        "f1": f1_score(series.annotations, locs),
        "cover": covering(series.annotations, locs, series.n_obs),
    }


def _run_config(name: str, config: dict[str, Any]) -> list[list[int]]:
    """One configuration of the candidate ``name`` on every series: the changes found.

    Runs in a worker process: candidates are looked up by name, as their factories are
    closures that do not pickle."""
    candidate = CANDIDATES[name]
    return [locations(detect(candidate, config, s.values), s.n_obs) for s in _series()]


@functools.cache
def _series() -> list[Series]:
    """The benchmark's series, loaded once per process."""
    return load_series()


def evaluate(
    candidate: Candidate, series: list[Series], pool: Executor | None = None
) -> dict[str, Any]:
    """Every configuration of ``candidate`` on every series; the default's scores and the
    leave-one-out choice's. With ``pool``, configurations run in its workers (each detector
    is deterministic, so the figures are the same either way): the workers look the
    candidate up by name in :data:`CANDIDATES` and load the series themselves, so only
    those candidates and :func:`load_series`'s series can be run there."""
    configs = candidate.configs()
    if pool is None:
        found = [
            [locations(detect(candidate, config, s.values), s.n_obs) for s in series]
            for config in configs
        ]
    else:
        if CANDIDATES.get(candidate.name) is not candidate or [s.name for s in series] != [
            s.name for s in _series()
        ]:
            raise ValueError("a pool runs CANDIDATES' own candidates on load_series()'s series")
        found = list(pool.map(_run_config, [candidate.name] * len(configs), configs))
    f1 = np.zeros((len(configs), len(series)))
    cover = np.zeros_like(f1)
    for i, row in enumerate(found):
        for j, s in enumerate(series):
            got = score(s, row[j])
            f1[i, j], cover[i, j] = got["f1"], got["cover"]
    per_series: dict[str, Any] = {}
    for j, s in enumerate(series):
        others = [k for k in range(len(series)) if k != j]
        chosen = int(np.argmax(f1[:, others].mean(axis=1)))  # ties: the earlier, default first
        per_series[s.name] = {
            "default": {"f1": f1[0, j], "cover": cover[0, j], "changes": found[0][j]},
            "loo": {
                "f1": f1[chosen, j],
                "cover": cover[chosen, j],
                "config": configs[chosen],
                "changes": found[chosen][j],
            },
        }
    return {"default_config": configs[0], "configs": len(configs), "series": per_series}


def synthetic(candidate: Candidate, seeds: int = 5, n: int = 10_000) -> dict[str, Any]:
    """In-control false alarms per 10,000 events, and the delay and location error of a mean
    shift (2 sd) and a variance shift (x3 sd) at event 1000, over ``seeds`` streams."""
    config = dict(candidate.default)
    false_alarms = 0
    delays: dict[str, list[float]] = {"mean": [], "variance": []}
    errors: dict[str, list[float]] = {"mean": [], "variance": []}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        false_alarms += len(detect(candidate, config, rng.standard_normal((n, 1))))
        for kind in ("mean", "variance"):
            x = rng.standard_normal(2000)
            x[1000:] = x[1000:] + 2.0 if kind == "mean" else x[1000:] * 3.0
            after = [a for a in detect(candidate, config, x[:, None]) if a.index >= 1000]
            if after:
                delays[kind].append(after[0].index - 1000)
                errors[kind].append(after[0].location - 1000)
    return {
        "false_alarms_per_10k": false_alarms / seeds * 10_000 / n,
        **{
            f"{kind}_shift": {
                "detected": len(delays[kind]),
                "of": seeds,
                "delay_median": float(np.median(delays[kind])) if delays[kind] else None,
                "location_error_median": float(np.median(errors[kind])) if errors[kind] else None,
            }
            for kind in delays
        },
    }


def cost(candidate: Candidate, n: int = 10_000, repeats: int = 3) -> dict[str, float | None]:
    """Microseconds per update (the least of ``repeats`` runs over the same ``n`` values: this
    shared machine's noise only ever adds time), and the bytes of the detector's state after
    them as a stream's snapshot stores it (:mod:`~adaptd.daemon.core.state_format`: typed,
    compressed; river's detectors without the benchmark's standardising wrapper, as the daemon
    holds them; None for a detector the daemon cannot store)."""
    x = np.random.default_rng(1).standard_normal(n)
    x[n // 2 :] += 1.0
    params = {k: v for k, v in candidate.default.items() if k != "input"}
    best = float("inf")
    for _ in range(repeats):
        detector = candidate.make(**params)
        start = time.perf_counter()
        for v in x:
            detector.update(float(v))
        best = min(best, time.perf_counter() - start)
    stored = detector.detector if isinstance(detector, Standardised) else detector
    try:
        size: int | None = len(state_format.dumps(stored))
    except state_format.StateFormatError:  # river's KSWIN: a baseline the daemon cannot run
        size = None
    return {"us_per_event": best / n * 1e6, "state_bytes": size}


def published_table(series: list[Series]) -> dict[str, Any]:
    """TCPDBench's per-series scores of its methods for ``series``, default and oracle."""
    out: dict[str, Any] = {}
    for kind in ("default_f1", "default_cover", "oracle_f1", "oracle_cover"):
        table = published(kind)
        out[kind] = {s.name: {m: table[s.name].get(m) for m in PUBLISHED_METHODS} for s in series}
    return out


def run(out: Path | None) -> dict[str, Any]:
    series = _series()
    results = {}
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for name, candidate in CANDIDATES.items():
            started = time.perf_counter()
            results[name] = evaluate(candidate, series, pool)
            results[name]["synthetic"] = synthetic(candidate)
            results[name]["cost"] = cost(candidate)  # alone: the pool is idle by now
            results[name]["default_seen_scores"] = candidate.default_seen_scores
            print(f"{name}: {time.perf_counter() - started:.1f} s", flush=True)
    report = {
        "machine": machine(),
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "series": {
            s.name: {"n_obs": s.n_obs, "univariate": s.univariate, "source": s.source}
            for s in series
        },
        "markets": list(MARKETS),
        "detectors": results,
        "published": published_table(series),
        "daemon_markets": daemon_detection(series),
    }
    report["goals"] = goals(report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1, default=float) + "\n")
    print(markdown(report))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None)
    run(parser.parse_args().out)


if __name__ == "__main__":
    main()
