"""Library log lines that repeat (aiokafka's failed reconnections, ~75 a second while the
broker is cut) are let through once per interval, with a count of those held back."""

from __future__ import annotations

import logging

import pytest
import structlog

from adaptd.daemon.io.logs import Repeats, configure


def test_the_same_message_passes_once_per_interval_then_says_how_many_were_held() -> None:
    now = [0.0]
    repeats = Repeats(every_s=10.0, clock=lambda: now[0])

    def record(msg: str, name: str = "aiokafka.conn") -> logging.LogRecord:
        return logging.makeLogRecord({"name": name, "msg": msg, "args": ("127.0.0.1",)})

    assert repeats.filter(record("Unable connect to %s"))
    passed = [repeats.filter(record("Unable connect to %s")) for _ in range(74)]
    assert not any(passed)
    assert repeats.filter(record("another message %s"))  # each message on its own
    assert repeats.filter(record("Unable connect to %s", name="aiokafka.client"))
    now[0] = 10.5
    again = record("Unable connect to %s")
    assert repeats.filter(again)
    assert again.getMessage() == "Unable connect to 127.0.0.1 (74 more like it in the last 10 s)"
    now[0] = 21.0
    once = record("Unable connect to %s")
    assert repeats.filter(once) and once.getMessage() == "Unable connect to 127.0.0.1"


def test_the_daemons_log_holds_back_a_flood(capsys: pytest.CaptureFixture[str]) -> None:
    # configure() is process-wide (structlog's and the standard library's): put both back,
    # or the tests after this one would log to this test's captured stderr.
    root = logging.getLogger()
    saved = root.handlers[:], root.level, structlog.get_config()
    try:
        configure("info", "json")
        for _ in range(200):
            logging.getLogger("aiokafka.conn").error("Unable connect to node with id %s", 1)
        lines = [line for line in capsys.readouterr().err.splitlines() if "Unable" in line]
    finally:
        root.handlers[:], level, config = saved
        root.setLevel(level)
        structlog.configure(**config)
    assert len(lines) == 1
