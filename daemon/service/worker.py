"""The one thread where learning jobs run, so the event loop (and aiokafka's heartbeats)
never does.

Jobs carry a priority: adaptations (latency-bound) go before meta-training rounds,
which are cut into short jobs so an adaptation waits for at most one of them. When the
learner runs in its own process, the thread only waits for that process's answers; when it
runs on this thread (``adaptation.isolation=thread``), an ``initializer`` caps torch's
intra-op threads there, leaving a core to the event loop. This module never imports torch.

>>> import asyncio
>>> async def demo():
...     worker = TorchWorker()
...     worker.start()
...     try:
...         return await worker.submit(sum, [1, 2, 3])
...     finally:
...         await worker.aclose()
>>> asyncio.run(demo())
6
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

ADAPT = 0
"""Priority of adaptation jobs (lower runs first)."""
BACKGROUND = 10
"""Priority of meta-training and other background jobs."""


class WorkerClosed(RuntimeError):
    """The worker has been closed; no more jobs are accepted."""


class TorchWorker:
    """A single worker thread with a priority queue of jobs."""

    def __init__(
        self, initializer: Callable[[], object] | None = None, name: str = "adaptd-torch"
    ) -> None:
        self.initializer = initializer
        """Run once on the thread before its first job (e.g. capping torch's threads)."""
        self.name = name
        self._queue: queue.PriorityQueue[tuple[int, int, Any]] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.busy = False

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        if self.initializer is not None:
            self.initializer()
        while True:
            _, _, job = self._queue.get()
            if job is None:
                return
            fn, args, fut, loop = job
            if fut.cancelled():
                continue
            self.busy = True
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to the awaiting coroutine, not lost
                loop.call_soon_threadsafe(_set_exception, fut, exc)
            else:
                loop.call_soon_threadsafe(_set_result, fut, result)
            finally:
                self.busy = False

    def submit(self, fn: Callable[..., T], *args: Any, priority: int = ADAPT) -> asyncio.Future[T]:
        """Run ``fn(*args)`` on the worker thread; await the returned future for its result."""
        if self._closed:
            raise WorkerClosed("the torch worker is closed")
        self.start()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.put((priority, next(self._seq), (fn, args, fut, loop)))
        return fut

    async def aclose(self, timeout_s: float = 30.0) -> None:
        """Finish queued jobs' current one, refuse new ones, and join the thread."""
        self._closed = True
        if self._thread is None:
            return
        # Highest possible priority value: runs after everything already queued.
        self._queue.put((2**31, next(self._seq), None))
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join, timeout_s)
        self._thread = None


def _set_result(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
