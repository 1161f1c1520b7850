"""``make bench-markets``: every shipped market series through adaptd's risk and return tasks,
meta-trained on the earlier half and scored on the later half against the field's baselines.

Writes docs/bench/markets.json and prints the tables of docs/benchmarks.md ("Markets").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from adaptd.daemon.config.settings import load_settings
from adaptd.daemon.learner.learners import use_threads

from .harness import replay_series
from .risk import BASELINES, score_return, score_risk
from .series import load_markets

META_EVERY = 100
"""Events between meta-training rounds on the earlier half (the daemon's are every
``adaptation.meta_interval_s`` seconds; the benchmark ties them to events to be repeatable)."""


def run(out: Path | None) -> dict[str, Any]:
    use_threads(1)
    settings = load_settings(
        environ={},
        features={"label_horizon": 1},
        adaptation={"tasks": ["return", "risk"], "isolation": "thread"},
    )
    markets, missing = load_markets()
    results: dict[str, Any] = {}
    for series in markets:
        started = time.perf_counter()
        replay = replay_series(series, settings, meta_every=META_EVERY, meta_until=len(series) // 2)
        seconds = time.perf_counter() - started
        risk = score_risk(series, replay)
        ret = score_return(series, replay, settings.features.label_clip)
        results[series.name] = {
            "stream": series.stream,
            "events": len(series),
            "description": series.description,
            "shifts": len(replay.shifts),
            "meta_updates": replay.meta_updates,
            "replay_seconds": seconds,
            "risk": risk,
            "return": ret,
        }
        print(_line(series.name, results[series.name]), flush=True)
    report = {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "settings": {
            "label_horizon": 1,
            "meta_every_events": META_EVERY,
            "tasks": ["return", "risk"],
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
    kupiec_ok = {
        k: all(
            not level["rejected_at_5pct"]
            for level in v["risk"]["forecasters"]["adaptd"]["var"].values()
        )
        for k, v in results.items()
    }
    kupiec_t_ok = {
        k: all(
            not level["rejected_at_5pct"]
            for key, level in v["risk"]["forecasters"]["adaptd"]["var_t"].items()
            if key != "dof"
        )
        for k, v in results.items()
    }
    ret = {k: v["return"]["live_over_zero"] for k, v in results.items()}
    n = len(results)
    return {
        "risk_qlike_at_or_below_best_on": sum(r <= 1.0 for r in ratios.values()),
        "risk_qlike_at_or_below_best_needed": int(np.ceil(2 * n / 3)),
        "risk_qlike_worst_ratio": max(ratios.values()),
        "risk_qlike_worst_ratio_goal": 1.05,
        "var_kupiec_not_rejected_on": sum(kupiec_ok.values()),
        "var_t_kupiec_not_rejected_on": sum(kupiec_t_ok.values()),
        "return_live_over_zero_worst": max(ret.values()),
        "return_live_over_zero_goal": 1.01,
        "series": n,
    }


def _line(name: str, r: dict[str, Any]) -> str:
    f = r["risk"]["forecasters"]
    return (
        f"{name:8s} {r['events']:6d} events  QLIKE adaptd {f['adaptd']['qlike']:.4f}  "
        f"RiskMetrics {f['RiskMetrics']['qlike']:.4f}  GARCH {f['GARCH(1,1)']['qlike']:.4f}  "
        f"return live/zero {r['return']['live_over_zero']:.4f}  ({r['replay_seconds']:.0f} s)"
    )


def markdown(report: dict[str, Any]) -> str:
    names = ["adaptd", "adaptd, no adaptation", "EWMA (adaptd's reference)", *BASELINES]
    lines = [
        "| series | events | " + " | ".join(names) + " | adaptd / best | DM p | floored |",
        "|---|---:|" + "---:|" * (len(names) + 3),
    ]
    for name, r in report["series"].items():
        risk = r["risk"]
        f = risk["forecasters"]
        cells = [f"{f[k]['qlike']:.4f}" for k in names]
        lines.append(
            f"| {name} | {r['events']:,} | "
            + " | ".join(cells)
            + f" | {risk['qlike_ratio_to_best']:.3f} | {risk['dm_vs_best']['pvalue']:.3f}"
            + f" | {risk['floored']} |"
        )
    heads = [*names, "adaptd, Student t (dof)"]
    lines += ["", "| series | " + " | ".join(f"{k} 1 % / 5 %" for k in heads) + " |"]
    lines.append("|---|" + "---:|" * len(heads))
    for name, r in report["series"].items():
        f = r["risk"]["forecasters"]
        cells = [_rates(f[k]["var"]) for k in names]
        cells.append(f"{_rates(f['adaptd']['var_t'])} ({f['adaptd']['var_t']['dof']:.1f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| series | return task: live | no adaptation | zero forecast | live / zero "
        "| adaptations (return + risk) | published | retired | adapt p50 / p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in report["series"].items():
        t = r["return"]
        q = r["risk"]["adapt_ms"] or {"p50": float("nan"), "p99": float("nan")}
        lines.append(
            f"| {name} | {t['live_mse']:.4f} | {t['no_adaptation_mse']:.4f} | "
            f"{t['zero_forecast_mse']:.4f} | {t['live_over_zero']:.4f} | "
            f"{t['adaptations']} + {r['risk']['adaptations']} | "
            f"{t['published']} + {r['risk']['published']} | "
            f"{t['retired']} + {r['risk']['retired']} | {q['p50']:.1f} / {q['p99']:.1f} |"
        )
    lines += ["", "goals: " + json.dumps(report["goals"])]
    return "\n".join(lines)


def _rates(v: dict[str, Any]) -> str:
    return " / ".join(
        f"{v[lv]['rate'] * 100:.1f}{'*' if v[lv]['rejected_at_5pct'] else ''}"
        for lv in ("0.01", "0.05")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None)
    run(parser.parse_args().out)


if __name__ == "__main__":
    main()
