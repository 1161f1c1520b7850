"""Shared fixtures: a real Tansu broker and a real Redis for the whole session, and
factories for fresh topics and key prefixes so tests never see each other's data."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import redis.asyncio as aioredis

from adaptd.tools.embedded import EmbeddedKafka, EmbeddedRedis, create_topics


@pytest.fixture(scope="session")
def kafka() -> Iterator[EmbeddedKafka]:
    with EmbeddedKafka() as broker:
        yield broker


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka: EmbeddedKafka) -> str:
    return kafka.bootstrap_servers


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


TopicFactory = Callable[..., Awaitable[str]]


@pytest.fixture
def topic_factory(kafka_bootstrap: str) -> TopicFactory:
    """``await topic_factory("market", partitions=3)`` creates a topic with a unique name."""

    async def make(stem: str = "t", partitions: int = 1) -> str:
        name = f"{stem}.{uuid.uuid4().hex[:10]}"
        await create_topics(kafka_bootstrap, [name], partitions)
        return name

    return make


@pytest.fixture
def key_prefix() -> str:
    """A Redis key prefix unique to the test."""
    return f"adaptd-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def redis_client(redis_url: str, key_prefix: str) -> AsyncIterator[aioredis.Redis]:
    """A redis.asyncio client; every key under the test's prefix is deleted afterwards."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        keys = [k async for k in client.scan_iter(match=f"{key_prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()
