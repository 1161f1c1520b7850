"""Retry an operation against Kafka or Redis until it succeeds or the task is cancelled.

Storing effects must not give up: the alternative is to lose them or to commit past
them. Backpressure is the answer to an outage; the caller holds its place meanwhile.
The policy is tenacity's: exponential backoff, no stop, fatal errors and cancellation
raised at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_not_exception_type,
    wait_exponential,
)

from .logs import get_logger

T = TypeVar("T")
log = get_logger("adaptd.retry")

__all__ = ["retrying"]


async def retrying(
    op: Callable[[], Awaitable[T]],
    *,
    what: str,
    on_error: Callable[[BaseException], None] | None = None,
    fatal: tuple[type[BaseException], ...] = (),
    first_delay_s: float = 0.1,
    max_delay_s: float = 5.0,
) -> T:
    """Await ``op()`` until it returns, sleeping with exponential backoff (``first_delay_s``
    doubling up to ``max_delay_s``) between failures. Errors of the ``fatal`` types are raised
    at once, as are cancellation and other ``BaseException``s; ``on_error`` sees every
    retried error before its wait."""

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        assert exc is not None  # tenacity sleeps only after a failed attempt
        if on_error is not None:
            on_error(exc)
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "retrying",
            what=what,
            attempt=state.attempt_number,
            error=repr(exc),
            delay_s=round(delay, 3),
        )

    async for attempt in AsyncRetrying(
        # Only Exceptions are retried: tenacity would retry a CancelledError too, and so
        # swallow the caller's cancellation.
        retry=retry_if_exception_type(Exception) & retry_if_not_exception_type(fatal),
        wait=wait_exponential(multiplier=first_delay_s, exp_base=2, max=max_delay_s),
        before_sleep=before_sleep,
        reraise=True,
    ):
        with attempt:
            return await op()
    raise AssertionError("unreachable: tenacity retries until op returns or raises")
