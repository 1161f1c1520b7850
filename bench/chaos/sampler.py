"""A background task that takes a sample every ``every_s`` while entered (``async with``):
the shape of the scenarios' watches on the daemon and on the commits."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self

__all__ = ["Sampler"]


class Sampler:
    """Subclasses define :meth:`sample` (one sample, stored by itself) and may extend
    :meth:`open` and :meth:`close`."""

    every_s = 0.1

    def __init__(self) -> None:
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def sample(self) -> None:
        raise NotImplementedError

    async def open(self) -> None:
        """Before the first sample."""

    async def close(self) -> None:
        """After the last sample."""

    async def __aenter__(self) -> Self:
        await self.open()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        try:
            if self._task is not None:
                await self._task
        finally:
            await self.close()

    async def _run(self) -> None:
        while not self._stop.is_set():
            await self.sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.every_s)
