"""structlog configuration: one JSON object per line (or a console form), with context.

Context such as the stream and offset is bound with ``structlog.contextvars`` or passed
as keys, so every line of a shift or an adaptation says which stream and offset it is
about.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure(level: str = "info", fmt: str = "json") -> None:
    """Route structlog and the standard library (aiokafka, asyncio) to stderr."""
    numeric = _LEVELS[level]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    handler.addFilter(Repeats())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # aiokafka is chatty at INFO about group membership; keep its warnings.
    root.setLevel(max(numeric, logging.WARNING))


class Repeats(logging.Filter):
    """Lets the same library message (logger and format) through at most once per
    ``every_s``, and says how many were held back when it next lets it through.

    aiokafka logs every failed reconnection at error level: about 75 lines a second while
    the broker is unreachable (``make chaos``, network cut), which buries everything else.

    >>> repeats, record = Repeats(every_s=10.0), logging.makeLogRecord({"msg": "down %s"})
    >>> [repeats.filter(record) for _ in range(3)]
    [True, False, False]
    """

    def __init__(self, every_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every_s = every_s
        self.clock = clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = self.clock()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.every_s:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        if last is not None and last[1]:
            record.msg = f"{record.msg} ({last[1]} more like it in the last {self.every_s:g} s)"
        self._seen[key] = (now, 0)
        if len(self._seen) > 10_000:  # formats are few; this only guards against a leak
            self._seen.clear()
        return True


def get_logger(name: str = "adaptd") -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)
