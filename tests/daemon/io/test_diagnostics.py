"""The snapshot an operator (SIGUSR1) or the stall watch logs: every task's await chain
and every thread's stack."""

from __future__ import annotations

import asyncio
import threading

from adaptd.daemon.io.diagnostics import snapshot


async def _stuck_here(event: asyncio.Event) -> None:
    await event.wait()


async def test_names_each_task_and_the_line_it_waits_on() -> None:
    event = asyncio.Event()
    task = asyncio.create_task(_stuck_here(event), name="publish:AAA")
    await asyncio.sleep(0)
    try:
        text = snapshot()
    finally:
        event.set()
        await task
    block = text.split("--- task publish:AAA (pending)\n", 1)[1].split("---", 1)[0]
    assert "in _stuck_here" in block


def test_shows_a_blocked_thread_without_a_running_loop() -> None:
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="adaptd-torch")
    thread.start()
    try:
        text = snapshot()
    finally:
        release.set()
        thread.join()
    assert text.startswith("0 asyncio tasks")
    block = text.split("--- Thread adaptd-torch\n", 1)[1].split("--- Thread", 1)[0]
    assert "in wait" in block
