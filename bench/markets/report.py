"""The market benchmark's report: the progress line of each series and the markdown tables
of docs/benchmarks.md ("Markets"), from the report ``bench.markets`` writes."""

from __future__ import annotations

import json
from typing import Any

from .risk import BASELINES

__all__ = ["STRATEGY_COLUMNS", "markdown", "progress_line", "strategy_tables"]


def progress_line(name: str, r: dict[str, Any]) -> str:
    f = r["risk"]["forecasters"]
    m = r["strategy"]["methods"]
    return (
        f"{name:8s} {r['events']:6d} events  QLIKE adaptd {f['adaptd']['qlike']:.4f}  "
        f"RiskMetrics {f['RiskMetrics']['qlike']:.4f}  GARCH {f['GARCH(1,1)']['qlike']:.4f}  "
        f"return live/zero {r['return']['live_over_zero']:.4f}  strategy Sharpe adaptd "
        f"{m['adaptd']['sharpe']:.2f} best-early {m['best single (earlier half)']['sharpe']:.2f} "
        f"equal {m['equal weight']['sharpe']:.2f}  ({r['replay_seconds']:.0f} s)"
    )


def markdown(report: dict[str, Any]) -> str:
    names = [
        "adaptd",
        "adaptd, no adaptation",
        "adaptd's reference",
        "EWMA (features' fast_var)",
        *BASELINES,
    ]
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
    calibrated = ["adaptd", *BASELINES]
    lines += [
        "",
        "| series | "
        + " | ".join(f"{k}, calibrated 1 % / 5 %" for k in calibrated)
        + " | adaptd: independence p 1 % / 5 % |",
        "|---|" + "---:|" * (len(calibrated) + 1),
    ]
    for name, r in report["series"].items():
        f = r["risk"]["forecasters"]
        cells = [_rates(f[k]["var_calibrated"]) for k in calibrated]
        own = f["adaptd"]["var_calibrated"]
        cells.append(" / ".join(f"{own[lv]['independence_pvalue']:.2f}" for lv in ("0.01", "0.05")))
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
    lines += ["", *strategy_tables(report), "", *other_ensemble_table(report)]
    lines += [
        "",
        "| series | calendar features | risk QLIKE with / without | return live/zero with / "
        "without | strategy Sharpe with / without |",
        "|---|---|---:|---:|---:|",
    ]
    for name, r in report["series"].items():
        if "without_calendar" in r:
            w = r["without_calendar"]
            lines.append(
                f"| {name} | {', '.join(r['calendar'])} | "
                f"{r['risk']['forecasters']['adaptd']['qlike']:.4f} / {w['risk_qlike']:.4f} | "
                f"{r['return']['live_over_zero']:.4f} / {w['return_live_over_zero']:.4f} | "
                f"{r['strategy']['methods']['adaptd']['sharpe']:.2f} / "
                f"{w['strategy_sharpe']:.2f} |"
            )
    lines += ["", "goals: " + json.dumps(report["goals"])]
    return "\n".join(lines)


def other_ensemble_table(report: dict[str, Any]) -> list[str]:
    """The strategy policy on the ensemble that is not the default (``other_ensemble``) next
    to the default's baselines."""
    lines = [
        "| series | adaptd on the other ensemble (PSR) | on it, no adaptation | adaptd | "
        "equal weight | best single (earlier half) | published / retired on it |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in report["series"].items():
        h = r.get("other_ensemble")
        if h is None:
            continue
        m = r["strategy"]["methods"]
        lines.append(
            f"| {name} | {h['sharpe']:.2f} ({h['psr']:.2f}) | {h['no_adaptation_sharpe']:.2f} | "
            f"{m['adaptd']['sharpe']:.2f} | {m['equal weight']['sharpe']:.2f} | "
            f"{m['best single (earlier half)']['sharpe']:.2f} | "
            f"{h['published']} / {h['retired']} |"
        )
    return lines


STRATEGY_COLUMNS = [
    "adaptd",
    "adaptd, no adaptation",
    "buy and hold",
    "strategy long",
    "equal weight",
    "best single (earlier half)",
    "Hedge",
    "Hedge (the task's own)",
    "UCB (river)",
    "UCB, restarted at shifts (river)",
    "Exp3 (river)",
    "Thompson (river)",
    "LinUCB (river, context)",
]


def strategy_tables(report: dict[str, Any]) -> list[str]:
    """Net Sharpe (PSR) of every method, then adaptd's Sortino, drawdown and turnover."""
    heads = [c.replace("strategy long", "vol-targeted long") for c in STRATEGY_COLUMNS]
    lines = [
        "| series | " + " | ".join(heads) + " |",
        "|---|" + "---:|" * len(heads),
    ]
    for name, r in report["series"].items():
        m = r["strategy"]["methods"]
        cells = [f"{m[c]['sharpe']:.2f} ({m[c]['psr']:.2f})" for c in STRATEGY_COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| series | best single, chosen early | adaptd Sortino | max drawdown | turnover "
        "| equal weight: Sortino / drawdown / turnover | adaptations | published | retired "
        "| adapt p50 / p99 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in report["series"].items():
        s = r["strategy"]
        a, e = s["methods"]["adaptd"], s["methods"]["equal weight"]
        q = s["adapt_ms"] or {"p50": float("nan"), "p99": float("nan")}
        lines.append(
            f"| {name} | {s['best_single_earlier']} | {a['sortino']:.2f} | "
            f"{a['max_drawdown']:.2f} | {a['turnover']:.3f} | {e['sortino']:.2f} / "
            f"{e['max_drawdown']:.2f} / {e['turnover']:.3f} | {s['adaptations']} | "
            f"{s['published']} | {s['retired']} | {q['p50']:.1f} / {q['p99']:.1f} |"
        )
    return lines


def _rates(v: dict[str, Any]) -> str:
    return " / ".join(
        f"{v[lv]['rate'] * 100:.1f}{'*' if v[lv]['rejected_at_5pct'] else ''}"
        for lv in ("0.01", "0.05")
    )
