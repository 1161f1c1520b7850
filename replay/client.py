"""What the Redis-backed replay stores need of their client: binary replies, since episodes
are binary (msgpack), and a way to read the text among them.

>>> as_text(b"stored"), as_text("stored")
('stored', 'stored')
>>> import redis.asyncio as aioredis
>>> check_binary_client(aioredis.Redis(decode_responses=True))
Traceback (most recent call last):
...
ValueError: the Redis client must use decode_responses=False
"""

from __future__ import annotations

import redis.asyncio as aioredis

__all__ = ["as_text", "check_binary_client"]


def check_binary_client(client: aioredis.Redis) -> aioredis.Redis:
    """``client`` if it returns replies as bytes (a decoding client would garble episodes)."""
    if client.connection_pool.connection_kwargs.get("decode_responses"):
        raise ValueError("the Redis client must use decode_responses=False")
    return client


def as_text(value: str | bytes) -> str:
    """A reply or hash field from a binary client, as text."""
    return value.decode() if isinstance(value, bytes) else value
