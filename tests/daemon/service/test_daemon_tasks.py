"""Two policy tasks on one stream, through the real daemon (real Tansu broker and Redis): the
return task and a task defined outside adaptd in one file (``tests/direction_task.py``), named
only in the settings. Each gets its own published policies, replay reservoir and checkpoint,
and a subscriber reads both."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from daemon_support import produce, read_topic, regime_stream, wait_until

from adaptd.daemon.core.policy import PolicyBook, decode_message
from adaptd.daemon.io.checkpoints import CheckpointStore
from adaptd.daemon.service.daemon import Daemon
from adaptd.replay.reservoir import ReservoirBuffer

pytestmark = pytest.mark.integration

TASKS = ["return", "direction_task:DirectionTask"]


def _published(daemon: Daemon) -> set[str]:
    return {r.task for r in daemon.publisher.history if r.published}


async def test_a_second_task_is_learned_and_published_beside_the_return_task(
    settings_factory, redis_client
) -> None:
    settings, topics = await settings_factory(
        adaptation={
            "tasks": TASKS,
            "gate_z": 0.0,  # any improvement publishes: the test is about the plumbing
            "meta_interval_s": 0.3,
            "meta_min_items": 2,
        },
        replay={"capacity": 100_000, "episode_size": 16},
    )
    bootstrap = settings.kafka.bootstrap_servers
    daemon = Daemon(settings)
    run = asyncio.create_task(daemon.run())
    await daemon.wait_started(run, 60)
    prefix, sealer = settings.redis.key_prefix, settings.signing.sealer()
    checkpoints = {
        "return": CheckpointStore(redis_client, prefix, sealer),
        "direction": CheckpointStore(redis_client, f"{prefix}.direction", sealer),
    }
    try:
        assert [m.name for m in daemon.services.models] == ["return", "direction"]
        await produce(bootstrap, topics.input, regime_stream("S", 700, 700, seed=4))

        async def both_published() -> bool:
            return _published(daemon) == {"return", "direction"}

        async def both_checkpointed() -> bool:
            return all([await c.load() is not None for c in checkpoints.values()])

        await wait_until(both_published, 90, "a policy of each task")
        await wait_until(both_checkpointed, 60, "a checkpoint of each task")
    finally:
        daemon.stop()
        await asyncio.wait_for(run, 60)

    messages = [decode_message(r.value) for r in await read_topic(bootstrap, topics.policies)]
    by_model = {m.model_id: m for m in messages}
    ret, direction = by_model["S"], by_model["S/direction"]
    assert ret.task["name"] == "return" and ret.architecture["in_dim"] == 9
    assert "out_dim" not in ret.architecture  # as before policy tasks
    assert direction.task["name"] == "direction" and direction.task["link"] == "softmax"
    assert direction.architecture["out_dim"] == 2
    assert direction.features["names"] == ["ret_z", "mean_fast_z", "vol_ratio"]
    assert direction.features["label"]["definition"].startswith("1 when")
    assert direction.shift is not None and ret.shift is not None

    book = PolicyBook()
    for message in messages:
        book.offer(message)
    up = book.latest("S/direction")
    assert up is not None
    probabilities = up.predict({"ret_z": 0.5, "mean_fast_z": 0.1, "vol_ratio": 0.0})
    assert probabilities.shape == (2,) and np.isclose(probabilities.sum(), 1.0)
    value = book.latest("S")
    assert value is not None and value.predict(np.zeros(9)).shape == ()

    # Each task's episodes went to its own reservoir, with its own features.
    for key, d in ((prefix, 9), (f"{prefix}.direction", 3)):
        reservoir = ReservoirBuffer(redis_client, prefix=key, capacity=100_000)
        episodes = await reservoir.sample(1000)
        assert episodes and {e.d for e in episodes} == {d}
    stored = await checkpoints["direction"].load()
    assert stored is not None and stored[1]["architecture"]["out_dim"] == 2
