"""Concurrent writers on separate connections (asyncio tasks, then OS processes): every
distinct episode is counted exactly once and the reservoir's keys stay consistent."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections import Counter, defaultdict

import pytest
import redis.asyncio as aioredis

from adaptd.replay.reservoir import AddResult, ReservoirBuffer

pytestmark = pytest.mark.integration

CAPACITY = 50
Item = tuple[str, int, int]  # (stream, partition, first_offset) of a 2-example episode on topic t


def _own_sequence(writer: int, per_source: int) -> list[Item]:
    # Writer w owns partition w and its two sources (streams a and b), offsets increasing.
    return [(s, writer, 10 * i) for i in range(per_source) for s in ("a", "b")]


def _plan(writer: int, writers: int, per_source: int, seed: int) -> list[list[Item]]:
    """What one writer sends, in batches: its own episodes with random re-sends of ones it
    already sent, interleaved with a full in-order redelivery of the next writer's episodes
    (so every source is written by two writers at once)."""
    rng = random.Random(seed * 1000 + writer)
    own = _own_sequence(writer, per_source)
    other = _own_sequence((writer + 1) % writers, per_source)
    sent: list[Item] = []
    i = j = 0
    while i < len(own) or j < len(other):
        if j == len(other) or (i < len(own) and rng.random() < 0.5):
            sent.append(own[i])
            if rng.random() < 0.3:
                sent.append(own[rng.randrange(i + 1)])
            i += 1
        else:
            sent.append(other[j])
            j += 1
    batches = []
    while sent:
        size = rng.randint(1, 8)
        batches.append(sent[:size])
        sent = sent[size:]
    return batches


def _item_id(item: Item) -> str:
    stream, partition, first = item
    return f"t:{partition}:{stream}:{first}-{first + 1}"


async def _write(url: str, prefix: str, seed: int, batches: list[list[Item]], factory) -> list:
    client = aioredis.Redis.from_url(url)  # its own pool, so its own connection
    buffer = ReservoirBuffer(client, prefix=prefix, capacity=CAPACITY, rng=random.Random(seed))
    try:
        await buffer.open()
        out = []
        for batch in batches:
            episodes = [factory(s, first_offset=o, partition=p) for s, p, o in batch]
            if len(episodes) == 1:
                results = [await buffer.add(episodes[0])]
            else:
                results = await buffer.add_many(episodes)
            out += [(ep.id, r.value) for ep, r in zip(episodes, results, strict=True)]
        return out
    finally:
        await client.aclose()


WRITER_PROCESS = """
import asyncio, json, random, sys
import numpy as np
import redis.asyncio as aioredis
from adaptd.replay import Episode, ReservoirBuffer

spec = json.loads(sys.stdin.readline())

def episode(stream, partition, first):
    return Episode.from_arrays(
        stream=stream, segment=0, topic="t", partition=partition, offsets=[first, first + 1],
        ts_ms=[first, first + 1], x=np.full((2, 3), first), y=np.zeros(2))

async def main():
    client = aioredis.Redis.from_url(spec["url"])
    buffer = ReservoirBuffer(client, prefix=spec["prefix"], capacity=spec["capacity"],
                             rng=random.Random(spec["seed"]))
    await buffer.open()
    # Start together: Python and numpy take longer to import than the writes take.
    print("ready", flush=True)
    assert sys.stdin.readline().strip() == "go"
    out = []
    for batch in spec["batches"]:
        episodes = [episode(*item) for item in batch]
        results = await buffer.add_many(episodes)
        out += [[ep.id, r.value] for ep, r in zip(episodes, results)]
    await client.aclose()
    json.dump(out, sys.stdout)

asyncio.run(main())
"""


async def _start_writer_process(
    url: str, prefix: str, seed: int, batches: list[list[Item]]
) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WRITER_PROCESS,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    spec = {"url": url, "prefix": prefix, "capacity": CAPACITY, "seed": seed, "batches": batches}
    proc.stdin.write(json.dumps(spec).encode() + b"\n")
    await proc.stdin.drain()
    ready = await proc.stdout.readline()
    if ready.strip() != b"ready":
        _, err = await proc.communicate()
        pytest.fail(f"writer process did not start: {err.decode()}")
    return proc


async def _finish_writer_process(proc: asyncio.subprocess.Process) -> list:
    out, err = await proc.communicate(b"go\n")
    assert proc.returncode == 0, err.decode()
    return [tuple(pair) for pair in json.loads(out)]


async def _check(
    client: aioredis.Redis, prefix: str, writers: int, per_source: int, outputs: list, read_back
) -> None:
    sequences = [_own_sequence(w, per_source) for w in range(writers)]
    distinct = {_item_id(item) for sequence in sequences for item in sequence}
    accepted: Counter[str] = Counter()
    for pairs in outputs:
        for ep_id, result in pairs:
            assert ep_id in distinct
            if result != AddResult.DUPLICATE:
                accepted[ep_id] += 1
    assert set(accepted) == distinct, "an episode was never counted"
    assert set(accepted.values()) == {1}, "an episode was counted twice"

    buffer = ReservoirBuffer(client, prefix=prefix, capacity=CAPACITY)
    snap = await read_back(client, buffer)  # also checks slots, owners, sets and counts agree
    stats = await buffer.stats()
    assert snap.seen == stats.seen == len(distinct)
    assert len(snap.slots) == stats.size == min(len(distinct), CAPACITY)
    assert sum(stats.per_stream.values()) == stats.size
    assert set(snap.ids.values()) <= distinct
    last_offsets: defaultdict[str, int] = defaultdict(int)
    for sequence in sequences:
        for stream, partition, first in sequence:
            source = f"t:{partition}:{stream}"
            last_offsets[source] = max(last_offsets[source], first + 1)
    assert snap.marks == last_offsets


async def test_concurrent_tasks_on_separate_connections(
    redis_url: str,
    redis_client: aioredis.Redis,
    key_prefix: str,
    episode_factory,
    reservoir_snapshot,
) -> None:
    writers = 8
    plans = [_plan(w, writers, per_source=20, seed=1) for w in range(writers)]
    outputs = await asyncio.gather(
        *(_write(redis_url, key_prefix, w, plan, episode_factory) for w, plan in enumerate(plans))
    )
    await _check(redis_client, key_prefix, writers, 20, list(outputs), reservoir_snapshot)


async def test_concurrent_os_processes(
    redis_url: str, redis_client: aioredis.Redis, key_prefix: str, reservoir_snapshot
) -> None:
    writers = 3
    plans = [_plan(w, writers, per_source=150, seed=2) for w in range(writers)]
    procs = await asyncio.gather(
        *(_start_writer_process(redis_url, key_prefix, w, plan) for w, plan in enumerate(plans))
    )
    outputs = await asyncio.gather(*(_finish_writer_process(p) for p in procs))
    await _check(redis_client, key_prefix, writers, 150, list(outputs), reservoir_snapshot)
