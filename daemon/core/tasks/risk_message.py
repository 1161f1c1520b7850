"""What a risk policy's message says about its forecast, so that a subscriber computes it
with numpy alone: the reference variance ``s2_t`` (the fixed or fitted GARCH recursions and
the periodicity of :mod:`.variance`, or the features' fast EWMA) and the tail from which VaR
and expected shortfall follow. ``tests/daemon/core/tasks/test_variance.py`` recomputes the
reference from these words.

Pure: text and numbers only.
"""

from __future__ import annotations

from typing import Any

from adaptd.adapters.conformal import HIGH, LOW

from .variance import BLOCK, GarchGrid

__all__ = ["reference_definition", "tail_definition"]


_FAST = (
    "f_t, the fast EW mean of squared log returns per event, including event t: "
    "f_t = f_(t-1) + c (r_t^2 - f_(t-1)), c = 1 - 2^(-1/features.fast_halflife) "
    "(c = 1/(t-1) while that is larger: the first returns' plain mean)"
)


def reference_definition(
    reference: str, garch_a: float, garch_b: float, periodicity: float | None
) -> dict[str, Any]:
    """``task.forecast``'s definition of ``s2_t``, the reference variance, for a risk task's
    options of these names."""
    if reference == "ewma":
        return {"s2_t": "f_t", "f_t": _FAST}
    start = ", from g = f_t at the stream's first event with features"
    out: dict[str, Any] = {}
    if reference == "garch":
        out["s2_t"] = (
            "P_t * g_t: variance-targeting GARCH(1,1), "
            "g_t = (1 - a - b) vol_t^2 + a u_t^2 + b g_(t-1)" + start
        )
        out["a"], out["b"] = garch_a, garch_b
    else:
        out["s2_t"] = (
            "P_t * sqrt(g0_t * gk_t): variance-targeting GARCH(1,1) recursions, g_t = "
            "(1 - a - b - c / 2) vol_t^2 + (a + c [r_t < 0]) u_t^2 + b g_(t-1)"
            + start
            + ", one for each (a, b, c) of grid; g0 is grid[0]'s, gk the one with the least "
            "sum of q = y_j / (P1_(j-1) g_(j-1)) - log(y_j / (P1_(j-1) g_(j-1))) - 1 over the "
            "events 0 < j <= T (QLIKE of its one-step forecasts, y_j = max(r_j^2, floor * "
            "f_(j-1))), the first on ties; events are numbered from 0 at the stream's first "
            "event with features, and T is the latest multiple of block up to t (gk = g0 "
            "before event block)"
        )
        out["block"] = BLOCK
        out["grid"] = [list(abc) for abc in GarchGrid((garch_a, garch_b)).grid]
    if periodicity is None:
        out["u_t"], out["P_t"], out["P1_t"] = "r_t", "1", "1"
    else:
        out["u_t"] = "r_t / sqrt(p_t): p_t the factor of event t's UTC hour known before it"
        out["P_t"] = "the mean factor of the next H events' hours (P1_t: of the next one's)"
        out["periodicity"] = {
            "factor": "m_h * (hours seen) / (sum of m over the hours seen); 1 if h is not seen",
            "m_h": "EW mean of r_t^2 / vol_t^2 over the events at UTC hour h (from ts_ms; one "
            "bucket if the event has no time), weight max(1 / (visits + 1), alpha) on the "
            "newest, starting at 1",
            "alpha": 1.0 - 0.5 ** (1.0 / periodicity),
            "next hour": "the hour that followed the given hour most recently; itself if none",
        }
    out["vol_t"] = (
        "the features' vol: the slow EW root mean square of log returns, including event t "
        "(features.slow_halflife)"
    )
    out["f_t"] = _FAST
    return out


def tail_definition(dof: float | None, calibration: float | None = None) -> dict[str, Any]:
    """``task.forecast``'s definition of VaR and expected shortfall at each level ``a`` from
    the variance, taken at the tail probability ``p``: ``a`` itself, or with ``calibration``
    adaptive conformal inference's ``a_t`` (:mod:`adaptd.adapters.conformal`)."""
    if dof is None:
        out: dict[str, Any] = {
            "distribution": "normal, mean 0",
            "var": "VaR_a = -Phi^-1(p) * sqrt(variance)",
            "expected_shortfall": "ES_a = phi(Phi^-1(p)) / p * sqrt(variance)",
        }
    else:
        out = {
            "distribution": "Student t, mean 0, dof degrees of freedom, scaled to the variance",
            "dof": dof,
            "var": "VaR_a = -T^-1(p) * s, s = sqrt(variance * (dof - 2) / dof)",
            "expected_shortfall": "ES_a = t(q) / p * (dof + q^2) / (dof - 1) * s, q = T^-1(p)",
        }
    if calibration is None:
        out["p"] = "a"
        return out
    out["p"] = f"min(max(a_t, {LOW:g}), {HIGH:g})"
    out["calibration"] = {
        "method": "adaptive conformal inference (Gibbs and Candes, 2021)",
        "gamma": calibration,
        "a_t": "a + gamma * (a * m_t - v_t), per level: m_t counts the events j with a VaR "
        "whose outcome is known at event t (j + H <= t; the outcome is the sum of the log "
        "returns of events j+1..j+H), v_t those among them whose outcome was below -VaR_j",
        "from": "the stream's first event with features (a_t = a before any outcome)",
    }
    return out
