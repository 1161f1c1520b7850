"""Many distinct stream ids through the real daemon (Tansu, Redis): memory holds at most
``state.max_live_streams`` streams and Redis at most ``state.max_stored_streams`` per
partition, nothing is lost, and a stream that comes back after its eviction goes on where it
was (issue 12, finding 3: 50,000 stream ids grew the daemon by 480 MB and Redis by 93 MB,
never freed)."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from daemon_support import produce, wait_until

from adaptd.daemon.io.stores import SnapshotStore
from adaptd.daemon.service.daemon import Daemon

pytestmark = pytest.mark.integration

_enc = msgspec.json.Encoder()


def events(names: list[str], per: int, t0_ms: int) -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(per):
        for n, name in enumerate(names):
            price = 100.0 + (n % 7) + 0.01 * i
            value = {"v": 1, "stream": name, "ts": t0_ms + i * 60_000, "price": price}
            out.append((name.encode(), _enc.encode(value)))
    return out


async def test_thousands_of_stream_ids_stay_within_the_limits(settings_factory, redis_client):
    settings, topics = await settings_factory(
        state={"max_live_streams": 300, "max_stored_streams": 1500}
    )
    names = [f"id-{n:05d}" for n in range(3000)]
    first = events(names, 2, 1_700_000_000_000)
    daemon = Daemon(settings)
    task = asyncio.create_task(daemon.run())
    try:
        await daemon.wait_started(task, 60)
        await produce(settings.kafka.bootstrap_servers, topics.input, first)

        async def all_processed_and_committed() -> bool:
            own = daemon.services.ownership
            return daemon.events_seen >= len(first) and set(own.committed.values()) == {len(first)}

        await wait_until(all_processed_and_committed, 90, "every event processed and committed")
        await daemon.services.ownership.commit()
        own = daemon.services.ownership
        (part,) = own.partitions.values()
        assert len(part.streams) <= 300
        assert len(part.streams) + len(part.evicted) <= 1500
        key = SnapshotStore(redis_client, settings.redis.key_prefix, settings.kafka.group_id).key(
            topics.input, 0
        )
        fields = await redis_client.hkeys(key)
        assert len([f for f in fields if f.startswith(b"s:")]) <= 1500
        reg = daemon.metrics.registry
        assert reg.get_sample_value("adaptd_events_total", {"outcome": "processed"}) == len(first)
        assert reg.get_sample_value("adaptd_streams_forgotten_total") >= 1500

        # A stream evicted but still stored comes back where it was. (It may have been
        # forgotten before its second event and started again: what counts is what is stored.)
        back = next(iter(part.evicted))
        stored = await SnapshotStore(
            redis_client,
            settings.redis.key_prefix,
            settings.kafka.group_id,
            sealer=settings.signing.sealer(),
        ).fetch(topics.input, 0, [back])
        was = stored[back].index
        more = events([back], 1, 1_700_000_000_000 + 2 * 60_000)
        await produce(settings.kafka.bootstrap_servers, topics.input, more)
        await wait_until(
            lambda: asyncio.sleep(0, daemon.events_seen >= len(first) + 1), 30, "the comeback"
        )
        assert part.streams[back].index == was + 1
        assert reg.get_sample_value("adaptd_stream_restores_total") >= 1
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 60)
