"""Cancelling tasks at shutdown: one that swallows its cancellation is cancelled again, and
one that never gives in is left behind with an error, so a shutdown always ends."""

from __future__ import annotations

import asyncio
import math

import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from adaptd.daemon.service.cancelling import cancel_all


def _stubborn(
    swallowed: dict[str, int], name: str, times: float, give_in: asyncio.Event | None = None
) -> asyncio.Task[None]:
    async def run() -> None:
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                swallowed[name] = swallowed.get(name, 0) + 1
                if swallowed[name] > times or (give_in is not None and give_in.is_set()):
                    raise

    return asyncio.create_task(run(), name=name)


async def test_a_task_that_swallows_its_cancellation_is_cancelled_again() -> None:
    swallowed: dict[str, int] = {}
    stubborn = _stubborn(swallowed, "meta-train", 1)
    plain = asyncio.create_task(asyncio.sleep(10), name="plain")
    await asyncio.sleep(0)
    with capture_logs() as logs:
        left = await asyncio.wait_for(cancel_all([stubborn, plain], patience_s=0.05), 5)
    assert left == [] and stubborn.cancelled() and plain.cancelled()
    assert swallowed == {"meta-train": 2}
    (entry,) = logs
    assert entry["task"] == "meta-train" and "cancelled again" in entry["event"]
    assert any("test_cancelling.py" in frame for frame in entry["where"])


async def test_a_task_that_never_gives_in_is_left_behind_and_said_so() -> None:
    swallowed: dict[str, int] = {}
    give_in = asyncio.Event()
    forever = _stubborn(swallowed, "forever", math.inf, give_in)
    await asyncio.sleep(0)
    with capture_logs() as logs:
        left = await asyncio.wait_for(cancel_all([forever], patience_s=0.01, tries=3), 5)
    assert left == [forever] and not forever.done()
    assert [e["log_level"] for e in logs] == ["warning"] * 3 + ["error"]
    # After the first try it was cancelled on every turn of the loop, not once a try.
    assert swallowed["forever"] > 3
    give_in.set()
    forever.cancel()
    await asyncio.gather(forever, return_exceptions=True)
    assert forever.cancelled()


async def test_the_first_cancellation_leaves_a_task_its_patience_to_clean_up() -> None:
    # A task that awaits its cleanup on cancellation is not cancelled again while the
    # cleanup takes less than the patience.
    cleaned = asyncio.Event()

    async def cleans_up() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)  # flushing, committing
            cleaned.set()
            raise

    task = asyncio.create_task(cleans_up())
    await asyncio.sleep(0)
    with capture_logs() as logs:
        left = await asyncio.wait_for(cancel_all([task], patience_s=0.5), 5)
    assert left == [] and cleaned.is_set() and task.cancelled()
    assert logs == []


async def test_tasks_already_done_are_collected_without_a_cancellation() -> None:
    async def fails() -> None:
        raise ValueError("its error is collected, not raised")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    assert task.done()
    with capture_logs() as logs:
        assert await cancel_all([task]) == []
    assert logs == []


@pytest.mark.integration
async def test_a_task_looping_on_redis_commands_is_stopped(
    redis_client: aioredis.Redis, key_prefix: str
) -> None:
    # redis-py swallows a cancellation that arrives while a command runs: such a task went on
    # after a single cancel in most tries here.
    key = f"{key_prefix}:k"
    await redis_client.set(key, b"x" * 2000)

    async def loop() -> None:
        while True:
            await redis_client.get(key)
            await asyncio.sleep(0)

    for _ in range(20):
        task = asyncio.create_task(loop())
        await asyncio.sleep(0.001)
        left = await asyncio.wait_for(cancel_all([task], patience_s=0.1), 5)
        assert left == [] and task.done()
