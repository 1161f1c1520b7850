"""The demo's risk and strategy tables, and the two plot panels that show them: forecast
against realised volatility, and the strategy selected in each regime."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from rich.table import Table

from .served import Served

__all__ = [
    "draw_risk",
    "draw_strategy",
    "regime_choices",
    "risk_table",
    "runs",
    "strategy_table",
]

DASH = "–"


def risk_table(served: Sequence[Served]) -> Table:
    """QLIKE of what a subscriber held against the task's reference and RiskMetrics, and the
    VaR's hit rates."""
    table = Table(title="risk task: QLIKE of the next H returns' variance (lower is better)")
    for col in ("stream", "examples", "adaptd", "reference", "RiskMetrics", "VaR hits"):
        table.add_column(col, justify="left" if col == "stream" else "right")
    for s in served:
        if s.risk is None:
            continue
        q = s.risk.scores["qlike"]
        hits = " / ".join(
            f"{float(level) * 100:g} %: {rate * 100:.1f} %"
            for level, rate in s.risk.scores["var_hits"].items()
        )
        table.add_row(
            s.stream,
            f"{s.risk.scores['examples']:,}",
            *(f"{q[k]:.4f}" for k in ("adaptd", "reference", "RiskMetrics")),
            hits,
        )
    return table


def strategy_table(served: Sequence[Served]) -> Table:
    """Net Sharpe ratio (and the probabilistic Sharpe ratio) of the recommended position,
    next to the equal-weight ensemble, the volatility-targeted long and buy and hold."""
    table = Table(title="strategy task: net Sharpe ratio a year (probabilistic Sharpe ratio)")
    methods = ("adaptd", "equal weight", "vol-targeted long", "buy and hold")
    for col in ("stream", *methods, "selected per regime"):
        left = col in ("stream", "selected per regime")
        table.add_column(col, justify="left" if left else "right")
    for s in served:
        if s.strategy is None:
            continue
        m = s.strategy.scores
        table.add_row(
            s.stream,
            *(f"{m[k]['sharpe']:.2f} ({m[k]['psr']:.2f})" for k in methods),
            runs([name for _, _, name in regime_choices(s)]) or DASH,
        )
    return table


def runs(names: Sequence[str]) -> str:
    """``names`` in order, a repeat in successive stretches written once with its count.

    >>> runs(["long", "trend_20", "trend_20", "trend_20", "long"])
    'long, trend_20 (3 stretches), long'
    """
    return ", ".join(
        name if n == 1 else f"{name} ({n} stretches)"
        for name, n in ((k, len(list(g))) for k, g in itertools.groupby(names))
    )


def regime_choices(served: Served) -> list[tuple[int, int, str]]:
    """Per stretch between shifts: ``(first, last event, the strategy most often selected)``,
    "equal" where the subscriber held equal weights most of the time."""
    if served.strategy is None:
        return []
    selected = served.strategy.selected()
    ready = ~np.isnan(served.strategy.position)
    edges = [0, *sorted(s for s in served.shifts if 0 < s < len(selected)), len(selected)]
    out = []
    for lo, hi in itertools.pairwise(edges):
        picks = selected[lo:hi][ready[lo:hi]]
        if len(picks) == 0:
            continue
        top, _ = Counter(picks.tolist()).most_common(1)[0]
        out.append((lo, hi - 1, "equal" if top < 0 else served.strategy.names[top]))
    return out


def draw_risk(ax: Axes, when: np.ndarray, served: Served) -> None:
    """Forecast volatility per event against the realised one (both over the next H events)."""
    risk = served.risk
    if risk is None:
        return
    if len(risk.forecast) != len(when):
        raise ValueError(f"{len(when)} times for {len(risk.forecast)} forecasts")
    h = risk.horizon
    ax.plot(when, np.sqrt(risk.realised / h), color="0.6", linewidth=0.6, label="realised")
    ax.plot(when, np.sqrt(risk.reference / h), color="tab:green", linewidth=0.8, label="reference")
    ax.plot(when, np.sqrt(risk.forecast / h), color="tab:blue", linewidth=0.9, label="adaptd")
    ax.set_yscale("log")
    ax.set_ylabel(f"volatility per event\n(next {h} events)")
    ax.legend(loc="upper left", fontsize="small", ncols=3)
    ax.grid(True, which="major", alpha=0.3)


def draw_strategy(ax: Axes, when: np.ndarray, served: Served) -> None:
    """The recommended position, with the strategy selected in each regime written on it."""
    strategy = served.strategy
    if strategy is None:
        return
    ax.plot(when, strategy.position, color="tab:purple", linewidth=0.8, label="position")
    ax.axhline(0.0, color="0.5", linewidth=0.6)
    for lo, hi, name in regime_choices(served):
        mid = when[(lo + hi) // 2]
        ax.axvline(when[lo], color="tab:red", linewidth=0.6, alpha=0.5)
        ax.text(
            mid,
            0.95,
            name,
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="top",
            fontsize="x-small",
            rotation=90,
        )
    ax.set_ylabel("recommended\nposition")
    ax.grid(True, which="major", alpha=0.3)
