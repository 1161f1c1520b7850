"""Retrying an operation: exponential backoff until it succeeds, every retried error reported,
fatal errors and cancellation raised at once. Nothing is patched: the delays are tiny and the
tests count attempts and read the backoff from the log lines."""

from __future__ import annotations

import asyncio
import time

import pytest
from structlog.testing import capture_logs

from adaptd.daemon.io.retry import Waits, retrying


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


async def test_an_operation_is_pending_in_its_context_from_its_first_attempt_to_success() -> None:
    waits = Waits()
    seen: list[tuple[str, float]] = []

    async def op() -> str:
        seen.append(waits.oldest())
        if len(seen) <= 3:
            raise ConnectionError("Redis is out of memory")
        return "stored"

    with waits.current(), capture_logs():
        # A task started in the context counts there too, as the daemon's tasks do.
        task = asyncio.create_task(retrying(op, what="store episodes", first_delay_s=0.005))
    assert await task == "stored"
    # Pending from the first attempt, for longer at each retry.
    assert [what for what, _ in seen] == ["store episodes"] * 4
    seconds = [s for _, s in seen]
    assert seconds == sorted(seconds) and seconds[-1] >= 0.01
    assert waits.oldest() == ("", 0.0)  # it succeeded: no longer pending


async def test_an_unanswered_operation_is_pending_until_cancelled_and_only_in_its_context() -> None:
    waits, other = Waits(), Waits()
    inside = asyncio.Event()

    async def op() -> None:
        inside.set()
        await asyncio.Event().wait()  # a broker that stopped answering: no error, no reply

    with waits.current():
        task = asyncio.create_task(retrying(op, what="send effects"))
    await inside.wait()
    await asyncio.sleep(0.02)
    what, seconds = waits.oldest()
    assert what == "send effects" and seconds >= 0.02
    assert other.oldest() == ("", 0.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert waits.oldest() == ("", 0.0)  # cancelled: not pending any more
