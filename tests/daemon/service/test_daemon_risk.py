"""The risk task and continuous validation through the real daemon (real Tansu broker and
Redis): risk policies are published with the definition a subscriber needs to turn them into
a variance, VaR and expected shortfall with numpy alone, and a policy that loses to its
baseline is retired and the baseline published in its place."""

from __future__ import annotations

import math

import numpy as np
import pytest
from daemon_support import read_topic, run_over, segments_stream

from adaptd.adapters.forecasting import normal_var_es
from adaptd.daemon.core.policy import Policy, PolicyBook, decode_message

pytestmark = pytest.mark.integration

# Volatility that jumps tenfold and back (risk adaptations), then a strong trend and a market
# that stops trending: a return policy adapted to the trend loses at once, well before the
# next adaptation set is complete.
SEGMENTS = [
    (600, 0.0, 0.003),
    (300, 0.0, 0.03),
    (300, 0.0, 0.003),
    (300, 0.0, 0.03),
    (300, 0.0, 0.003),
    (400, 0.004, 0.005),
    (500, 0.0, 0.005),
]


async def test_risk_policies_are_published_validated_and_readable_by_a_subscriber(
    settings_factory,
) -> None:
    settings, topics = await settings_factory(
        adaptation={
            "tasks": ["return", "risk"],
            "task_options": {"risk": {"levels": [0.01, 0.05]}},
            "gate_z": 0.0,  # publish any improvement on the query set: validation judges
            "validate_z": 0.5,  # a hair-trigger, so that this short stream retires some
            "validate_min_examples": 10,
            "meta_interval_s": 0.3,
            "meta_min_items": 2,
        },
        replay={"capacity": 100_000, "episode_size": 16},
        kafka={"max_poll_records": 50},  # small batches: adaptation keeps pace with events
    )
    bootstrap = settings.kafka.bootstrap_servers
    events = segments_stream("S", SEGMENTS, seed=3)
    daemon = await run_over(settings, topics.input, events)

    messages = [decode_message(r.value) for r in await read_topic(bootstrap, topics.policies)]
    risk = [m for m in messages if m.model_id == "S/risk"]
    assert risk, "no risk policy was published"
    versions = [m.version for m in risk]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    for m in risk:
        assert m.task["name"] == "risk" and m.task["link"] == "exp"
        assert m.task["forecast"]["levels"] == [0.01, 0.05]
        assert m.task["forecast"]["calibration"]["gamma"] == 0.005
        assert "s2_t * H * exp(output)" in m.task["forecast"]["variance"]

    # What a subscriber does with numpy alone: the policy's output through the exp link is
    # the ratio to the EWMA variance s2_t, whose definition the message carries.
    book = PolicyBook()
    for m in messages:
        book.offer(m)
    latest = book.latest("S/risk")
    assert latest is not None
    ratio = float(latest.predict(np.zeros(len(latest.feature_names), np.float32)))
    assert ratio > 0
    s2_t, horizon = 1e-4, latest.message.task["label"]["horizon"]
    variance = s2_t * horizon * ratio
    var, es = normal_var_es(variance, 0.01)
    assert es > var > 0 and var == pytest.approx(2.326348 * math.sqrt(variance), rel=1e-5)

    # Continuous validation retired at least one policy and published its baseline.
    retired = [m for m in messages if m.validation]
    assert retired, "no policy was retired"
    by_version = {(m.model_id, m.version): m for m in messages}
    for m in retired:
        assert m.validation["replaced_by"] == "baseline"
        assert m.parent_version == m.validation["retired_version"]
        assert (m.model_id, m.parent_version) in by_version  # it replaces a published one
        assert "lost to the" in m.validation["reason"]
        zeros = np.zeros(len(m.features["names"]), np.float32)
        out = Policy(m).predict(zeros)  # the baseline: a constant network
        assert np.all(out == (1.0 if m.task["link"] == "exp" else 0.0))
    # The daemon serves what subscribers hold last, for every model.
    for part in daemon.ownership.partitions.values():
        for track in part.streams["S"].tracks:
            held = book.latest(track.model_id)
            assert held is not None and held.version == track.live.version
    assert daemon.metrics.retirements.labels(task=retired[0].task["name"])._value.get() >= 1
