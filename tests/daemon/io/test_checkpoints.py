"""The meta-learner's checkpoint in the real Redis: it round-trips and is replaced, and with
a key it is sealed, so one written without the key is refused."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from adaptd.daemon.core.sealing import MAGIC, Sealer
from adaptd.daemon.io.checkpoints import CheckpointStore

pytestmark = pytest.mark.integration


async def test_a_checkpoint_round_trips_and_is_replaced(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    store = CheckpointStore(redis_client, key_prefix)
    assert await store.load() is None
    info = {"architecture": {"kind": "mlp", "hidden": [32, 32]}, "meta_updates": 3}
    await store.save(b"\x00\xffstate", info)
    assert await store.load() == (b"\x00\xffstate", info)
    await store.save(b"newer", {"meta_updates": 4})
    assert await CheckpointStore(redis_client, key_prefix).load() == (
        b"newer",
        {"meta_updates": 4},
    )
    assert await CheckpointStore(redis_client, f"{key_prefix}.direction").load() is None


async def test_a_sealed_checkpoint_refuses_one_written_without_the_key(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    sealer = Sealer.derived(b"the group's signing key")
    store = CheckpointStore(redis_client, key_prefix, sealer)
    info = {"architecture": {"hidden": [32, 32]}, "meta_updates": 3}
    await store.save(b"state", info)
    assert await store.load() == (b"state", info)
    stored = await redis_client.hgetall(store.key)
    assert all(blob.startswith(MAGIC) for blob in stored.values())
    # Someone else's checkpoint (unsealed, another key's, or another model's moved here).
    other = CheckpointStore(redis_client, f"{key_prefix}.other", sealer)
    await other.save(b"theirs", info)
    for state in (
        b"theirs",
        Sealer.derived(b"another key").seal(f"{store.key}\x00state", b"theirs"),
        (await redis_client.hgetall(other.key))[b"state"],
    ):
        await redis_client.hset(store.key, "state", state)
        with capture_logs() as logs:
            assert await store.load() is None
        assert logs[0]["event"].startswith("checkpoint refused")
    # An altered description is refused too.
    await store.save(b"state", info)
    await redis_client.hset(store.key, "info", b'{"meta_updates": 99}')
    assert await store.load() is None
    # Upgrading to seals: the unsealed checkpoint is read once, by leave.
    await redis_client.hset(store.key, mapping={"state": b"old", "info": b"{}"})
    unsealed = Sealer.derived(b"the group's signing key", accept_unsealed=True)
    assert await CheckpointStore(redis_client, key_prefix, unsealed).load() == (b"old", {})
