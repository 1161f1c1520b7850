"""A recurring regime is recognised by the running daemon (real Tansu broker and Redis)."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from daemon_support import produce, read_topic, segments_stream, wait_until

from adaptd.daemon.core.naming import REGIME_NAMES
from adaptd.daemon.core.policy import decode_message
from adaptd.daemon.service.daemon import Daemon
from adaptd.replay.reservoir import ReservoirBuffer

pytestmark = pytest.mark.integration

QUIET, UP = (0.0, 0.01), (0.03, 0.04)


def _count(daemon: Daemon, outcome: str) -> float:
    value = daemon.metrics.registry.get_sample_value("adaptd_regimes_total", {"outcome": outcome})
    return value or 0.0


async def test_a_recurring_regime_gets_the_same_regime_id_on_its_return(
    settings_factory, redis_client
) -> None:
    settings, topics = await settings_factory(
        # Every episode is kept, so the reservoir shows each segment's regime id.
        replay={"capacity": 100_000, "episode_size": 32}
    )
    bootstrap = settings.kafka.bootstrap_servers
    daemon = Daemon(settings)
    task = asyncio.create_task(daemon.run())
    await daemon.wait_started(task, 60)
    try:
        events = segments_stream("ACME", [(600, *QUIET), (500, *UP), (600, *QUIET)], seed=3)
        await produce(bootstrap, topics.input, events)

        async def known() -> bool:
            return _count(daemon, "known") >= 1

        async def settled() -> bool:
            return not daemon.publisher.inflight

        await wait_until(known, 90, "the calm regime's return to be recognised")
        await wait_until(settled, 30, "adaptations in flight to finish")
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 60)

    assert _count(daemon, "new") >= 1  # the trend was a new regime
    shifts = [
        msgspec.json.decode(r.value) for r in await read_topic(bootstrap, topics.shifts, idle_s=1.0)
    ]
    # One stream on one partition: offsets are event indices. (The error channel may add
    # shifts inside a segment; only the two real changes matter here.)
    assert any(600 <= s["index"] < 700 for s in shifts), shifts
    back = next(s for s in shifts if 1100 <= s["index"] < 1200)
    after_back = [s["index"] for s in shifts if s["index"] > back["index"]]
    until = after_back[0] if after_back else 10**9

    # The replay buffer holds each segment's episodes under its regime id: once the returning
    # calm segment's examples are classified, its episodes carry the first calm segment's id.
    reservoir = ReservoirBuffer(
        redis_client, prefix=settings.redis.key_prefix, capacity=settings.replay.capacity
    )
    episodes = await reservoir.sample(100_000)
    first_calm = {ep.regime for ep in episodes if ep.last_offset < 600}
    trend = {ep.regime for ep in episodes if ep.first_offset >= 760 and ep.last_offset < 1100}
    returned = {
        ep.regime
        for ep in episodes
        if ep.segment == back["segment"]
        and back["index"] + 60 <= ep.first_offset
        and ep.last_offset < until
    }
    assert first_calm == {0}
    assert trend and 0 not in trend
    assert returned == {0}

    # Published policies name the regime they were adapted for (a baseline published in
    # place of a retired policy was adapted for none).
    policies = [decode_message(r.value) for r in await read_topic(bootstrap, topics.policies)]
    for message in policies:
        assert (message.regime is None) == bool(message.validation), message.validation
        if message.regime is not None:
            assert message.regime.name in REGIME_NAMES
        if message.shift is not None and message.shift.id == back["id"]:
            assert (message.regime.id, message.regime.known) == (0, True)
