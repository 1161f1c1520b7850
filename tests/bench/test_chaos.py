"""The chaos suite's pure parts: the invariant checks on hand-made inputs, the workload, the
summaries of samples and logs, the Kafka request parsing of the proxy and the table (no
broker, no Redis, no daemon)."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from aiokafka.protocol.admin import ApiVersionRequest_v0, ListPartitionReassignmentsRequest_v0

from bench.chaos.churn import adaptations_done, proc_stats
from bench.chaos.feed import BAD_VALUE, Workload
from bench.chaos.growth import (
    Bound,
    check_bounded,
    check_membership,
    longest_idle,
    quantile,
    quarter_points,
    slope,
    spread,
)
from bench.chaos.invariants import (
    PolicyRecord,
    check_commits_stored,
    check_dead_letters,
    check_offsets,
    check_policies,
    percentiles,
)
from bench.chaos.ledger import LedgerSample, commits_moved, first_not_ready
from bench.chaos.logscan import count_events, retries_by_what
from bench.chaos.proxy import KAFKA_HEAD, kafka_client_id, kafka_client_id_length
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


def test_commits_behind_their_snapshots_pass():
    samples = [({0: -1, 1: -1}, {0: None, 1: None}), ({0: 10, 1: 4}, {0: 10, 1: 7})]
    check = check_commits_stored(samples)
    assert check.ok and check.figures == {"samples": 2, "ahead": 0, "ahead_list": []}


def test_a_commit_ahead_of_its_snapshot_fails():
    # Partition 1 committed 9 while Redis holds its snapshot at 7; partition 0 committed
    # with no snapshot at all.
    check = check_commits_stored([({0: 3, 1: 9}, {0: None, 1: 7})])
    assert not check.ok
    assert check.figures["ahead_list"] == [
        {"sample": 0, "partition": 0, "committed": 3, "stored": None},
        {"sample": 0, "partition": 1, "committed": 9, "stored": 7},
    ]
    assert not check_commits_stored([]).ok  # nothing sampled proves nothing


def _sample(t: float, c0: int, c1: int) -> LedgerSample:
    return LedgerSample(t, {0: c0, 1: c1}, {0: c0, 1: c1}, oom=0, used_memory=0)


def test_commits_moved_while_a_fault_lasted():
    still = [_sample(10.0, 5, 6), _sample(10.5, 5, 6), _sample(11.0, 5, 6)]
    assert commits_moved(still, 10.0) == {"records": 0, "last_moved_s": None}
    moving = [_sample(10.0, 5, 6), _sample(10.5, 8, 6), _sample(11.0, 8, 6), _sample(12.0, 8, 9)]
    assert commits_moved(moving, 10.0) == {"records": 6, "last_moved_s": 2.0}
    assert commits_moved([], 0.0) == {"records": 0, "last_moved_s": None}
    # From no commit at all (-1) counts from offset 0.
    assert commits_moved([_sample(0.0, -1, -1), _sample(1.0, 4, -1)], 0.0)["records"] == 4


def test_first_not_ready():
    samples = [
        {"t": 1.0, "ready": 503, "not_ready": ["redis"]},  # before the fault: not counted
        {"t": 5.0, "ready": 200},
        {"t": 7.5, "ready": 503, "not_ready": ["partitions_advancing"]},
    ]
    assert first_not_ready(samples, 2.0) == (5.5, ["partitions_advancing"])
    assert first_not_ready(samples[:2], 2.0) == (None, [])


def test_retries_and_events_from_the_log():
    def line(**kw: object) -> str:
        return json.dumps({"level": "info", "timestamp": "t", **kw})

    lines = [
        "not json",
        line(
            event="retrying", what="store episodes", attempt=1, error="OOM command", timestamp="a"
        ),
        line(event="retrying", what="store episodes", attempt=2, error="OOM again", timestamp="b"),
        line(event="retrying", what="store the partition snapshot", attempt=1, error="x"),
        line(event="partitions assigned"),
        line(event="partitions assigned"),
    ]
    retries = retries_by_what(lines)
    assert retries["store episodes"] == {
        "count": 2,
        "max_attempt": 2,
        "first_error": "OOM command",
        "first": "a",
        "last": "b",
    }
    assert retries["store the partition snapshot"]["count"] == 1
    assert count_events(lines, ["partitions assigned", "partitions revoked"]) == {
        "partitions assigned": 2,
        "partitions revoked": 0,
    }


def _kafka_request(request: Any, client_id: str) -> bytes:
    # Framed as aiokafka's connection frames it (aiokafka/conn.py: size, header, body).
    message = request.build_request_header(correlation_id=7, client_id=client_id).encode()
    message += request.encode()
    return struct.pack(">i", len(message)) + message


def test_the_kafka_client_id_of_a_request():
    plain = _kafka_request(ApiVersionRequest_v0(), "adaptd-chaos")
    assert kafka_client_id_length(plain[:KAFKA_HEAD]) == len("adaptd-chaos")
    assert kafka_client_id(plain) == "adaptd-chaos"
    # A flexible version's header (v2) keeps the client id as a plain int16-sized string.
    flexible = _kafka_request(
        ListPartitionReassignmentsRequest_v0(timeout_ms=1000, topics=None, tags={}),
        "adaptd-chaos-subscriber",
    )
    assert kafka_client_id(flexible) == "adaptd-chaos-subscriber"
    null = plain[: KAFKA_HEAD - 2] + struct.pack(">h", -1)
    assert kafka_client_id(null) is None
    with pytest.raises(ValueError, match="needs 14 bytes"):
        kafka_client_id(plain[:10])
    with pytest.raises(ValueError, match="inside its client id"):
        kafka_client_id(plain[: KAFKA_HEAD + 3])  # cut inside the id


def test_the_table_leaves_the_retry_details_to_the_json():
    text = table("x", {"retries": {"store episodes": {"count": 3}}, "kills": 1}, 1.0)
    assert "retries" not in text and "kills" in text


def test_quantile_and_spread():
    assert quantile([], 0.99) is None
    assert quantile([0.2], 0.99) == 0.2
    # Nearest rank: of 100 values, p99 is the 99th; one slow sample of 200 moves it only
    # when it is more than 1 in 100.
    lags = [0.001] * 99 + [0.5]
    assert quantile(lags, 0.99) == 0.001
    assert quantile([*lags, 0.5], 0.99) == 0.5
    assert spread([3.0, 1.0, 2.0]) == {"n": 3, "p50": 2.0, "p99": 3.0, "max": 3.0}
    assert spread([]) == {"n": 0, "p50": None, "p99": None, "max": None}


def test_longest_idle_starts_at_the_first_rise():
    assert longest_idle([]) == (None, 0.0)
    assert longest_idle([(0.0, 0.0), (4.0, 0.0)]) == (None, 4.0)
    # Warm-up until 10 s, then rises every second but one gap of 7 s, then a quiet end.
    samples = [(0.0, 0.0), (10.0, 1.0), (11.0, 2.0), (18.0, 3.0), (19.0, 4.0), (22.0, 4.0)]
    assert longest_idle(samples) == (10.0, 7.0)
    assert longest_idle([(0.0, 0.0), (1.0, 1.0), (20.0, 1.0)]) == (1.0, 19.0)


def test_quarter_points_name_what_was_reached():
    samples = [{"n": n, "t": i} for i, n in enumerate([0, 10, 26, 49, 51, 80, 99])]
    points = quarter_points(samples, "n", 100)
    assert [(label, s["t"]) for label, s in points] == [
        ("start", 0),
        ("1/4", 2),
        ("1/2", 4),
        ("3/4", 5),
        ("end", 6),
    ]
    short = quarter_points(samples[:4], "n", 100)
    assert [label for label, _ in short] == ["start", "1/4", "end"]


def test_slope():
    assert slope([(0.0, 1.0)]) is None
    assert slope([(1.0, 1.0), (1.0, 2.0)]) is None
    assert slope([(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) == 2.0


def _soak(rss: list[float]) -> list[dict[str, float]]:
    """One sample per 100 adaptations of a soak of 1,000."""
    return [{"adaptations": 100.0 * i, "rss": v} for i, v in enumerate(rss)]


def test_a_resource_that_levels_off_is_bounded_and_one_that_grows_is_not():
    bound = Bound("rss", ratio=0.10)
    level = _soak([100, 150, 190, 195, 200, 200, 201, 203, 205, 206, 208])
    check = check_bounded(level, "rss", bound, "adaptations", 1000)
    assert check.ok, check.detail
    assert check.figures["second_quarter_max"] == 200  # samples from 250 to 500 adaptations
    assert check.figures["last_quarter_max"] == 208  # from 750 on
    leak = _soak([100 + 20 * i for i in range(11)])
    check = check_bounded(leak, "rss", bound, "adaptations", 1000)
    assert not check.ok and "GREW" in check.detail
    counts = Bound("fds", slack=4)
    assert check_bounded(_soak([20] * 6 + [24] * 5), "rss", counts, "adaptations", 1000).ok
    assert not check_bounded(_soak([20] * 6 + [25] * 5), "rss", counts, "adaptations", 1000).ok
    # A soak that never reached its last quarter cannot be called bounded.
    short = check_bounded(level[:6], "rss", bound, "adaptations", 1000)
    assert not short.ok and "not sampled" in short.detail


def _log(*events: str) -> list[str]:
    return [json.dumps({"event": e, "level": "info"}) for e in events]


def test_membership_holds_with_one_assignment_only():
    ok = check_membership(["Traceback", *_log("adaptd started", "partitions assigned")])
    assert ok.ok, ok.detail
    rejoined = check_membership(
        _log("partitions assigned", "partitions revoked", "partitions assigned")
    )
    assert not rejoined.ok
    assert rejoined.figures == {"assigned": 2, "revoked": 1, "group_log_lines": 0}
    heartbeat = check_membership(
        _log("partitions assigned", "Heartbeat failed for group chaos because it is rebalancing")
    )
    assert not heartbeat.ok and heartbeat.figures["group_log_lines"] == 1
    assert not check_membership(_log("adaptd started")).ok  # never assigned at all


def test_adaptations_done_counts_finished_outcomes_only():
    metrics = {
        "adaptd_adaptations_total": 20.0,
        "adaptd_adaptations_total{outcome=published}": 5.0,
        "adaptd_adaptations_total{outcome=rejected}": 12.0,
        "adaptd_adaptations_total{outcome=failed}": 1.0,
        "adaptd_adaptations_total{outcome=rebased}": 2.0,
    }
    assert adaptations_done(metrics) == 18.0
    assert adaptations_done({}) == 0.0


def test_proc_stats_of_this_process_and_of_none():
    import os

    mine = proc_stats(os.getpid())
    assert mine["rss_kb"] and mine["rss_kb"] > 1000
    assert mine["fds"] and mine["fds"] >= 3 and mine["threads"] and mine["threads"] >= 1
    assert proc_stats(2**22 + 1) == {"rss_kb": None, "fds": None, "threads": None}


def test_a_count_that_follows_the_load_is_bounded_by_its_median_and_a_leak_is_not():
    # Tasks rise and fall with the adaptations in flight: a busy last sample is a peak of
    # load, not a leak; the maximum calls it growth, the median does not.
    bursty = _soak([24, 31, 30, 32, 31, 29, 31, 30, 29, 62, 30])
    by_max, by_median = Bound("tasks", slack=16), Bound("tasks", slack=16, statistic="median")
    assert not check_bounded(bursty, "rss", by_max, "adaptations", 1000).ok
    check = check_bounded(bursty, "rss", by_median, "adaptations", 1000)
    assert check.ok, check.detail
    assert check.figures["last_quarter_median"] == 30 and check.figures["last_quarter_max"] == 62
    # One task left behind every 20 adaptations: the median climbs past the margin.
    leak = _soak([30 + 5 * i for i in range(11)])
    check = check_bounded(leak, "rss", by_median, "adaptations", 1000)
    assert not check.ok and "GREW" in check.detail
    with pytest.raises(ValueError, match="statistic"):
        Bound("tasks", statistic="mean")


def test_sockets_to_counts_a_process_connections_to_one_port():
    import os
    import socket

    from bench.chaos.churn import sockets_to

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    before = sockets_to(os.getpid(), port)
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    accepted = [server.accept()[0] for _ in clients]
    try:
        # The three clients' sockets, not the listener's or the accepted ones (their remote
        # ports are the clients' own).
        assert sockets_to(os.getpid(), port) == before + 3 == 3
    finally:
        for s in (*clients, *accepted, server):
            s.close()
    assert sockets_to(os.getpid(), port) == 0
    assert sockets_to(2**22 + 12345, port) is None  # no such process
