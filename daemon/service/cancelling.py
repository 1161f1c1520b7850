"""Cancelling tasks so that the shutdown never waits on one that goes on.

A cancellation can be swallowed below the task: redis-py's asyncio client does, when it
arrives while a command runs (a task looping on GET, cancelled once, went on in most of
tries with redis-py 8.2.0, 8.0.1, 7.4.1 and 6.4.0 here; redis/redis-py#2028 describes it).
The task then goes on, and whoever awaited its end waits for ever. This was seen in the
integration tests: the meta-trainer ran a whole round after "adaptd stopped", and the
daemon's shutdown waited on it until the test gave up. :func:`cancel_all` cancels again
whatever has not ended after ``patience_s``, logs where it runs, and gives up after
``tries``, so a shutdown always ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from ..io.logs import get_logger

log = get_logger("adaptd.service")

__all__ = ["cancel_all"]


async def cancel_all(
    tasks: Iterable[asyncio.Task[object]], *, patience_s: float = 1.0, tries: int = 10
) -> list[asyncio.Task[object]]:
    """Cancel ``tasks`` and wait for them to end, cancelling again those that go on; returns
    those that still had not ended after ``tries`` cancellations (logged as errors)."""
    left = [t for t in tasks if not t.done()]
    ended = [t for t in tasks if t.done()]
    for attempt in range(tries):
        for task in left:
            task.cancel()
        if not left:
            break
        done, pending = await asyncio.wait(left, timeout=patience_s)
        ended += done
        left = list(pending)
        for task in left:
            frames = [
                f"{f.f_code.co_filename}:{f.f_lineno} {f.f_code.co_name}" for f in task.get_stack()
            ]
            log.warning(
                "a task goes on after its cancellation: cancelled again",
                task=task.get_name(),
                attempt=attempt + 1,
                where=frames,
            )
    await asyncio.gather(*ended, return_exceptions=True)
    for task in left:
        log.error("a task would not stop; left behind", task=task.get_name())
    return left
