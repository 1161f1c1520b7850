"""The clients the daemon builds: Redis with a bounded pool, against a real Redis; the
consumer's group timeouts."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from pydantic import SecretStr

from adaptd.daemon.config.connections import RedisSettings
from adaptd.daemon.io.clients import make_redis


async def _connections_named(url: str, name: str) -> int:
    import redis.asyncio as aioredis

    admin = aioredis.Redis.from_url(url)
    try:
        clients = await admin.client_list()
        return sum(1 for c in clients if c.get("name") == name)
    finally:
        await admin.aclose()


async def test_a_burst_of_commands_shares_the_bounded_pool(redis_url: str) -> None:
    name = f"adaptd-pool-{uuid.uuid4().hex[:8]}"
    client = make_redis(RedisSettings(url=SecretStr(redis_url), max_connections=3))
    key = f"{name}:n"
    try:
        # Name each connection as it opens, so the server can count them.
        client.connection_pool.connection_kwargs["client_name"] = name

        async def bump() -> None:
            async with client.pipeline(transaction=True) as pipe:
                await pipe.incr(key).expire(key, 60).execute()

        await asyncio.gather(*(bump() for _ in range(200)))
        assert int(await client.get(key)) == 200  # every command ran
        # redis-py's default pool opens one per command in flight, up to 100, and fails the
        # rest (MaxConnectionsError): 200 at once would not even have run.
        assert 1 <= await _connections_named(redis_url, name) <= 3
    finally:
        await client.delete(key)
        await client.aclose()
    assert await _connections_named(redis_url, name) == 0  # closed with the client


def test_the_bound_is_a_setting_with_a_floor() -> None:
    assert RedisSettings().max_connections == 32
    with pytest.raises(ValueError, match="max_connections"):
        RedisSettings(max_connections=1)


async def test_the_consumer_heartbeats_three_times_a_session_timeout() -> None:
    """kafka.session_timeout_ms reaches the consumer, with heartbeats a third of it apart, as
    Kafka advises."""
    from adaptd.daemon.config.connections import KafkaSettings
    from adaptd.daemon.io.clients import make_consumer

    for session_ms in (6_000, 45_000):
        consumer = make_consumer(KafkaSettings(session_timeout_ms=session_ms))
        assert consumer._session_timeout_ms == session_ms
        assert consumer._heartbeat_interval_ms == session_ms // 3
        await consumer.stop()  # never started: closes what it holds
    with pytest.raises(ValueError, match="session_timeout_ms"):
        KafkaSettings(session_timeout_ms=500)
