"""Crash and shutdown behaviour of ``adaptd run`` as a real child process.

SIGKILL mid-stream, restart, and every input offset up to the committed one has been
processed: each bad record is dead-lettered, each stream's examples are covered by stored
episodes (in the reservoir, or held out of training to measure retention) without a gap,
episodes are not counted twice, and policy versions only grow.
SIGTERM commits everything processed. A second signal exits at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import defaultdict

import pytest
from daemon_support import committed, produce_at, read_topic, regime_stream, wait_until

from adaptd.daemon.core.policy import decode_message
from adaptd.daemon.core.sealing import MAGIC
from adaptd.replay.holdout import HoldoutStore
from adaptd.replay.reservoir import ReservoirBuffer

pytestmark = pytest.mark.integration

STREAMS = ("AAA", "BBB", "CCC", "DDD")
BAD = b'{"v": 1, "stream": "AAA", "ts": 5, "price": -1}'


def _workload() -> list[tuple[bytes | None, bytes]]:
    """Four interleaved streams (two with a regime change) and a bad record every 97th."""
    per = {
        name: regime_stream(
            name,
            900,
            500 if i % 2 == 0 else 0,
            seed=10 + i,
            drift_after=0.02 if i % 2 == 0 else 0.0,
        )
        for i, name in enumerate(STREAMS)
    }
    events: list[tuple[bytes | None, bytes]] = []
    longest = max(len(v) for v in per.values())
    for j in range(longest):
        for name in STREAMS:
            if j < len(per[name]):
                events.append(per[name][j])
        if j % 97 == 0:
            events.append((b"AAA", BAD))
    return events


async def test_sigkill_mid_stream_then_restart_loses_nothing(
    settings_factory, daemon_process, redis_client
):
    settings, topics = await settings_factory(
        partitions=2,
        replay={"capacity": 100_000, "episode_size": 16},
        # A crashed member is noticed after 6 s (the shortest session Apache Kafka allows)
        # instead of 10.
        kafka={"commit_interval_ms": 100, "max_poll_records": 200, "session_timeout_ms": 6000},
    )
    bootstrap = settings.kafka.bootstrap_servers
    events = _workload()
    chunks = [events[i : i + 500] for i in range(0, len(events), 500)]

    first = daemon_process(settings)
    sent: list[tuple[tuple[int, int], tuple[bytes | None, bytes]]] = []
    await _produce_chunk(bootstrap, topics.input, chunks[0], sent)

    async def has_commit() -> bool:
        offsets = await committed(bootstrap, settings.kafka.group_id, topics.input, 2)
        return sum(max(o, 0) for o in offsets.values()) > 0

    await wait_until(has_commit, 90, "a first commit", every_s=0.1)
    for chunk in chunks[1:4]:
        await _produce_chunk(bootstrap, topics.input, chunk, sent)

    async def past_the_first_chunk() -> bool:
        offsets = await committed(bootstrap, settings.kafka.group_id, topics.input, 2)
        return sum(max(o, 0) for o in offsets.values()) > len(chunks[0])

    # Killed while it works through the later chunks (chunks[4:] arrive only after it).
    await wait_until(past_the_first_chunk, 90, "commits past the first chunk", every_s=0.05)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    before = await committed(bootstrap, settings.kafka.group_id, topics.input, 2)

    second = daemon_process(settings)
    for chunk in chunks[4:]:
        await _produce_chunk(bootstrap, topics.input, chunk, sent)
    ends = _ends(sent)

    async def all_committed() -> bool:
        offsets = await committed(bootstrap, settings.kafka.group_id, topics.input, 2)
        return all(offsets.get(p, -1) >= end for p, end in ends.items())

    await wait_until(all_committed, 120, "every offset committed after the restart")

    async def adapted() -> bool:
        # Offsets are committed with a shift's request still pending (it is in the snapshot):
        # the policy comes when the learner is done with it.
        return second.metric("adaptd_adaptations_in_flight") == 0

    await wait_until(adapted, 60, "the adaptations in flight to finish")
    outcomes = second.metric("adaptd_adaptations_total")
    published = second.metric("adaptd_adaptations_total", {"outcome": "published"})
    second.proc.send_signal(signal.SIGTERM)
    assert second.proc.wait(30) == 0, second.output()[-3000:]
    assert 0 < sum(max(o, 0) for o in before.values()) < len(events), (
        "the kill did not land mid-stream",
        before,
    )

    # 1. Every bad record was dead-lettered (redelivery may repeat some), nothing else was.
    bad = {(p, o) for p, o, (_, v) in _flat(sent) if v == BAD}
    dead = await read_topic(bootstrap, topics.deadletter, idle_s=2.0)
    dead_at = {
        (json.loads(r.value)["source"]["partition"], json.loads(r.value)["source"]["offset"])
        for r in dead
    }
    assert dead_at == bad

    # 2. Episodes: counted once, and per stream they cover every example offset without a gap,
    # each one holding exactly the stream's events in its offset range. The first episodes
    # of each regime are held out of the reservoir (and only there).
    reservoir = ReservoirBuffer(redis_client, prefix=settings.redis.key_prefix, capacity=100_000)
    stats = await reservoir.stats()
    assert stats.size == stats.seen
    episodes = await reservoir.sample(stats.size)
    assert len({e.id for e in episodes}) == stats.size
    c = settings.continual
    holdout = HoldoutStore(
        redis_client,
        prefix=settings.redis.key_prefix,
        per_regime=c.holdout_per_regime,
        max_regimes=c.holdout_max_regimes,
    )
    held = [e for regime in await holdout.held() for e in regime.episodes]
    assert held and not {e.id for e in held} & {e.id for e in episodes}
    episodes += held
    stream_offsets: dict[tuple[str, int], list[int]] = defaultdict(list)
    for p, o, (k, v) in _flat(sent):
        if v != BAD:
            stream_offsets[(k.decode(), p)].append(o)
    warmup = settings.features.warmup_events
    for (stream, partition), offsets in stream_offsets.items():
        mine = sorted((e for e in episodes if e.stream == stream), key=lambda e: e.first_offset)
        assert mine, f"no episode for {stream}"
        assert {e.partition for e in mine} == {partition}
        covered: set[int] = set()
        for e in mine:
            inside = [o for o in offsets if e.first_offset <= o <= e.last_offset]
            assert e.n == len(inside), f"{stream}: an offset inside {e.id} was skipped"
            covered.update(inside)
        expected = [o for o in offsets[warmup:] if o <= max(covered)]
        missing = sorted(set(expected) - covered)
        assert not missing, f"{stream}: examples at offsets {missing[:10]} never stored"
        tail = len(offsets) - offsets.index(max(covered)) - 1
        assert tail <= settings.replay.episode_size + settings.features.label_horizon

    # 3. Policies: versions only increase per model, in the order of the topic.
    # Whether an adaptation is published is the query gate's call, which depends on what the
    # killed daemon had meta-trained: the regime changes must have been adapted to, and every
    # policy the second daemon counted as published must be on the topic.
    policies = await read_topic(bootstrap, topics.policies, idle_s=2.0)
    assert policies or outcomes > 0, "the regime changes were never adapted to"
    assert len(policies) >= published
    last: dict[str, int] = {}
    for record in policies:
        message = decode_message(record.value)
        message.weight_bytes()
        assert message.version > last.get(message.model_id, 0)
        assert message.parent_version < message.version
        last[message.model_id] = message.version


async def _produce_chunk(bootstrap, topic, chunk, sent) -> None:
    sent.extend(zip(await produce_at(bootstrap, topic, chunk), chunk, strict=True))


def _flat(sent):
    return [(p, o, ev) for (p, o), ev in sent]


def _ends(sent) -> dict[int, int]:
    ends: dict[int, int] = {}
    for (p, o), _ in sent:
        ends[p] = max(ends.get(p, 0), o + 1)
    return ends


async def test_sigterm_commits_everything_processed(settings_factory, daemon_process, redis_client):
    settings, topics = await settings_factory(partitions=2)
    bootstrap = settings.kafka.bootstrap_servers
    events = [e for name in ("S1", "S2", "S3") for e in regime_stream(name, 300, 0, seed=7)]
    proc = daemon_process(settings)
    placed = await produce_at(bootstrap, topics.input, events)

    async def consumed() -> bool:
        try:
            return proc.metric("adaptd_events_total") >= len(events)
        except OSError:
            return False

    await wait_until(consumed, 60, "all events consumed")
    started = time.monotonic()
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.proc.wait(30) == 0, proc.output()[-3000:]
    assert time.monotonic() - started < settings.shutdown_grace_s + 5
    ends = _ends(list(zip(placed, events, strict=True)))
    got = await committed(bootstrap, settings.kafka.group_id, topics.input, 2)
    assert {p: got[p] for p in ends} == ends
    # The stream state behind each committed offset is in Redis.
    for p, end in ends.items():
        key = f"{settings.redis.key_prefix}:state:{settings.kafka.group_id}:{topics.input}:{p}"
        assert int(await redis_client.hget(key, "__offset__")) == end
        # Sealed (the daemon has a signing key): docs/security.md.
        states = {f: v for f, v in (await redis_client.hgetall(key)).items() if f[:2] == b"s:"}
        assert states and all(v.startswith(MAGIC) for v in states.values())
    log = [json.loads(line) for line in proc.output().splitlines() if line.startswith("{")]
    assert any(entry.get("event") == "adaptd stopped" for entry in log)


def test_second_signal_exits_at_once(tmp_path):
    script = tmp_path / "hang.py"
    script.write_text(
        textwrap.dedent("""
        import asyncio, sys
        from adaptd.daemon.cli import install_signal_handlers

        async def main():
            install_signal_handlers(lambda: print("stopping", flush=True))
            print("ready", flush=True)
            await asyncio.sleep(60)  # a shutdown that would hang

        asyncio.run(main())
    """)
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    assert proc.stdout.readline().strip() == "stopping"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(5) == 128 + signal.SIGTERM


def test_invalid_configuration_stops_with_exit_code_2():
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTD_")}
    env["ADAPTD_ADAPTATION__DEADLINE_S"] = "30"
    proc = subprocess.run(
        [sys.executable, "-m", "adaptd.daemon", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "adaptation.deadline_s" in proc.stderr


def test_unreachable_redis_stops_with_a_clear_message():
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTD_")}
    env["ADAPTD_REDIS__URL"] = "redis://127.0.0.1:1/0"
    env["ADAPTD_METRICS__PORT"] = "0"
    proc = subprocess.run(
        [sys.executable, "-m", "adaptd.daemon", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "adaptd: ConnectionError" in proc.stderr
    assert "127.0.0.1:1" in proc.stderr
