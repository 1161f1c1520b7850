"""Static group membership (kafka.group_instance_id) with ``adaptd run`` as a child process:
SIGKILLed, restarted under the same id, it gets its partitions back and finishes the input,
every offset committed."""

from __future__ import annotations

import json

import pytest
from daemon_support import committed, produce_at, regime_stream, wait_until

pytestmark = pytest.mark.integration


async def test_a_static_member_killed_and_restarted_under_its_id_finishes_the_input(
    settings_factory, daemon_process
):
    settings, topics = await settings_factory(
        partitions=2, kafka={"group_instance_id": "replica-0"}
    )
    bootstrap = settings.kafka.bootstrap_servers
    group = settings.kafka.group_id
    events = [e for name in ("S1", "S2", "S3") for e in regime_stream(name, 400, 0, seed=5)]
    first = daemon_process(settings)
    placed = await produce_at(bootstrap, topics.input, events[:600])

    async def consumed(proc, n: int) -> bool:
        try:
            return proc.metric("adaptd_events_total") >= n
        except OSError:
            return False

    await wait_until(lambda: consumed(first, 300), 60, "the first daemon under way")
    first.proc.kill()
    first.proc.wait()
    placed += await produce_at(bootstrap, topics.input, events[600:])
    ends: dict[int, int] = {}
    for p, o in placed:
        ends[p] = max(ends.get(p, 0), o + 1)

    second = daemon_process(settings)

    async def all_committed() -> bool:
        got = await committed(bootstrap, group, topics.input, 2)
        return {p: got.get(p) for p in ends} == ends

    await wait_until(all_committed, 90, "every offset committed by the restarted member")
    log = [json.loads(line) for line in second.output().splitlines() if line.startswith("{")]
    assigned = [e for e in log if e.get("event") == "partitions assigned"]
    assert assigned, "the restarted member never logged an assignment"
