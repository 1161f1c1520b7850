"""The adapted risk policy beats the unadapted one, through the real daemon (real Tansu broker
and Redis): after a volatility regime change that the task's reference cannot see (the
volume starts to predict the next return's variance), the policy adapted from the new
regime's first examples forecasts the later events' variance better than what a subscriber
held before it and better than the reference, as a subscriber computes it from the message.

The adaptation settings are those under which the benchmark's synthetic runs show the gain
(docs/benchmarks.md, "Risk adaptation"): Reptile, which adapts the whole network (ANIL's
head alone cannot pick up an input the initialisation learnt to ignore), 60 shots of which
20 are the query set, and 20 steps of 0.2, the learner serving its best iterate.
"""

from __future__ import annotations

import numpy as np
import pytest
from daemon_support import read_topic, run_over

from adaptd.adapters.forecasting import qlike
from adaptd.adapters.tasks.series import MarketSeries
from adaptd.daemon.config.settings import Settings
from adaptd.daemon.core.policy import PolicyMessage, decode_message
from adaptd.tools.feed import encode_row
from adaptd.tools.served import RiskServed, serve
from bench.markets.risk_regimes import volume_leads_variance

pytestmark = pytest.mark.integration

CALM, LOUD = 1500, 1000
ADAPTATION = {
    "tasks": ["risk"],
    "meta_algorithm": "reptile",
    "shots": 60,
    "query_size": 20,
    "inner_steps": 20,
    "inner_lr": 0.2,
    "gate_z": 0.0,  # the test judges on later events, not the gate on the query set
}


async def test_the_adapted_risk_policy_beats_the_unadapted_one_after_a_regime_change(
    settings_factory,
) -> None:
    settings, topics = await settings_factory(
        adaptation=ADAPTATION,
        features={"label_horizon": 1, "calendar": []},
        kafka={"max_poll_records": 50},
    )
    series = volume_leads_variance("V", CALM, LOUD, seed=11)
    n = len(series)
    events = [encode_row(series, i) for i in range(n)]
    await run_over(settings, topics.input, events, timeout_s=180)

    records = await read_topic(settings.kafka.bootstrap_servers, topics.policies)
    risk = [m for m in map(decode_message, (r.value for r in records)) if m.model_id == "V/risk"]
    adapted = [m for m in risk if not m.validation and m.shift and m.shift.index >= CALM - 10]
    assert adapted, f"no risk policy adapted to the new regime among {len(risk)}"
    policy = adapted[0]
    assert policy.shift is not None and policy.shift.index <= CALM + 60  # detected promptly
    assert policy.metrics["query_loss_after"] < policy.metrics["query_loss_before"]

    # Scored only on events after every example the adaptation saw, labels included.
    start = policy.source["last_offset"] + settings.features.label_horizon + 1
    before = [m for m in risk if m.version < policy.version]
    held = before[-1] if before else None  # what a subscriber held, or the reference
    rows = np.arange(start, n - 1)
    assert len(rows) > 700
    served = _served(series, settings, policy, start)
    adapted_q = _qlike(served, served.forecast, rows)
    reference_q = _qlike(served, served.reference, rows)
    held_q = (
        reference_q
        if held is None
        else _qlike(served, _served(series, settings, held, start).forecast, rows)
    )
    assert adapted_q < reference_q - 0.2, (adapted_q, reference_q)
    assert adapted_q < held_q - 0.2, (adapted_q, held_q)

    # What it learnt is the regime: a larger forecast after a high-volume event (the true
    # variance is 36 times the other's; the reference, following the returns, has no idea).
    log_ratio = np.log(served.forecast[rows] / served.reference[rows])
    high = series.volume[rows] > 3000.0
    assert log_ratio[high].mean() - log_ratio[~high].mean() > np.log(4.0)


def _served(
    series: MarketSeries, settings: Settings, policy: PolicyMessage, start: int
) -> RiskServed:
    """What a subscriber holding ``policy`` from event ``start`` forecast (the reference
    before), with the realised variances."""
    out = serve(series, settings, {"V/risk": [(start, policy)]}, len(series), [])
    assert out.risk is not None
    return out.risk


def _qlike(served: RiskServed, forecast: np.ndarray, rows: np.ndarray) -> float:
    """Mean QLIKE over ``rows`` of ``forecast`` against the realised variance, floored as
    the risk task floors it (at its default, 1 % of the reference)."""
    y = np.maximum(served.realised[rows], 0.01 * served.reference[rows])
    return float(np.mean(qlike(y, forecast[rows])))
