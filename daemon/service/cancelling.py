"""Cancelling tasks so that the shutdown never waits on one that goes on.

A cancellation can be swallowed below the task: redis-py's asyncio client does, when it
arrives while a command runs (a task looping on GET, cancelled once, went on in most of
tries with redis-py 8.2.0, 8.0.1, 7.4.1 and 6.4.0 here; redis/redis-py#2028 describes it).
The task then goes on, and whoever awaited its end waits for ever. This was seen in the
integration tests: the meta-trainer ran a whole round after "adaptd stopped", and the
daemon's shutdown waited on it until the test gave up. :func:`cancel_all` cancels once and
waits ``patience_s`` (a task may clean up on its cancellation), then logs where a task that
goes on runs and cancels it again, and gives up after ``tries``, so a shutdown always ends.

From the second try a cancellation is repeated on every turn of the event loop for the
whole ``patience_s``, as anyio's cancel scopes do: one cancellation lands wherever the task
awaits at that moment, and a task that spends most of its time inside a command that
swallows it (a loop of Redis GETs) swallowed ten in a row once under load; a cancellation
made while the task is between two awaits is raised where it resumes, outside the client.
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
        if not left:
            break
        if attempt == 0:
            for task in left:
                task.cancel()
            done, pending = await asyncio.wait(left, timeout=patience_s)
            ended += done
            left = list(pending)
        else:
            left = await _cancel_every_turn(left, ended, patience_s)
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


async def _cancel_every_turn(
    left: list[asyncio.Task[object]], ended: list[asyncio.Task[object]], patience_s: float
) -> list[asyncio.Task[object]]:
    """Cancel ``left`` on every turn of the event loop for ``patience_s``; those that ended
    move to ``ended``, and those that did not are returned."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience_s
    while left and loop.time() < deadline:
        for task in left:
            task.cancel()
        await asyncio.sleep(0)
        ended += [t for t in left if t.done()]
        left = [t for t in left if not t.done()]
    return left
