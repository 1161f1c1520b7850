"""What docs/replay.md promises about persistence, on private Redis servers: a torn AOF
rolls every key of the reservoir back to the same add, and a full Redis with noeviction
refuses an add without changing anything."""

from __future__ import annotations

import itertools
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import OutOfMemoryError

from adaptd.replay.reservoir import AddResult, ReservoirBuffer
from adaptd.tools.embedded import free_port, redis_server_binary

pytestmark = pytest.mark.integration


class PrivateRedis:
    """A redis-server child on a free port with its data in `folder`; restartable."""

    def __init__(self, folder: Path, *args: str) -> None:
        self.folder = folder
        self.args = args
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.folder / "redis.log").open("ab")
        command = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        self.proc = subprocess.Popen(
            [*command, "--dir", str(self.folder), "--save", "", *self.args],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((self.folder / "redis.log").read_text()) from None
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: Redis fsyncs the AOF and exits
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[Callable[..., PrivateRedis]]:
    started: list[PrivateRedis] = []

    def make(*args: str) -> PrivateRedis:
        server = PrivateRedis(tmp_path, *args)
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def _aof_with_commands(folder: Path) -> Path:
    # Redis 7 keeps the commands in appendonlydir/*.incr.aof; Redis 6 in appendonly.aof.
    found = sorted(folder.glob("appendonlydir/*.incr.aof")) or [folder / "appendonly.aof"]
    return found[-1]


async def test_a_torn_aof_rolls_back_all_keys_together_and_redelivery_repairs_it(
    private_redis, episode_factory, reservoir_snapshot
) -> None:
    server = private_redis("--appendonly", "yes", "--appendfsync", "always")
    episodes = [episode_factory(f"s{i % 3}", first_offset=10 * i) for i in range(12)]
    client = aioredis.Redis.from_url(server.url)
    buffer = ReservoirBuffer(client, prefix="p", capacity=20, rng=random.Random(0))
    await buffer.open()
    # One add per episode: add_many would put all of them in one MULTI/EXEC block.
    assert [await buffer.add(ep) for ep in episodes] == [AddResult.STORED] * 12
    await client.aclose()
    server.stop()

    # Tear the last add's MULTI/EXEC block in the middle, as a crash mid-write would.
    aof = _aof_with_commands(server.folder)
    data = aof.read_bytes()
    last_block = data.rindex(b"MULTI")
    aof.write_bytes(data[: last_block + 60])
    server.start()

    client = aioredis.Redis.from_url(server.url)
    try:
        buffer = ReservoirBuffer(client, prefix="p", capacity=20, rng=random.Random(1))
        snap = await reservoir_snapshot(client, buffer)  # every key agrees with the others
        assert snap.seen == 11
        assert sorted(snap.ids.values()) == sorted(ep.id for ep in episodes[:11])
        assert snap.marks[episodes[-1].source] == episodes[-4].last_offset
        # Redelivery: only the lost episode is new again.
        results = await buffer.add_many(episodes)
        assert results == [AddResult.DUPLICATE] * 11 + [AddResult.STORED]
        assert (await buffer.stats()).seen == 12
    finally:
        await client.aclose()


async def test_a_full_redis_refuses_an_add_without_a_partial_write(
    private_redis, episode_factory, reservoir_snapshot
) -> None:
    server = private_redis("--maxmemory-policy", "noeviction")
    client = aioredis.Redis.from_url(server.url)
    try:
        buffer = ReservoirBuffer(client, prefix="p", capacity=10_000, rng=random.Random(0))
        await buffer.open()
        episodes = (
            episode_factory(f"s{i % 5}", first_offset=10 * i, n=32, d=10) for i in range(10_000)
        )
        # Warm up first: the first adds also grow fixed structures (buffers, tables).
        for ep in itertools.islice(episodes, 20):
            await buffer.add(ep)
        used = (await client.info("memory"))["used_memory"]
        await client.config_set("maxmemory", used + 200_000)  # room for about 100 more
        accepted = 20
        refused = None
        for ep in episodes:
            try:
                await buffer.add(ep)
            except OutOfMemoryError as exc:
                refused = exc
                break
            accepted += 1
        assert refused is not None, "the episodes should not all fit"
        assert accepted > 70
        snap = await reservoir_snapshot(client, buffer)
        assert snap.seen == len(snap.slots) == accepted
        assert snap.marks[ep.source] < ep.last_offset  # the refused episode left no mark
    finally:
        await client.aclose()
