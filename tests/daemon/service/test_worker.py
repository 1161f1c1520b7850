from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest
import torch

from adaptd.daemon.learner.learners import use_threads
from adaptd.daemon.service.worker import ADAPT, BACKGROUND, TorchWorker, WorkerClosed


async def wait_event(event: threading.Event) -> None:
    assert await asyncio.to_thread(event.wait, 10.0), "the worker never got there"


def blocker(started: threading.Event, release: threading.Event) -> Callable[[], str]:
    def job() -> str:
        started.set()
        assert release.wait(10.0)
        return "first"

    return job


async def test_results_reach_the_awaiting_coroutine() -> None:
    worker = TorchWorker()
    try:
        assert await worker.submit(sum, [1, 2, 3]) == 6
        assert await worker.submit(divmod, 17, 5) == (3, 2)
        # The job ran on the worker thread, not on the loop's.
        name = await worker.submit(lambda: threading.current_thread().name)
        assert name == worker.name != threading.current_thread().name
    finally:
        await worker.aclose()


async def test_exceptions_reach_the_awaiting_coroutine() -> None:
    worker = TorchWorker()
    error = ValueError("bad task 7")

    def fail() -> None:
        raise error

    try:
        with pytest.raises(ValueError, match="bad task 7") as info:
            await worker.submit(fail)
        assert info.value is error
        assert await worker.submit(int, "5") == 5  # the worker survived
    finally:
        await worker.aclose()


async def test_adaptations_run_before_queued_background_jobs() -> None:
    worker = TorchWorker()
    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    def record(name: str) -> str:
        order.append(name)
        return name

    try:
        first = worker.submit(blocker(started, release), priority=BACKGROUND)
        await wait_event(started)  # the worker holds the first job now
        futures = [worker.submit(record, f"meta{i}", priority=BACKGROUND) for i in range(3)]
        futures.append(worker.submit(record, "adapt", priority=ADAPT))
        futures.append(worker.submit(record, "meta3", priority=BACKGROUND))
        assert worker.busy
        release.set()
        assert await first == "first"
        assert await asyncio.gather(*futures) == ["meta0", "meta1", "meta2", "adapt", "meta3"]
        # Priority first, then submission order.
        assert order == ["adapt", "meta0", "meta1", "meta2", "meta3"]
    finally:
        release.set()
        await worker.aclose()


async def test_cancelled_jobs_are_skipped() -> None:
    worker = TorchWorker()
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []
    try:
        first = worker.submit(blocker(started, release))
        await wait_event(started)
        dropped = worker.submit(ran.append, "dropped")
        kept = worker.submit(ran.append, "kept")
        dropped.cancel()
        release.set()
        await first
        await kept
        assert ran == ["kept"]
        assert dropped.cancelled()
    finally:
        release.set()
        await worker.aclose()


async def test_submit_after_aclose_raises() -> None:
    worker = TorchWorker()
    assert await worker.submit(abs, -2) == 2
    await worker.aclose()
    with pytest.raises(WorkerClosed):
        worker.submit(abs, -3)
    never_started = TorchWorker()
    await never_started.aclose()
    with pytest.raises(WorkerClosed):
        never_started.submit(abs, -3)


async def test_aclose_finishes_the_queued_jobs() -> None:
    worker = TorchWorker()
    started, release = threading.Event(), threading.Event()
    first = worker.submit(blocker(started, release))
    await wait_event(started)
    later = [worker.submit(pow, 2, k, priority=BACKGROUND) for k in range(4)]
    closing = asyncio.ensure_future(worker.aclose())
    await asyncio.sleep(0)
    release.set()
    await closing
    assert await first == "first"
    assert await asyncio.gather(*later) == [1, 2, 4, 8]


@pytest.mark.parametrize("threads", [1, 3])
async def test_the_initializer_runs_on_the_worker_thread_first(threads: int) -> None:
    before = torch.get_num_threads()
    worker = TorchWorker(lambda: torch.set_num_threads(threads))
    try:
        assert await worker.submit(torch.get_num_threads) == threads
    finally:
        await worker.aclose()
        torch.set_num_threads(before)  # in case the setting is process-wide


def test_use_threads_caps_torchs_threads_where_it_runs() -> None:
    before = torch.get_num_threads()
    try:
        use_threads(2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_the_service_does_not_import_torch() -> None:
    # Torch lives in the learner process; the daemon's own process stays free of it (and of
    # the GIL contention its small calls cause next to a busy event loop).
    import subprocess
    import sys

    code = (
        "import sys, adaptd.daemon.service.daemon, adaptd.daemon.learner.messages;"
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
