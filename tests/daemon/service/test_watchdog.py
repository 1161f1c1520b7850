"""Stalled partitions: records waiting past a position that does not move."""

from __future__ import annotations

from adaptd.daemon.service.watchdog import StallWatch


def test_a_partition_waiting_without_moving_is_stalled_once_until_it_moves() -> None:
    watch = StallWatch(timeout_s=10.0)
    assert not watch.observe("p", 5, 9, now=0.0)
    assert not watch.observe("p", 5, 9, now=9.9)
    assert watch.observe("p", 5, 9, now=10.0)  # reported once...
    assert not watch.observe("p", 5, 9, now=60.0)  # ...not again while it lasts
    assert watch.stalled == {"p"} and watch.stalled_for("p", 60.0) == 60.0
    assert not watch.observe("p", 6, 9, now=61.0)
    assert watch.stalled == set() and watch.stalled_for("p", 61.0) == 0.0
    # Moving again restarts the clock.
    assert not watch.observe("p", 6, 9, now=70.0)
    assert watch.observe("p", 6, 9, now=71.0)


def test_an_idle_partition_is_never_stalled() -> None:
    watch = StallWatch(timeout_s=1.0)
    for t in range(100):
        assert not watch.observe("p", 7, 7, now=float(t))  # nothing past the position
        assert not watch.observe("q", None, 7, now=float(t))  # nothing processed yet
        assert not watch.observe("r", 7, None, now=float(t))  # no high-water mark known
    assert watch.stalled == set()


def test_records_arriving_at_an_idle_partition_start_the_clock_then() -> None:
    watch = StallWatch(timeout_s=5.0)
    assert not watch.observe("p", 7, 7, now=0.0)
    assert not watch.observe("p", 7, 8, now=100.0)  # waiting only from now on
    assert not watch.observe("p", 7, 8, now=104.0)
    assert watch.observe("p", 7, 8, now=105.0)


def test_off_and_forget() -> None:
    off = StallWatch(timeout_s=0.0)
    assert not off.observe("p", 1, 5, now=0.0) and not off.observe("p", 1, 5, now=1e9)
    watch = StallWatch(timeout_s=1.0)
    watch.observe("p", 1, 5, now=0.0)
    assert watch.observe("p", 1, 5, now=2.0)
    watch.forget(["p"])
    assert watch.stalled == set() and not watch.observe("p", 1, 5, now=3.0)
