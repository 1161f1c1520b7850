"""Helpers the replay tests share (imported by name: tests/ is on the path)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis


class CountingClient:
    """A ``redis.asyncio.Redis`` whose connections count the packets they write: one per
    round trip (``sends``)."""

    def __init__(self, url: str) -> None:
        self.sends = 0
        owner = self

        class CountingConnection(aioredis.Connection):
            async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
                owner.sends += 1
                await super().send_packed_command(command, check_health)

        pool = aioredis.ConnectionPool.from_url(url, connection_class=CountingConnection)
        self.client = aioredis.Redis(connection_pool=pool)
