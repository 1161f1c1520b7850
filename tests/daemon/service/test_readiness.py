"""Readiness when writes fail but the servers still answer: a real Redis that is out of
memory refuses every write while PING succeeds. The daemon holds its place (nothing skipped,
nothing committed past what is unstored), /readyz says writes are failing after
metrics.write_wait_unready_s, and everything goes through once Redis has room again."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import redis.asyncio as aioredis
from daemon_support import produce, regime_stream, wait_until

from adaptd.daemon.service.daemon import Daemon
from adaptd.tools.embedded import EmbeddedRedis


async def _readyz(port: int) -> tuple[int, dict[str, bool]]:
    # From a thread: the probe is served by the daemon's own event loop, this one.
    return await asyncio.to_thread(_get_readyz, port)


def _get_readyz(port: int) -> tuple[int, dict[str, bool]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def test_a_full_redis_fails_readiness_until_writes_go_through(settings_factory):
    # A Redis of its own, never the shared one: the test fills it.
    with EmbeddedRedis(prefer_existing=False) as server:
        settings, topics = await settings_factory(
            redis={"url": server.url}, metrics={"write_wait_unready_s": 1.0}
        )
        client = aioredis.Redis.from_url(server.url)
        daemon = Daemon(settings)
        task = asyncio.create_task(daemon.run())
        await daemon.wait_started(task, 60)
        port = daemon.http_port
        assert port is not None
        reg = daemon.metrics.registry

        async def seen(n: int) -> bool:
            return daemon.events_seen >= n

        async def committed(offset: int) -> bool:
            return set(daemon.services.ownership.committed.values()) == {offset}

        async def ready() -> bool:
            return (await _readyz(port))[0] == 200

        async def writes_failing() -> bool:
            status, checks = await _readyz(port)
            return status == 503 and checks["writes_succeeding"] is False

        async def waiting_for(at_least_s: float) -> bool:
            value = reg.get_sample_value("adaptd_write_wait_seconds")
            return value is not None and value >= at_least_s

        async def gauge_down() -> bool:  # what is pending at a refresh waited milliseconds
            value = reg.get_sample_value("adaptd_write_wait_seconds")
            return value is not None and value < 1.0

        try:
            events = regime_stream("FULL", 600, 300, seed=4)
            await produce(settings.kafka.bootstrap_servers, topics.input, events[:200])
            await wait_until(lambda: seen(200), 60, "the first events")
            await wait_until(ready, 30, "ready")

            await client.config_set("maxmemory", 1)  # every write refused, PING answered
            await produce(settings.kafka.bootstrap_servers, topics.input, events[200:])
            await wait_until(writes_failing, 30, "/readyz to say writes fail")
            _, checks = await _readyz(port)
            assert checks["redis"] is True  # PING still answers: only this check tells
            await wait_until(lambda: waiting_for(1.0), 30, "the gauge to show the waiting write")
            # It held its place: nothing committed past what could not be stored.
            assert max(daemon.services.ownership.committed.values()) < len(events)

            await client.config_set("maxmemory", 0)
            await wait_until(lambda: committed(len(events)), 60, "the rest committed")
            await wait_until(ready, 30, "ready again")
            await wait_until(gauge_down, 30, "the gauge back under a second")
        finally:
            await client.config_set("maxmemory", 0)
            daemon.stop()
            await asyncio.wait_for(task, 60)
            await client.aclose()
