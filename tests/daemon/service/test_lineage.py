"""A model's chain of policy versions stays linear across a crash (real daemon, real Tansu
broker and Redis).

Issue 12, finding 4: a policy published after the daemon's last snapshot and before it was
killed was unknown to the restarted daemon, which named the snapshot's version as the next
policy's parent: version 5 named version 3 although version 4 had been published, and a
subscriber following ``parent_version`` saw a fork. Here a first daemon adapts to a shift and
stops cleanly (its snapshot holds the version it published); then a newer policy of the model
is published behind its back, as the daemon would have published it before a crash (version
drawn from the model's counter, recorded as the model's latest, sent to the policy topic).
The restarted daemon meets further shifts on the same stream, and every policy it publishes
extends the chain from the injected version: each names the version just before it.
"""

from __future__ import annotations

import asyncio
from itertools import pairwise

import msgspec
import pytest
from aiokafka import TopicPartition
from daemon_support import produce, read_topic, run_over, segments_stream, wait_until

from adaptd.adapters.codec import params_from_bytes
from adaptd.daemon.core.policy import PolicyMessage, build_message, decode_message, encode_message
from adaptd.daemon.io.stores import PolicyStore, SnapshotStore
from adaptd.daemon.service.daemon import Daemon

pytestmark = pytest.mark.integration

STREAM = "AAA"
"""One stream, the return task only: its model id is the stream's."""
TASK = "return"

# (events, drift, volatility) of log returns: calm, a drift from 700, three times the
# volatility from 1400, calm again with a drift down from 2000. The market channels alone
# raise the shifts (the same ones whatever the timing; see test_daemon_detection).
SEGMENTS = [(700, 0.0, 0.001), (700, 0.0015, 0.001), (600, 0.0, 0.003), (600, -0.0015, 0.001)]
RESTART_AT = 1100
"""The first daemon sees the events before this one (the first shift, near 700, and its
policy); the restarted daemon sees the rest (shifts near 1400 and 2000)."""


def _of_model(records) -> list[PolicyMessage]:
    messages = [decode_message(r.value) for r in records]
    assert all(r.key == m.model_id.encode() for r, m in zip(records, messages, strict=True))
    return [m for m in messages if m.model_id == STREAM]


async def test_a_policy_published_after_the_snapshot_is_the_parent_of_the_next_one(
    settings_factory, redis_client
) -> None:
    settings, topics = await settings_factory(
        detection={"detectors": ["cusum"], "channels": ["returns", "volatility"], "skip": []},
        # No meta-training: every adaptation starts from the same initialisation, whenever
        # it runs.
        adaptation={"meta_interval_s": 3600.0},
        # A static member: the restart below takes its partitions back at once. A dynamic
        # one that leaves is kept by Tansu for about 7 s, and a member joining meanwhile waits
        # 18 s instead of 5.
        kafka={"group_instance_id": "lineage-0"},
    )
    bootstrap = settings.kafka.bootstrap_servers
    prefix = settings.redis.key_prefix
    events = segments_stream(STREAM, SEGMENTS, seed=3)

    # 1. A daemon adapts to the first shift, publishes, and stops cleanly: its snapshot
    # (stored, then committed) serves the version it published last.
    await run_over(settings, topics.input, events[:RESTART_AT], timeout_s=90)
    before = _of_model(await read_topic(bootstrap, topics.policies, idle_s=1.0))
    assert before, "the first daemon published no policy for the shift near event 700"
    last = max(before, key=lambda m: m.version)
    store = SnapshotStore(
        redis_client, prefix, settings.kafka.group_id, sealer=settings.signing.sealer()
    )
    snapshot = await store.load(topics.input, 0)
    assert snapshot is not None
    offset, streams = snapshot
    assert offset == RESTART_AT
    assert streams[STREAM].track(TASK).live.version == last.version

    # 2. A policy published after the snapshot, before a crash: drawn from the model's
    # counter, recorded as its latest and sent to the policy topic, as the daemon does it.
    policies = PolicyStore(redis_client, prefix)
    version = await policies.next_version(STREAM)
    assert version == last.version + 1
    injected = build_message(
        model_id=STREAM,
        version=version,
        parent_version=last.version,
        stream=STREAM,
        weights={k: v * 0.8 for k, v in params_from_bytes(last.weight_bytes()).items()},
        architecture=last.architecture,
        features=last.features,
        task=last.task,
        algorithm=last.algorithm,
        # Adapted for a shift of its own (not one the restarted daemon will see).
        shift=(
            None
            if last.shift is None
            else msgspec.structs.replace(last.shift, id=f"{last.shift.id}:after-snapshot")
        ),
        source=last.source,
    )
    await policies.save_latest(injected)
    await produce(bootstrap, topics.policies, [(STREAM.encode(), encode_message(injected))])
    assert (await policies.latest(STREAM)) == injected

    # 3. Restarted from the snapshot, the daemon serves the injected policy from the
    # partition's assignment on (Lineage.recover), then meets the later shifts of the stream.
    restarted = Daemon(settings)
    running = asyncio.create_task(restarted.run())
    try:
        await restarted.wait_started(running, 60)
        partition = TopicPartition(topics.input, 0)

        async def serves_injected() -> bool:
            live = [v for *_, v in restarted.ownership.models([partition])]
            return live == [injected.version]

        await wait_until(serves_injected, 60, "the restored stream to serve the injected policy")
        rest = events[RESTART_AT:]
        await produce(bootstrap, topics.input, rest)

        async def done() -> bool:
            return restarted.events_seen >= len(rest) and not restarted.publisher.inflight

        await wait_until(done, 90, "every event processed and every adaptation done")
    finally:
        restarted.stop()
        await asyncio.wait_for(running, 60)
    published = _of_model(await read_topic(bootstrap, topics.policies, idle_s=1.0))
    links = [(m.version, m.parent_version) for m in published]
    chain = sorted(published, key=lambda m: m.version)
    after = [m for m in chain if m.version > injected.version]
    assert after, f"the restarted daemon published no policy for the later shifts: {links}"

    # 4. One linear chain: versions strictly increase (in the topic's order too), and each
    # policy names the one published just before it, the first after the restart naming the
    # injected one.
    versions = [m.version for m in published]
    assert versions == sorted(set(versions)), links
    assert injected in published, links
    assert all(m.parent_version == prev.version for prev, m in pairwise(chain)), (
        f"the chain forks: (version, parent) {links}"
    )
    assert after[0].parent_version == injected.version, links
    assert (await policies.latest(STREAM)) == chain[-1]
