"""The daemon's state in the real Redis: partition snapshots (only the given streams written,
with the offset, in one transaction), policy versions and latest policies, and the
meta-learner's checkpoint."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import pickle
import zlib

import msgpack
import pytest
import redis.asyncio as aioredis
from service_support import (
    MAX_BYTES,
    TOPIC,
    config_of,
    market_records,
    shifted,
    small_settings,
    weights,
)
from structlog.testing import capture_logs

from adaptd.daemon.core import state_format
from adaptd.daemon.core.effects import Effects
from adaptd.daemon.core.partition import PartitionState
from adaptd.daemon.core.policy import build_message
from adaptd.daemon.core.sealing import MAGIC, Sealer
from adaptd.daemon.core.stream import StreamState
from adaptd.daemon.io import stores
from adaptd.daemon.io.stores import PolicyStore, SnapshotStore
from adaptd.replay.episode import encode_episode

pytestmark = pytest.mark.integration

CONFIG = config_of(small_settings())


def streams(*names: str) -> PartitionState:
    part = PartitionState(TOPIC, 3, CONFIG, MAX_BYTES)
    for seed, name in enumerate(names):
        shifted(part, name, seed=seed)
    return part


def go_on_alike(part: PartitionState, offset: int, restored: dict[str, StreamState]) -> bool:
    """True when restored streams process the next events exactly as the originals do."""
    other = PartitionState(TOPIC, 3, CONFIG, MAX_BYTES)
    other.restore(restored, offset)
    recs = [r for seed, s in enumerate(restored) for r in market_records(s, 3, seed=seed, day=9)]
    recs = [dataclasses.replace(r, offset=offset + i) for i, r in enumerate(recs)]
    got, want = Effects(), Effects()
    other.process(recs, {}, got)
    part.process(recs, {}, want)
    return view(got) == view(want) and got.processed == len(recs)


def view(out: Effects) -> tuple:
    return (
        [s.id for s in out.shifts],
        [(task, encode_episode(e)) for task, e in out.episodes],
        [(r.id, r.support_x.tobytes(), r.query_y.tobytes()) for r in out.requests],
        out.examples,
    )


# -- snapshots --------------------------------------------------------------------------------


async def test_a_snapshot_round_trips_its_streams_and_offset(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    store = SnapshotStore(redis_client, key_prefix, "g1")
    assert await store.load(TOPIC, 3) is None
    part = streams("A", "B")
    written = await store.save(TOPIC, 3, 600, part.streams)
    assert set(written) == {"A", "B"} and min(written.values()) > 0
    loaded = await store.load(TOPIC, 3)
    assert loaded is not None
    offset, restored = loaded
    assert offset == 600
    assert sorted(restored) == ["A", "B"]
    pending = {name: state.tracks[0].live.pending for name, state in restored.items()}
    assert {n: p.id for n, p in pending.items() if p} == {  # the requests in flight, too
        n: s.tracks[0].live.pending.id for n, s in part.streams.items()
    }
    assert go_on_alike(part, offset, restored)
    # Keyed by group, topic and partition.
    assert await store.load(TOPIC, 4) is None
    assert await SnapshotStore(redis_client, key_prefix, "g2").load(TOPIC, 3) is None
    assert await redis_client.exists(store.key(TOPIC, 3)) == 1
    assert store.key(TOPIC, 3) == f"{key_prefix}:state:g1:{TOPIC}:3"


FIRED: list[str] = []


def _payload() -> None:
    FIRED.append("code ran")


class _Hostile:
    """A pickle that runs code when it is loaded (here, harmlessly)."""

    def __reduce__(self) -> tuple:
        return (_payload, ())


async def test_a_sealed_snapshot_refuses_states_written_by_anyone_without_the_key(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    refused: list[int] = []
    sealer = Sealer.derived(b"the group's signing key")
    store = SnapshotStore(redis_client, key_prefix, "g", sealer=sealer, on_reject=refused.append)
    part = streams("A", "B", "C")
    await store.save(TOPIC, 3, 600, part.streams)
    key = store.key(TOPIC, 3)
    assert (await redis_client.hget(key, "s:A")).startswith(MAGIC)
    # A writer to Redis without the key: a hostile pickle in A's place, B's sealed state
    # copied into C's place, and a stream of its own, unsealed.
    await redis_client.hset(
        key,
        mapping={
            "s:A": zlib.compress(pickle.dumps(_Hostile())),
            "s:C": await redis_client.hget(key, "s:B"),
            "s:D": zlib.compress(pickle.dumps(part.streams["A"])),
        },
    )
    with capture_logs() as logs:
        loaded = await store.load(TOPIC, 3)
    assert FIRED == []
    assert loaded is not None and sorted(loaded[1]) == ["B"]
    assert refused == [3]
    (entry,) = [e for e in logs if e["event"].startswith("stream states refused")]
    assert entry["streams"] == ["A", "C", "D"]
    restored = await store.restore(TOPIC, 3, limit=10)
    assert restored is not None and sorted(restored[1]) == ["B"]
    assert sorted(await store.fetch(TOPIC, 3, ["A", "B", "D"])) == ["B"]
    assert FIRED == []

    # Another key's seal does not open. Unsealed states (an older daemon's) are read only
    # when allowed, for the restart that upgrades: opt-in, since they are unchecked pickles.
    other = SnapshotStore(redis_client, key_prefix, "g", sealer=Sealer.derived(b"another key"))
    loaded = await other.load(TOPIC, 3)
    assert loaded is not None and loaded[1] == {}
    await redis_client.hdel(key, "s:A")
    unsealed = Sealer.derived(b"k", accept_unsealed=True)
    loaded = await SnapshotStore(redis_client, key_prefix, "g", sealer=unsealed).load(TOPIC, 3)
    assert loaded is not None and loaded[1] == {}  # D is a pickle: read only by leave
    migrating = SnapshotStore(redis_client, key_prefix, "g", sealer=unsealed, read_pickled=True)
    loaded = await migrating.load(TOPIC, 3)
    assert loaded is not None and sorted(loaded[1]) == ["D"]
    assert isinstance(loaded[1]["D"], StreamState)


async def test_a_pickle_written_to_redis_is_never_unpickled_without_leave(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    # No signing key (the default): before the typed format, this pickle ran its code.
    refused: list[int] = []
    store = SnapshotStore(redis_client, key_prefix, "g", on_reject=refused.append)
    part = streams("A", "B")
    await store.save(TOPIC, 3, 600, part.streams)
    key = store.key(TOPIC, 3)
    assert (await redis_client.hget(key, "s:A")).startswith(state_format.MAGIC)
    hostile_type = zlib.compress(
        msgpack.packb(msgpack.ExtType(8, msgpack.packb(["posix.system", ["true"], None])))
    )
    await redis_client.hset(
        key,
        mapping={
            "s:A": zlib.compress(pickle.dumps(_Hostile())),
            "s:C": state_format.MAGIC + hostile_type,
        },
    )
    with capture_logs() as logs:
        loaded = await store.load(TOPIC, 3)
    assert FIRED == []
    assert loaded is not None and sorted(loaded[1]) == ["B"]
    assert refused == [2]
    (entry,) = [e for e in logs if e["event"].startswith("stream states refused")]
    assert entry["streams"] == ["A", "C"]
    why = stores._decode(
        {n: await redis_client.hget(key, f"s:{n}") for n in "AC"}, Sealer(), key, False
    )
    assert "state.read_pickled_snapshots" in why["A"]
    assert "'posix.system', not a type it may hold" in why["C"]


async def test_an_earlier_versions_pickles_are_read_once_and_stored_typed(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    # The upgrade: states pickled by the version before, sealed with the group's key (read,
    # the key wrote them) or unsealed (read only by leave); the next save stores them typed.
    sealer = Sealer.derived(b"the group's signing key")
    part = streams("A", "B")
    store = SnapshotStore(redis_client, key_prefix, "g", sealer=sealer)
    key = store.key(TOPIC, 3)
    pickled = {n: zlib.compress(pickle.dumps(s, protocol=5), 1) for n, s in part.streams.items()}
    await redis_client.hset(
        key,
        mapping={
            "__offset__": b"600",
            "s:A": sealer.seal(f"{key}\x00A", pickled["A"]),
            "s:B": pickled["B"],
        },
    )
    loaded = await store.load(TOPIC, 3)
    assert loaded is not None and sorted(loaded[1]) == ["A"]
    assert go_on_alike(streams("A", "B"), 600, loaded[1])

    plain = SnapshotStore(redis_client, key_prefix, "g2", read_pickled=True)
    await redis_client.hset(
        plain.key(TOPIC, 3),
        mapping={"__offset__": b"600", **{f"s:{n}": blob for n, blob in pickled.items()}},
    )
    loaded = await plain.load(TOPIC, 3)
    assert loaded is not None and sorted(loaded[1]) == ["A", "B"]
    assert go_on_alike(streams("A", "B"), 600, loaded[1])
    await plain.save(TOPIC, 3, 600, loaded[1])
    stored = await redis_client.hmget(plain.key(TOPIC, 3), ["s:A", "s:B"])
    assert all(blob.startswith(state_format.MAGIC) for blob in stored)


async def test_a_state_that_cannot_be_read_is_refused_not_fatal(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    # Written by a newer version (a class this one lacks) or corrupt: the partition still
    # restores, and that stream starts afresh.
    refused: list[int] = []
    store = SnapshotStore(redis_client, key_prefix, "g", on_reject=refused.append)
    part = streams("A")
    await store.save(TOPIC, 3, 600, part.streams)
    body = zlib.decompress(state_format.dumps(part.streams["A"])[len(state_format.MAGIC) :])
    newer = body.replace(b"stream.StreamState", b"stream.StreamStat2")
    assert newer != body
    await redis_client.hset(
        store.key(TOPIC, 3),
        mapping={"s:B": state_format.MAGIC + zlib.compress(newer), "s:C": b"neither"},
    )
    with capture_logs() as logs:
        loaded = await store.load(TOPIC, 3)
    assert loaded is not None and sorted(loaded[1]) == ["A"]
    assert refused == [2]
    (entry,) = [e for e in logs if e["event"].startswith("stream states refused")]
    assert entry["streams"] == ["B", "C"] and "unreadable" in entry["reason"]


async def test_a_save_writes_only_the_given_streams_and_moves_the_offset(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    store = SnapshotStore(redis_client, key_prefix, "g")
    key = store.key(TOPIC, 3)
    part = streams("A", "B")
    await store.save(TOPIC, 3, 600, part.streams)
    a_before = await redis_client.hget(key, "s:A")
    b_before = await redis_client.hget(key, "s:B")
    part.process(market_records("B", 3, first_offset=600, day=1), {}, Effects())  # not A
    await store.save(TOPIC, 3, 900, {"B": part.streams["B"]})
    assert await redis_client.hget(key, "s:A") == a_before  # not written again
    assert await redis_client.hget(key, "s:B") != b_before
    loaded = await store.load(TOPIC, 3)
    assert loaded is not None
    offset, restored = loaded
    assert offset == 900
    assert sorted(restored) == ["A", "B"]
    assert go_on_alike(part, offset, restored)
    await store.save(TOPIC, 3, 950, {})  # nothing changed but the offset
    loaded = await store.load(TOPIC, 3)
    assert loaded is not None and loaded[0] == 950 and sorted(loaded[1]) == ["A", "B"]


async def test_a_save_is_one_transaction_with_the_offset(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    store = SnapshotStore(redis_client, key_prefix, "g")
    part = streams("A", "B")
    marker = f"{key_prefix}:saved"
    async with redis_client.monitor() as monitor:
        await store.save(TOPIC, 3, 600, part.streams)
        await redis_client.echo(marker)  # everything the save sent is seen before it
        seen = []
        while not seen or marker not in seen[-1]["command"]:
            seen.append(await monitor.next_command())
    key = store.key(TOPIC, 3)
    (hset,) = [c for c in seen if c["command"].startswith(f"HSET {key} ")]
    ours = [c["command"].split(" ", 1)[0] for c in seen if c["client_port"] == hset["client_port"]]
    assert ours[ours.index("MULTI") :][:3] == ["MULTI", "HSET", "EXEC"]
    fields = hset["command"].split(" ")
    assert fields[2:4] == ["__offset__", "600"]
    assert {"s:A", "s:B"} <= set(fields)


# -- policies ---------------------------------------------------------------------------------


def message(model: str, version: int, seed: int = 0):
    return build_message(
        model_id=model,
        version=version,
        parent_version=version - 1,
        stream=model.split("/")[0],
        weights=weights(3, seed=seed),
        architecture={"kind": "mlp", "in_dim": 3, "hidden": [4], "activation": "tanh"},
        features={"names": ["a", "b", "c"]},
    )


async def test_a_partition_of_many_streams_loads_in_chunks_without_holding_the_loop(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    """Issue 12, finding 3: restoring 50,000 streams held the event loop for 4 s at a time."""
    part = PartitionState(TOPIC, 3, CONFIG, MAX_BYTES)
    records = [
        dataclasses.replace(r, offset=i)
        for i, r in enumerate(r for n in range(300) for r in market_records(f"S{n}", 3, events=3))
    ]
    part.process(records, {}, Effects())
    store = SnapshotStore(redis_client, key_prefix, "g1", chunk=50)
    sizes = await store.save(TOPIC, 3, 900, part.streams)  # encoded on a thread: > 8 streams
    assert len(sizes) == 300

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    running = asyncio.create_task(ticker())
    loaded = await store.load(TOPIC, 3)
    running.cancel()
    assert loaded is not None and loaded[0] == 900 and set(loaded[1]) == set(part.streams)
    assert ticks >= 300 // 50  # the loop ran between the chunks, at least once per chunk

    fetched = await store.fetch(TOPIC, 3, ["S7", "S250", "nobody"])
    assert set(fetched) == {"S7", "S250"} and fetched["S7"].index == part.streams["S7"].index
    await store.forget(TOPIC, 3, [f"S{n}" for n in range(100)])
    left = await store.load(TOPIC, 3)
    assert left is not None and set(left[1]) == {f"S{n}" for n in range(100, 300)}


async def test_a_restore_reads_the_pending_streams_and_then_up_to_its_limit(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    part = streams("A", "B", "C", "D")
    store = SnapshotStore(redis_client, key_prefix, "g1", chunk=2)
    await store.save(TOPIC, 3, 1200, part.streams)  # as before: no pending list
    old = await store.restore(TOPIC, 3, limit=1)
    assert old is not None and set(old[1]) == {"A", "B", "C", "D"} and old[2] == []

    await store.save(TOPIC, 3, 1200, {}, pending=["D"])
    assert gc.isenabled()
    restored = await store.restore(TOPIC, 3, limit=2)
    assert gc.isenabled()  # paused while unpickling only
    assert restored is not None
    offset, loaded, left = restored
    assert offset == 1200 and "D" in loaded and len(loaded) == 2
    assert sorted([*loaded, *left]) == ["A", "B", "C", "D"]
    assert loaded["D"].index == part.streams["D"].index
    pending_only = await store.restore(TOPIC, 3, limit=0)
    assert pending_only is not None and list(pending_only[1]) == ["D"]
    assert await store.restore(TOPIC, 9, limit=5) is None


async def test_a_restore_with_a_limit_brings_back_the_streams_used_last(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    part = streams("A", "B", "C", "D")
    store = SnapshotStore(redis_client, key_prefix, "g1", chunk=2)
    await store.save(TOPIC, 3, 100, part.streams, pending=[])
    await store.save(TOPIC, 3, 200, {"B": part.streams["B"]}, pending=[])
    await store.save(TOPIC, 3, 300, {"D": part.streams["D"]}, pending=[])
    restored = await store.restore(TOPIC, 3, limit=2)
    assert restored is not None and set(restored[1]) == {"B", "D"}
    assert sorted(restored[2]) == ["A", "C"]
    await store.forget(TOPIC, 3, ["D"])
    fields = await redis_client.hkeys(store.key(TOPIC, 3))
    assert not any(f.endswith(b":D") for f in fields)  # its state and its recency
    again = await store.restore(TOPIC, 3, limit=2)
    assert again is not None and "B" in again[1] and "D" not in again[1]


async def test_policy_versions_only_increase_per_model_across_stores(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    store = PolicyStore(redis_client, key_prefix)
    assert [await store.next_version("S") for _ in range(3)] == [1, 2, 3]
    assert await store.next_version("S/direction") == 1
    restarted = PolicyStore(redis_client, key_prefix)  # another daemon, or a restart
    assert await restarted.next_version("S") == 4
    together = await asyncio.gather(*(s.next_version("S") for s in [store, restarted] * 10))
    assert sorted(together) == list(range(5, 25))


async def test_the_latest_policy_round_trips_per_model(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    store = PolicyStore(redis_client, key_prefix)
    assert await store.latest("S") is None
    first, other = message("S", 1), message("S/direction", 4, seed=2)
    await store.save_latest(first)
    await store.save_latest(other)
    assert await store.latest("S") == first
    assert await store.latest("S/direction") == other
    second = message("S", 2, seed=1)
    await store.save_latest(second)
    latest = await PolicyStore(redis_client, key_prefix).latest("S")
    assert latest == second
    assert latest is not None and latest.weight_bytes() == second.weight_bytes()


async def test_latest_policies_are_read_for_many_models_in_chunks(
    redis_client: aioredis.Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stores, "_CHUNK", 3)
    store = PolicyStore(redis_client, key_prefix)
    saved = [message(f"S{i}", i + 1, seed=i) for i in range(7)]
    for m in saved:
        await store.save_latest(m)
    await redis_client.hset(f"{key_prefix}:policy:latest", "broken", b"{not json")
    ids = ["nobody", *(m.model_id for m in saved), "broken"]
    with capture_logs() as logs:
        found = await store.latest_many(ids)
    assert found == {m.model_id: m for m in saved}  # none for nobody, nor for broken
    assert [e["model"] for e in logs] == ["broken"]
    assert await store.latest("broken") is None
    assert await store.latest_many([]) == {}
