"""The adaptation set after a shift: its first ``shots`` examples formed from the shift on."""

from __future__ import annotations

from types import SimpleNamespace

from adaptd.daemon.core.collect import AdaptationSet
from adaptd.daemon.core.labels import Example


def example(index: int) -> Example:
    return Example((float(index),), 0.0, index, 100 + index, index)


def shift(first_index: int) -> SimpleNamespace:
    return SimpleNamespace(shift=SimpleNamespace(change_index=first_index))


def test_nothing_is_collected_before_a_shift_or_from_before_its_first_firing() -> None:
    collector = AdaptationSet()
    assert not collector.collecting
    assert collector.offer(example(10), shots=2) is None
    collector.start(shift(12))
    assert collector.offer(example(11), shots=2) is None
    assert collector.rows == []


def test_a_full_set_ends_the_collection() -> None:
    collector = AdaptationSet()
    first = shift(5)
    collector.start(first)
    assert collector.offer(example(5), shots=3) is None
    assert collector.offer(example(6), shots=3) is None
    done = collector.offer(example(7), shots=3)
    assert done is not None and done[0] is first
    assert [e.index for e in done[1]] == [5, 6, 7]
    assert not collector.collecting and collector.rows == []


def test_a_newer_shift_supersedes_an_unfinished_set() -> None:
    collector = AdaptationSet()
    collector.start(shift(5))
    collector.offer(example(5), shots=3)
    newer = shift(20)
    collector.start(newer)
    assert collector.rows == [] and collector.shift is newer
