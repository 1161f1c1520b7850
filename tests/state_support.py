"""The stored copy of a state: what a restarted daemon reads back from Redis."""

from __future__ import annotations

from typing import TypeVar

from adaptd.daemon.core import state_format

T = TypeVar("T")


def stored(state: T) -> T:
    """``state`` through the format partition snapshots are stored in."""
    return state_format.loads(state_format.dumps(state))
