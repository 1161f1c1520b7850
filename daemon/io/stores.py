"""Durable daemon state in Redis, beside the replay reservoir and the checkpoint
(:mod:`.checkpoints`).

- ``SnapshotStore``: per input partition, the stream states and the next offset they
  correspond to. Written (changed streams only, in one MULTI/EXEC) before that offset is
  committed to Kafka, so a restart, a crash or a rebalance resumes the exact state.
- ``PolicyStore``: the version counter per model (INCR: versions only increase, across
  restarts and replicas) and the latest published policy per model, which also makes
  publication idempotent per shift after a crash, and lets a restarted daemon name the
  version subscribers hold last as the next policy's parent.

A stream's state is stored in a typed format that names only allowed types and runs no code
(:mod:`adaptd.daemon.core.state_format`), sealed with an HMAC when the daemon has a key
(:mod:`adaptd.daemon.core.sealing`): a blob whose seal does not match is never read; its
stream starts afresh, logged and counted. States an earlier adaptd stored as pickles are read
(:func:`adaptd.daemon.core.snapshot.loads_pickled`) only when sealed with this daemon's key,
or when ``state.read_pickled_snapshots`` allows it for the restart that upgrades; each is
stored typed at its stream's next save. Run Redis with authentication all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import redis.asyncio as aioredis

from ..core import state_format
from ..core.policy import PolicyError, PolicyMessage, decode_message, encode_message
from ..core.sealing import MAGIC as SEALED
from ..core.sealing import SealBroken, Sealer
from ..core.snapshot import loads_pickled
from ..core.stream import StreamState
from .logs import get_logger

log = get_logger("adaptd.stores")

_OFFSET = b"__offset__"
_PENDING = b"__pending__"
_STREAM = "s:"
_SAVED_AT = "r:"
"""Per stream, the partition offset its state was last saved at: a restore with a limit
brings back the streams used most recently (snapshots from before it: in stored order)."""


class SnapshotStore:
    """Partition snapshots under ``{prefix}:state:{group}:{topic}:{partition}``."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        group: str,
        chunk: int = 500,
        sealer: Sealer | None = None,
        on_reject: Callable[[int], object] | None = None,
        read_pickled: bool = False,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.group = group
        self.chunk = chunk
        """Streams per round trip when a partition is restored."""
        self.sealer = sealer if sealer is not None else Sealer()
        self.on_reject = on_reject
        """Called with the number of stream states refused (seal broken, or unreadable)."""
        self.read_pickled = read_pickled
        """Read pickled states without a seal (an earlier adaptd's): they can run code."""

    def key(self, topic: str, partition: int) -> str:
        return f"{self.prefix}:state:{self.group}:{topic}:{partition}"

    async def save(
        self,
        topic: str,
        partition: int,
        next_offset: int,
        streams: dict[str, StreamState],
        pending: list[str] | None = None,
    ) -> dict[str, int]:
        """Store the given (changed) streams and the offset atomically, with the names of the
        partition's streams that have an adaptation in flight (``pending``: they are restored
        first) and, per stream, the offset it was saved at (its recency); returns the bytes
        written per stream. Many streams are encoded on a thread (the caller holds the
        ownership lock, so nothing changes them meanwhile)."""
        key = self.key(topic, partition)
        blobs = await _off_the_loop_if_many(lambda s: _encode(s, self.sealer, key), streams)
        offset = str(next_offset).encode()
        mapping: dict[str | bytes, bytes] = {_OFFSET: offset}
        if pending is not None:
            mapping[_PENDING] = json.dumps(sorted(pending)).encode()
        mapping.update((_STREAM + name, blob) for name, blob in blobs.items())
        mapping.update((_SAVED_AT + name, offset) for name in blobs)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=mapping)
            await pipe.execute()
        return {name: len(blob) for name, blob in blobs.items()}

    async def load(self, topic: str, partition: int) -> tuple[int, dict[str, StreamState]] | None:
        """The stored (next_offset, streams), or None when the partition has no snapshot.
        Read ``chunk`` streams per round trip (HSCAN) and decoded on a thread, so a
        partition of many streams never holds the event loop for long."""
        key = self.key(topic, partition)
        offset = await self.client.hget(key, _OFFSET)
        if offset is None:
            return None
        streams: dict[str, StreamState] = {}
        cursor = 0
        while True:
            cursor, found = await self.client.hscan(
                key, cursor, match=f"{_STREAM}*", count=self.chunk
            )
            blobs = {f.decode()[len(_STREAM) :]: blob for f, blob in found.items()}
            streams.update(await self._read(key, blobs))
            if cursor == 0:
                break
        return int(offset), streams

    async def restore(
        self, topic: str, partition: int, limit: int
    ) -> tuple[int, dict[str, StreamState], list[str]] | None:
        """The stored next_offset, at most ``limit`` streams (those with an adaptation in
        flight first, whatever the limit, then the most recently saved), and the names of the
        others, left in Redis until their next event; None when the partition has no
        snapshot. The streams are read ``chunk`` at a time and decoded on a thread with the
        collector paused (a restore creates long-lived objects by the hundred thousand, and
        each full collection they trigger would hold the interpreter, and so the event loop,
        for seconds)."""
        key = self.key(topic, partition)
        offset, pending_raw = await self.client.hmget(key, [_OFFSET, _PENDING])
        if offset is None:
            return None
        prefix = _STREAM.encode()
        names = [
            f[len(prefix) :].decode() for f in await self.client.hkeys(key) if f.startswith(prefix)
        ]
        if pending_raw is None:
            # Written before the daemon noted its pending streams: only their states say.
            wanted = names
        else:
            known = set(names)
            first = [n for n in json.loads(pending_raw) if n in known]
            taken = set(first)
            rest, room = [n for n in names if n not in taken], max(limit - len(first), 0)
            if len(rest) > room:  # only then does the order matter
                rest = await self._by_recency(key, rest)
            wanted = first + rest[:room]
        streams: dict[str, StreamState] = {}
        with _collector_paused():
            for start in range(0, len(wanted), self.chunk):
                streams.update(
                    await self.fetch(topic, partition, wanted[start : start + self.chunk])
                )
        return int(offset), streams, [n for n in names if n not in streams]

    async def _by_recency(self, key: str, names: list[str]) -> list[str]:
        """``names``, the most recently saved first (unknown recency last, in stored order)."""
        seen: dict[str, int] = {}
        for start in range(0, len(names), _CHUNK):
            chunk = names[start : start + _CHUNK]
            raws = await self.client.hmget(key, [_SAVED_AT + n for n in chunk])
            seen.update((n, int(raw)) for n, raw in zip(chunk, raws, strict=True) if raw)

        def order() -> list[str]:  # stable: ties keep their order
            return sorted(names, key=lambda n: -seen.get(n, -1))

        # 100,000 names take tens of milliseconds to sort: off the loop, which the group's
        # heartbeat runs on (the GIL is handed back to it between the key's calls).
        return await asyncio.to_thread(order) if len(names) > _CHUNK else order()

    async def fetch(self, topic: str, partition: int, names: list[str]) -> dict[str, StreamState]:
        """The stored state of ``names`` (those that have one), decoded on a thread when
        there are many."""
        key = self.key(topic, partition)
        raws = await self.client.hmget(key, [_STREAM + n for n in names])
        blobs = {n: raw for n, raw in zip(names, raws, strict=True) if raw is not None}
        return await self._read(key, blobs)

    async def _read(self, key: str, blobs: dict[str, bytes]) -> dict[str, StreamState]:
        """The states of ``blobs``, but for those refused (logged and counted): their streams
        start afresh, and their next snapshot overwrites what was stored."""
        decoded = await _off_the_loop_if_many(
            lambda b: _decode(b, self.sealer, key, self.read_pickled), blobs
        )
        refused = {name: why for name, why in decoded.items() if isinstance(why, str)}
        if refused:
            log.error(
                "stream states refused: not read, the streams start afresh",
                key=key,
                streams=sorted(refused)[:20],
                count=len(refused),
                reason=next(iter(refused.values())),
            )
            if self.on_reject is not None:
                self.on_reject(len(refused))
        return {n: s for n, s in decoded.items() if not isinstance(s, str)}

    async def forget(self, topic: str, partition: int, names: list[str]) -> None:
        """Delete the stored state of ``names``, and their recency."""
        key = self.key(topic, partition)
        for start in range(0, len(names), _CHUNK):
            chunk = names[start : start + _CHUNK]
            await self.client.hdel(
                key, *(_STREAM + n for n in chunk), *(_SAVED_AT + n for n in chunk)
            )


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The collector paused while states are restored; then, in a process that freezes its
    long-lived objects (``adaptd run`` does, see ``tune_gc``), the restored states are frozen
    too. Otherwise the first full collection after a restore of tens of thousands of streams
    walks every object they hold, on the event loop (a second at 50,000 streams). Frozen
    states are still freed when evicted: they hold no reference cycles (river's Page-Hinkley
    did, see ``AcyclicPageHinkley``)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count():
            gc.freeze()
        if enabled:
            gc.enable()


_ON_THE_LOOP = 8
"""Streams encoded or decoded on the event loop at most (0.3 to 2 ms each); more go to a
thread."""


async def _off_the_loop_if_many(
    convert: Callable[[dict[str, Any]], dict[str, Any]], items: dict[str, Any]
) -> dict[str, Any]:
    if len(items) <= _ON_THE_LOOP:
        return convert(items)
    return await asyncio.to_thread(convert, items)


def _encode(streams: dict[str, StreamState], sealer: Sealer, key: str) -> dict[str, bytes]:
    return {
        name: sealer.seal(_place(key, name), state_format.dumps(s)) for name, s in streams.items()
    }


def _decode(
    blobs: dict[str, bytes], sealer: Sealer, key: str, read_pickled: bool
) -> dict[str, StreamState | str]:
    """Each stream's state, or why it was refused."""
    out: dict[str, StreamState | str] = {}
    for name, data in blobs.items():
        try:
            blob = sealer.open(_place(key, name), data)
        except SealBroken as exc:
            out[name] = str(exc)
            continue
        if blob.startswith(state_format.MAGIC):
            read: Callable[[bytes], Any] = state_format.loads
        elif blob[:1] != _PICKLED:
            out[name] = "unreadable: not a stored stream state"
            continue
        elif read_pickled or (sealer.seals and data.startswith(SEALED)):
            read = _unpickled
        else:
            # A pickle names code to run: read only one this daemon's key sealed, or by leave.
            out[name] = "a pickled state without this daemon's seal (state.read_pickled_snapshots)"
            continue
        try:
            out[name] = read(blob)
        except Exception as exc:  # written by another version, or corrupt: never fatal
            out[name] = f"unreadable: {exc!r}"[:300]
    return out


_PICKLED = b"\x78"
"""How the pickled states of earlier versions start (a zlib stream)."""


def _unpickled(blob: bytes) -> StreamState:
    return loads_pickled(zlib.decompress(blob))


def _place(key: str, name: str) -> str:
    """Where a stream's state is stored: its seal covers it."""
    return f"{key}\x00{name}"


class PolicyStore:
    """Version counters and the latest published policy per model."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    async def next_version(self, model_id: str) -> int:
        return int(await self.client.incr(f"{self.prefix}:policy:version:{model_id}"))

    async def save_latest(self, message: PolicyMessage) -> None:
        await self.client.hset(
            f"{self.prefix}:policy:latest", message.model_id, encode_message(message)
        )

    async def latest(self, model_id: str) -> PolicyMessage | None:
        """The model's latest policy (None when there is none, or it cannot be decoded)."""
        raw = await self.client.hget(f"{self.prefix}:policy:latest", model_id)
        return _decoded(model_id, raw)

    async def latest_many(self, model_ids: list[str]) -> dict[str, PolicyMessage]:
        """The latest policies of ``model_ids`` that have one, read in chunks."""
        out: dict[str, PolicyMessage] = {}
        for start in range(0, len(model_ids), _CHUNK):
            chunk = model_ids[start : start + _CHUNK]
            raws = await self.client.hmget(f"{self.prefix}:policy:latest", chunk)
            for model_id, raw in zip(chunk, raws, strict=True):
                message = _decoded(model_id, raw)
                if message is not None:
                    out[model_id] = message
        return out


_CHUNK = 500
"""Models per HMGET: one round trip each, none of them long."""


def _decoded(model_id: str, raw: bytes | None) -> PolicyMessage | None:
    if not raw:
        return None
    try:
        return decode_message(raw)
    except PolicyError as exc:
        # Retrying cannot mend it: the next publication overwrites it.
        log.error("stored latest policy cannot be decoded", model=model_id, error=str(exc))
        return None
