"""The meta-learner's checkpoint in Redis, so a restart resumes from the meta-learned
initialisation: its bytes (:mod:`adaptd.daemon.learner.checkpoint`'s format) and a JSON
description of them, each sealed as the partition snapshots are when the daemon has a key
(:mod:`adaptd.daemon.core.sealing`)."""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

from ..core.sealing import SealBroken, Sealer
from .logs import get_logger

__all__ = ["CheckpointStore"]

log = get_logger("adaptd.stores")


class CheckpointStore:
    """The meta-learner's state (bytes) and a JSON description of it, each sealed as the
    snapshots are when the daemon has a key: a checkpoint someone else wrote is never used."""

    def __init__(self, client: aioredis.Redis, prefix: str, sealer: Sealer | None = None) -> None:
        self.client = client
        self.key = f"{prefix}:meta:checkpoint"
        self.sealer = sealer if sealer is not None else Sealer()

    async def save(self, state: bytes, info: dict[str, Any]) -> None:
        described = json.dumps(info, sort_keys=True).encode()
        await self.client.hset(
            self.key,
            mapping={
                "state": self.sealer.seal(f"{self.key}\x00state", state),
                "info": self.sealer.seal(f"{self.key}\x00info", described),
            },
        )

    async def load(self) -> tuple[bytes, dict[str, Any]] | None:
        """The checkpoint; None when there is none, or when it is refused (its seal does not
        match, or it has none where seals are required: logged, meta-training starts afresh)."""
        raw = await self.client.hgetall(self.key)
        if b"state" not in raw:
            return None
        try:
            state = self.sealer.open(f"{self.key}\x00state", raw[b"state"])
            info = self.sealer.open(f"{self.key}\x00info", raw.get(b"info", b"{}"))
        except SealBroken as exc:
            log.error(
                "checkpoint refused: meta-training starts afresh", key=self.key, reason=str(exc)
            )
            return None
        return state, json.loads(info)
