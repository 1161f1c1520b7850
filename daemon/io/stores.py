"""Durable daemon state in Redis, beside the replay reservoir.

- ``SnapshotStore``: per input partition, the stream states and the next offset they
  correspond to. Written (changed streams only, in one MULTI/EXEC) before that offset is
  committed to Kafka, so a restart, a crash or a rebalance resumes the exact state.
- ``PolicyStore``: the version counter per model (INCR: versions only increase, across
  restarts and replicas) and the latest published policy per model, which also makes
  publication idempotent per shift after a crash, and lets a restarted daemon name the
  version subscribers hold last as the next policy's parent.
- ``CheckpointStore``: the meta-learned initialisation, so a restart resumes from it.

The snapshots are pickles (read through :func:`adaptd.daemon.core.snapshot.loads`, which also
reads those of earlier layouts): Redis is inside the daemon's trust boundary (whoever can
write these keys can also rewrite the policies the daemon publishes). Run Redis with
authentication and do not share the key prefix with untrusted writers.
"""

from __future__ import annotations

import json
import pickle
import zlib
from typing import Any

import redis.asyncio as aioredis

from ..core.policy import PolicyError, PolicyMessage, decode_message, encode_message
from ..core.snapshot import loads
from ..core.stream import StreamState
from .logs import get_logger

log = get_logger("adaptd.stores")

_OFFSET = b"__offset__"
_STREAM = "s:"


class SnapshotStore:
    """Partition snapshots under ``{prefix}:state:{group}:{topic}:{partition}``."""

    def __init__(self, client: aioredis.Redis, prefix: str, group: str) -> None:
        self.client = client
        self.prefix = prefix
        self.group = group

    def key(self, topic: str, partition: int) -> str:
        return f"{self.prefix}:state:{self.group}:{topic}:{partition}"

    async def save(
        self, topic: str, partition: int, next_offset: int, streams: dict[str, StreamState]
    ) -> int:
        """Store the given (changed) streams and the offset atomically; returns bytes written."""
        mapping: dict[str | bytes, bytes] = {_OFFSET: str(next_offset).encode()}
        for name, state in streams.items():
            mapping[_STREAM + name] = zlib.compress(pickle.dumps(state, protocol=5), 1)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self.key(topic, partition), mapping=mapping)
            await pipe.execute()
        return sum(len(v) for v in mapping.values())

    async def load(self, topic: str, partition: int) -> tuple[int, dict[str, StreamState]] | None:
        """The stored (next_offset, streams), or None when the partition has no snapshot."""
        raw = await self.client.hgetall(self.key(topic, partition))
        if not raw or _OFFSET not in raw:
            return None
        streams: dict[str, StreamState] = {}
        for field, blob in raw.items():
            name = field.decode()
            if name.startswith(_STREAM):
                streams[name[len(_STREAM) :]] = loads(zlib.decompress(blob))
        return int(raw[_OFFSET]), streams


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


class CheckpointStore:
    """The meta-learner's state (bytes) and a JSON description of it."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.key = f"{prefix}:meta:checkpoint"

    async def save(self, state: bytes, info: dict[str, Any]) -> None:
        await self.client.hset(
            self.key, mapping={"state": state, "info": json.dumps(info, sort_keys=True)}
        )

    async def load(self) -> tuple[bytes, dict[str, Any]] | None:
        raw = await self.client.hgetall(self.key)
        if b"state" not in raw:
            return None
        return raw[b"state"], json.loads(raw.get(b"info", b"{}"))
