"""Retry an operation against Kafka or Redis until it succeeds or the task is cancelled.

Storing effects must not give up: the alternative is to lose them or to commit past
them. Backpressure is the answer to an outage; the caller holds its place meanwhile.
The policy is tenacity's: exponential backoff, no stop, fatal errors and cancellation
raised at once.

Holding its place is not the same as being healthy: an operation that keeps failing is
recorded in the :class:`Outages` of the current context (each daemon sets its own, and the
tasks it starts inherit it) from its first failure until it succeeds or ends, so that
``/readyz`` and a gauge can say that writes are failing, and for how long, while PING still
answers (Redis out of memory, a broker refusing writes).

>>> outages = Outages()
>>> token = outages.begin("send effects")
>>> outages.longest(now=time.monotonic() + 12.0)[0], outages.longest()[1] < 12.0
('send effects', True)
>>> outages.end(token)
>>> outages.longest()
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

__all__ = ["Outages", "retrying"]


class Outages:
    """The operations that are failing now, each since its first failure (monotonic)."""

    def __init__(self) -> None:
        self._since: dict[int, tuple[str, float]] = {}
        self._ids = itertools.count()

    def begin(self, what: str) -> int:
        token = next(self._ids)
        self._since[token] = (what, time.monotonic())
        return token

    def end(self, token: int) -> None:
        self._since.pop(token, None)

    def longest(self, now: float | None = None) -> tuple[str, float]:
        """What has been failing longest and for how many seconds (``("", 0.0)``: nothing
        is failing)."""
        if not self._since:
            return "", 0.0
        what, since = min(self._since.values(), key=lambda item: item[1])
        now = time.monotonic() if now is None else now
        return what, max(now - since, 0.0)

    @contextlib.contextmanager
    def current(self) -> Iterator[Outages]:
        """Record the failures of :func:`retrying` in this context (and in the tasks it
        starts) here."""
        token = _OUTAGES.set(self)
        try:
            yield self
        finally:
            _OUTAGES.reset(token)


_OUTAGES: ContextVar[Outages | None] = ContextVar("adaptd_outages", default=None)


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
    retried error before its wait. While it keeps failing, it is one of the context's
    :class:`Outages`."""
    outages = _OUTAGES.get()
    failing: list[int] = []

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        assert exc is not None  # tenacity sleeps only after a failed attempt
        if outages is not None and not failing:
            failing.append(outages.begin(what))
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
        if outages is not None and failing:
            outages.end(failing[0])
    raise AssertionError("unreachable: tenacity retries until op returns or raises")
