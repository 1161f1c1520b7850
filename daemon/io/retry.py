"""Retry an operation against Kafka or Redis until it succeeds or the task is cancelled.

Storing effects must not give up: the alternative is to lose them or to commit past
them. Backpressure is the answer to an outage; the caller holds its place meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .logs import get_logger

T = TypeVar("T")
log = get_logger("adaptd.retry")


async def retrying(
    op: Callable[[], Awaitable[T]],
    *,
    what: str,
    on_error: Callable[[BaseException], None] | None = None,
    fatal: tuple[type[BaseException], ...] = (),
    first_delay_s: float = 0.1,
    max_delay_s: float = 5.0,
) -> T:
    """Await ``op()`` until it returns, sleeping with exponential backoff between failures.
    Errors of the ``fatal`` types are raised at once."""
    delay = first_delay_s
    attempt = 0
    while True:
        try:
            return await op()
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except fatal:
            raise
        except Exception as exc:
            attempt += 1
            if on_error is not None:
                on_error(exc)
            log.warning(
                "retrying", what=what, attempt=attempt, error=repr(exc), delay_s=round(delay, 3)
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay_s)
