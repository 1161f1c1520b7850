"""The chaos suite's pure parts: the invariant checks on hand-made inputs, the workload and
the table (no broker, no Redis, no daemon)."""

from __future__ import annotations

import json

from bench.chaos.feed import BAD_VALUE, Workload
from bench.chaos.invariants import (
    PolicyRecord,
    check_dead_letters,
    check_offsets,
    check_policies,
    percentiles,
)
from bench.chaos.report import table


def _chain(model: str, versions: list[tuple[int, int]], sha: str = "w") -> list[PolicyRecord]:
    return [PolicyRecord(model, v, p, f"{sha}{v}", i) for i, (v, p) in enumerate(versions)]


def test_a_linear_chain_passes():
    records = _chain("A", [(1, 0), (2, 1), (3, 2)]) + _chain("B", [(1, 0), (2, 1)])
    increasing, linear = check_policies(records)
    assert increasing.ok and linear.ok
    assert increasing.figures["policies"] == 5 and increasing.figures["models"] == 2
    assert linear.figures["forks"] == 0 and linear.figures["gaps"] == 0


def test_a_fork_is_reported():
    # Version 3 names version 1 as its parent although version 2 was published.
    increasing, linear = check_policies(_chain("A", [(1, 0), (2, 1), (3, 1)]))
    assert increasing.ok
    assert not linear.ok
    assert linear.figures["fork_list"] == [
        {"model": "A", "version": 3, "parent_version": 1, "previous_published": 2, "offset": 2}
    ]
    assert "FAIL" in linear.line()


def test_duplicates_are_counted_and_conflicts_fail():
    same = [*_chain("A", [(1, 0), (2, 1)]), PolicyRecord("A", 2, 1, "w2", 9)]
    increasing, linear = check_policies(same)
    assert increasing.ok and linear.ok
    assert increasing.figures["duplicates"] == 1
    # The same version again with other weights (a version counter that went back).
    other = [*_chain("A", [(1, 0), (2, 1)]), PolicyRecord("A", 2, 1, "other", 9)]
    increasing, _ = check_policies(other)
    assert not increasing.ok and increasing.figures["conflicts"] == 1


def test_a_version_going_back_in_topic_order_fails():
    increasing, linear = check_policies(_chain("A", [(1, 0), (3, 2), (2, 1)]))
    assert not increasing.ok and increasing.figures["out_of_order"] == 1
    assert linear.ok  # sorted by version, the chain itself is linear


def test_a_gap_is_reported_but_allowed():
    _, linear = check_policies(_chain("A", [(1, 0), (3, 1)]))
    assert linear.ok and linear.figures["gaps"] == 1


def test_a_missing_offset_is_reported():
    check = check_offsets({0: 100, 1: 50}, {0: 100, 1: 47})
    assert not check.ok
    assert check.figures["uncommitted"] == 3
    assert check.figures["short_partitions"] == {1: {"end": 50, "committed": 47}}
    assert check_offsets({0: 100, 1: 50}, {0: 100, 1: 50}).ok
    assert not check_offsets({0: 10}, {}).ok  # nothing committed at all


def test_dead_letters_missing_duplicated_and_unexpected():
    ok = check_dead_letters([(0, 5), (1, 7)], [(0, 5), (1, 7), (1, 7)])
    assert ok.ok and ok.figures["duplicates"] == 1 and ok.figures["found"] == 3
    missing = check_dead_letters([(0, 5), (1, 7)], [(0, 5)])
    assert not missing.ok and missing.figures["missing"] == [(1, 7)]
    unexpected = check_dead_letters([(0, 5)], [(0, 5), (0, 6)])
    assert not unexpected.ok and unexpected.figures["unexpected"] == [(0, 6)]


def test_workload_streams_and_bad_records():
    w = Workload(streams=4, regime_len=50, bad_every=97, seed=1)
    records = [w.next() for _ in range(970)]
    bad = [i for i, (_, _, is_bad) in enumerate(records, 1) if is_bad]
    assert bad == list(range(97, 971, 97))
    assert all(v == BAD_VALUE for _, v, b in records if b)
    good = [json.loads(v) for _, v, b in records if not b]
    assert {e["stream"] for e in good} == {"S0", "S1", "S2", "S3"}
    for name in ("S0", "S1"):
        ts = [e["ts"] for e in good if e["stream"] == name]
        assert ts == sorted(ts) and len(set(ts)) == len(ts)


def test_percentiles_and_table():
    assert percentiles([]) == {"n": 0}
    assert percentiles([3.0, 1.0, 2.0, 10.0]) == {"n": 4, "p50": 2.0, "max": 10.0}
    text = table("x", {"kills": 20, "ready_s": {"p50": 1.25}, "lives": [1]}, 3.0)
    assert "kills" in text and "20" in text and "p50 1.25" in text and "lives" not in text


def test_a_fork_after_a_retirement_baseline_says_so():
    records = [
        PolicyRecord("A", 1, 0, "a", 0, "adapted"),
        PolicyRecord("A", 2, 1, "b", 1, "baseline"),
        PolicyRecord("A", 3, 1, "c", 2, "adapted"),  # adapted from 1 while 2 went out
    ]
    _, linear = check_policies(records)
    assert not linear.ok
    assert linear.figures["fork_kinds"] == {"adapted after baseline": 1}
    assert linear.figures["fork_list"][0]["previous_kind"] == "baseline"
