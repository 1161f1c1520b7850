"""What the daemon is doing right now: every asyncio task's await chain and every thread's
stack, as text for the log.

A daemon that stops making progress without an error (issue 12's finding 5) leaves nothing
to read afterwards; this is what an operator, or a stall watch, logs at the moment it is
stuck: ``kill -USR1 <pid>`` on ``adaptd run``, and the partition stall watch, both write it.

>>> import asyncio
>>> async def demo():
...     waiting = asyncio.create_task(asyncio.sleep(10), name="napping")
...     await asyncio.sleep(0)
...     text = snapshot()
...     waiting.cancel()
...     return "napping" in text and "Thread" in text
>>> asyncio.run(demo())
True
"""

from __future__ import annotations

import asyncio
import io
import sys
import threading
import traceback

__all__ = ["snapshot"]


def snapshot(limit: int = 12) -> str:
    """The running loop's tasks (name, state and up to ``limit`` frames each, innermost
    last) and every thread's stack, as one text."""
    out = io.StringIO()
    try:
        tasks = sorted(asyncio.all_tasks(), key=lambda t: t.get_name())
    except RuntimeError:  # no running loop (a thread's view only)
        tasks = []
    out.write(f"{len(tasks)} asyncio tasks\n")
    for task in tasks:
        out.write(f"--- task {task.get_name()} ({'done' if task.done() else 'pending'})\n")
        frames = task.get_stack(limit=limit)
        for frame in frames:
            code = frame.f_code
            out.write(f"  {code.co_filename}:{frame.f_lineno} in {code.co_name}\n")
    names = {t.ident: t.name for t in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        out.write(f"--- Thread {names.get(ident, ident)}\n")
        for line in traceback.format_stack(frame, limit=limit):
            out.write(line)
    return out.getvalue()
