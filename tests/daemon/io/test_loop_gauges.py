"""The daemon's own gauges that are set from the running event loop."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from adaptd.daemon.io.metrics import Metrics


def _gauge(m: Metrics, name: str) -> float:
    for family in text_string_to_metric_families(m.render().decode()):
        if family.name == name:
            return family.samples[0].value
    raise AssertionError(f"{name} not exported")


async def test_the_task_gauge_counts_the_loops_tasks() -> None:
    m = Metrics()
    assert _gauge(m, "adaptd_event_loop_tasks") == 0  # never sampled yet
    m.count_tasks()
    alone = _gauge(m, "adaptd_event_loop_tasks")
    assert alone >= 1  # this test's own task
    sleepers = [asyncio.create_task(asyncio.sleep(10)) for _ in range(3)]
    try:
        m.count_tasks()
        assert _gauge(m, "adaptd_event_loop_tasks") == alone + 3
    finally:
        for task in sleepers:
            task.cancel()
        await asyncio.gather(*sleepers, return_exceptions=True)
    m.count_tasks()
    assert _gauge(m, "adaptd_event_loop_tasks") == alone
