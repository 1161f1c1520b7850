"""Retry an operation against Kafka or Redis until it succeeds or the task is cancelled.

Storing effects must not give up: the alternative is to lose them or to commit past
them. Backpressure is the answer to an outage; the caller holds its place meanwhile.
The policy is tenacity's: exponential backoff, no stop, fatal errors and cancellation
raised at once.

Holding its place is not the same as being healthy: every operation under :func:`retrying`
is pending in the :class:`Waits` of the current context (each daemon sets its own, and the
tasks it starts inherit it) from its first attempt until it succeeds or ends, so that
``/readyz`` and a gauge can say that a write has been waiting too long, failing and retried
(Redis out of memory, a broker refusing writes) or not answered at all (a broker that
stopped), while the servers may still answer PING.

>>> waits = Waits()
>>> token = waits.begin("send effects")
>>> waits.oldest(now=time.monotonic() + 12.0)[0], waits.oldest()[1] < 12.0
('send effects', True)
>>> waits.end(token)
>>> waits.oldest()
('', 0.0)
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
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

__all__ = ["Waits", "retrying"]


class Waits:
    """The operations pending now, each since its first attempt (monotonic seconds)."""

    def __init__(self) -> None:
        self._since: dict[int, tuple[str, float]] = {}
        self._ids = itertools.count()

    def begin(self, what: str) -> int:
        token = next(self._ids)
        self._since[token] = (what, time.monotonic())
        return token

    def end(self, token: int) -> None:
        self._since.pop(token, None)

    def oldest(self, now: float | None = None) -> tuple[str, float]:
        """What has been pending longest and for how many seconds (``("", 0.0)``: nothing
        is pending)."""
        if not self._since:
            return "", 0.0
        what, since = min(self._since.values(), key=lambda item: item[1])
        now = time.monotonic() if now is None else now
        return what, max(now - since, 0.0)

    @contextlib.contextmanager
    def current(self) -> Iterator[Waits]:
        """Count the operations of :func:`retrying` in this context (and in the tasks it
        starts) here."""
        token = _WAITS.set(self)
        try:
            yield self
        finally:
            _WAITS.reset(token)


_WAITS: ContextVar[Waits | None] = ContextVar("adaptd_waits", default=None)


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
    retried error before its wait. Until it returns or raises, it is one of the context's
    :class:`Waits`."""
    waits = _WAITS.get()
    token = waits.begin(what) if waits is not None else None

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

    try:
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
    finally:
        if waits is not None and token is not None:
            waits.end(token)
    raise AssertionError("unreachable: tenacity retries until op returns or raises")
