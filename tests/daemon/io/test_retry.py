"""Retrying an operation: exponential backoff until it succeeds, every retried error reported,
fatal errors and cancellation raised at once. Nothing is patched: the delays are tiny and the
tests count attempts and read the backoff from the log lines."""

from __future__ import annotations

import asyncio
import time

import pytest
from structlog.testing import capture_logs

from adaptd.daemon.io.retry import Outages, retrying


class Flaky:
    """Fails with a new error on each of its first ``failures`` calls, then returns ``value``."""

    def __init__(self, failures: int, value: str = "done", error: type = ConnectionError) -> None:
        self.failures = failures
        self.value = value
        self.error = error
        self.attempts = 0
        self.raised: list[BaseException] = []

    async def __call__(self) -> str:
        self.attempts += 1
        if self.attempts <= self.failures:
            exc = self.error(f"attempt {self.attempts}")
            self.raised.append(exc)
            raise exc
        return self.value


async def test_success_after_failures_with_doubling_capped_delays() -> None:
    op = Flaky(failures=5)
    seen: list[BaseException] = []
    started = time.perf_counter()
    with capture_logs() as logs:
        result = await retrying(
            op, what="store", on_error=seen.append, first_delay_s=0.002, max_delay_s=0.008
        )
    elapsed = time.perf_counter() - started
    assert result == "done"
    assert op.attempts == 6
    # on_error saw every retried error, the same objects, in order.
    assert seen == op.raised and all(a is b for a, b in zip(seen, op.raised, strict=True))
    assert [(e["what"], e["attempt"], e["log_level"]) for e in logs] == [
        ("store", n, "warning") for n in range(1, 6)
    ]
    assert [e["delay_s"] for e in logs] == [0.002, 0.004, 0.008, 0.008, 0.008]
    assert [e["error"] for e in logs] == [repr(exc) for exc in op.raised]
    assert elapsed >= 0.03  # the delays were slept, not only logged


async def test_a_first_success_neither_waits_nor_reports() -> None:
    op = Flaky(failures=0, value="first")
    seen: list[BaseException] = []
    with capture_logs() as logs:
        assert await retrying(op, what="x", on_error=seen.append, first_delay_s=60.0) == "first"
    assert (op.attempts, seen, logs) == (1, [], [])


async def test_without_on_error_failures_are_still_retried() -> None:
    op = Flaky(failures=2)
    assert await retrying(op, what="x", first_delay_s=0.001) == "done"
    assert op.attempts == 3


@pytest.mark.parametrize("error", [PermissionError, FileNotFoundError])
async def test_fatal_errors_and_their_subclasses_are_raised_at_once(error: type) -> None:
    op = Flaky(failures=3, error=error)
    seen: list[BaseException] = []
    with pytest.raises(error) as info:
        await retrying(
            op, what="x", on_error=seen.append, fatal=(PermissionError, FileNotFoundError)
        )
    assert info.value is op.raised[0]
    assert op.attempts == 1
    assert seen == []


async def test_a_fatal_error_after_retried_ones_ends_the_retries() -> None:
    calls: list[int] = []

    async def op() -> None:
        calls.append(len(calls))
        raise (ConnectionError if len(calls) < 3 else PermissionError)("no")

    seen: list[BaseException] = []
    with pytest.raises(PermissionError):
        await retrying(
            op, what="x", on_error=seen.append, fatal=(PermissionError,), first_delay_s=0.001
        )
    assert len(calls) == 3
    assert [type(e) for e in seen] == [ConnectionError, ConnectionError]


@pytest.mark.parametrize("error", [asyncio.CancelledError, KeyboardInterrupt])
async def test_cancellation_and_other_base_exceptions_raised_by_the_operation(error: type) -> None:
    op = Flaky(failures=3, error=error)
    seen: list[BaseException] = []
    with pytest.raises(error):
        await retrying(op, what="x", on_error=seen.append, first_delay_s=0.001)
    assert op.attempts == 1
    assert seen == []


async def test_cancelling_the_caller_during_an_attempt_stops_at_once() -> None:
    attempts = 0
    inside = asyncio.Event()

    async def op() -> None:
        nonlocal attempts
        attempts += 1
        inside.set()
        await asyncio.Event().wait()  # an operation that never answers

    seen: list[BaseException] = []
    task = asyncio.create_task(retrying(op, what="x", on_error=seen.append, first_delay_s=0.001))
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert attempts == 1
    assert seen == []


async def test_cancelling_the_caller_during_a_backoff_stops_at_once() -> None:
    op = Flaky(failures=10)
    failed = asyncio.Event()
    task = asyncio.create_task(
        retrying(op, what="x", on_error=lambda _: failed.set(), first_delay_s=3600.0)
    )
    await failed.wait()  # the first attempt failed: the task waits an hour now
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert op.attempts == 1


async def test_a_failing_operation_is_an_outage_of_its_context_until_it_succeeds() -> None:
    outages = Outages()
    failing: list[tuple[str, float]] = []

    async def op() -> str:
        failing.append(outages.longest())
        if len(failing) <= 3:
            raise ConnectionError("Redis is out of memory")
        return "stored"

    with outages.current(), capture_logs():
        # A task started in the context records there too, as the daemon's tasks do.
        task = asyncio.create_task(retrying(op, what="store episodes", first_delay_s=0.005))
    assert await task == "stored"
    # Nothing before the first failure; then this operation, failing for longer each time.
    assert failing[0] == ("", 0.0)
    assert [what for what, _ in failing[1:]] == ["store episodes"] * 3
    seconds = [s for _, s in failing[1:]]
    assert seconds == sorted(seconds) and seconds[-1] >= 0.01
    assert outages.longest() == ("", 0.0)  # it succeeded: no longer an outage


async def test_an_outage_ends_with_its_operation_and_another_context_sees_none() -> None:
    outages, other = Outages(), Outages()
    op = Flaky(failures=100)
    third = asyncio.Event()

    def on_error(_: BaseException) -> None:
        if op.attempts >= 3:
            third.set()

    with outages.current(), capture_logs():
        task = asyncio.create_task(
            retrying(op, what="send effects", on_error=on_error, first_delay_s=0.001)
        )
    await third.wait()
    assert outages.longest()[0] == "send effects"
    assert other.longest() == ("", 0.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert outages.longest() == ("", 0.0)  # cancelled: not failing any more either
