from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from state_support import stored

from adaptd.adapters.serving import NumpyPolicy
from adaptd.daemon.config.settings import load_settings
from adaptd.daemon.core.effects import Effects
from adaptd.daemon.core.partition import PartitionState
from adaptd.daemon.core.schema import EventDecoder, MarketEvent, Reason
from adaptd.daemon.core.stream import StreamConfig, StreamState
from adaptd.daemon.service.configs import stream_config, tasks_of
from adaptd.replay.episode import encode_episode

T0, DT = 1_700_000_000_000, 100
MAX_BYTES = 128
STREAMS = ("BTC", "ETH", "AAPL")


@dataclass(frozen=True)
class Record:
    """The shape of aiokafka's ConsumerRecord that the partition reads."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


def make_config(**features: Any) -> StreamConfig:
    settings = load_settings(
        environ={},
        kafka={"max_message_bytes": MAX_BYTES},
        features={
            "momentum_horizons": [5, 20],
            "warmup_events": 20,
            "label_horizon": 3,
            **features,
        },
        detection={"warmup_events": 100, "cooldown_events": 50},
        adaptation={"shots": 12, "query_size": 4},
        replay={"episode_size": 16},
    )
    return stream_config(settings, tasks_of(settings))


def walk(n: int, seed: int, change: int | None = None) -> list[float]:
    rng = np.random.default_rng(seed)
    log_price, out = 0.0, []
    for i in range(n):
        mu, sigma = (0.003, 0.004) if change is not None and i >= change else (0.0, 0.001)
        log_price += mu + sigma * rng.standard_normal()
        out.append(100.0 * float(np.exp(log_price)))
    return out


def interleaved(n: int) -> list[MarketEvent]:
    """Events of several streams, interleaved in partition order; BTC shifts at event 300."""
    prices = {s: walk(n, seed=k, change=300 if s == "BTC" else None) for k, s in enumerate(STREAMS)}
    return [
        MarketEvent(stream=s, ts_ms=T0 + DT * i, price=prices[s][i])
        for i in range(n)
        for s in STREAMS
    ]


def records(events: Sequence[MarketEvent], first_offset: int = 0) -> list[Record]:
    encode = EventDecoder().encode
    return [
        Record(first_offset + k, ev.ts_ms, ev.stream.encode(), encode(ev))
        for k, ev in enumerate(events)
    ]


def batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def default_policy(in_dim: int) -> NumpyPolicy:
    rng = np.random.default_rng(0)
    return NumpyPolicy.from_params(
        {
            "layers.0.weight": rng.normal(0.0, 0.5, size=(4, in_dim)),
            "layers.0.bias": np.zeros(4),
            "layers.2.weight": rng.normal(0.0, 0.5, size=(1, 4)),
            "layers.2.bias": np.zeros(1),
        }
    )


def view(out: Effects) -> tuple[Any, ...]:
    return (
        [(s.id, s.shift, s.segment, s.offset) for s in out.shifts],
        [(t, encode_episode(e)) for t, e in out.episodes],
        [(r.id, r.support_x.tobytes(), r.query_y.tobytes(), r.first_offset) for r in out.requests],
        list(out.dead_letters),
        out.processed,
        out.examples,
        dict(out.firings),
    )


def test_records_route_to_their_stream_as_if_each_stream_ran_alone() -> None:
    config = make_config()
    policy = default_policy(len(config.feature_names))
    recs = records(interleaved(500))
    partition = PartitionState("in", 4, config, MAX_BYTES)
    alone = {s: StreamState(s, "in", 4, config) for s in STREAMS}
    decode = EventDecoder().decode
    for chunk in batches(recs, 250):
        out = Effects()
        partition.process(chunk, {"return": policy}, out)
        want = Effects()
        seen: dict[str, None] = {}
        for rec in chunk:
            event = decode(rec.value)
            seen[event.stream] = None
            assert alone[event.stream].on_event(event, rec.offset, want) is None
            want.processed += 1
        for stream in seen:  # the partition finishes streams in first-seen order
            alone[stream].finish_batch({"return": policy}, want)
        assert view(out) == view(want)
        assert out.processed == len(chunk)
        assert out.dead_letters == []
    assert sorted(partition.streams) == sorted(STREAMS)
    for stream, state in partition.streams.items():
        assert state.index == 500
        assert (state.topic, state.partition, state.stream) == ("in", 4, stream)
        assert state.tracks[0].scores.sums == alone[stream].tracks[0].scores.sums
    # Only BTC changed regime.
    assert partition.streams["BTC"].segment >= 1
    assert partition.streams["ETH"].segment == partition.streams["AAPL"].segment == 0
    assert partition.next_offset == len(recs)


def test_bad_records_become_dead_letters_and_the_rest_continue() -> None:
    config = make_config()
    encode = EventDecoder().encode
    good = [MarketEvent(stream="A", ts_ms=T0 + DT * i, price=100.0 + i) for i in range(6)]
    oversize = encode(MarketEvent(stream="A" * 150, ts_ms=T0, price=1.0))
    assert len(oversize) > MAX_BYTES
    bad = {
        11: (b"A", b"{oops", Reason.INVALID_JSON),
        13: (b"B", encode(good[2]), Reason.KEY_MISMATCH),
        15: (b"A", b'{"stream": "A", "ts": 1700000000000, "price": -1}', Reason.NON_POSITIVE),
        16: (b"A" * 150, oversize, Reason.OVERSIZE),
        18: (None, None, Reason.EMPTY),
    }
    recs, it = [], iter(good)
    for offset in range(10, 19):
        if offset in bad:
            key, value, _ = bad[offset]
            recs.append(Record(offset, 5000 + offset, key, value))
        else:
            ev = next(it)
            recs.append(Record(offset, 5000 + offset, b"A", encode(ev)))
    partition = PartitionState("in", 1, config, MAX_BYTES)
    out = Effects()
    partition.process(recs, {}, out)
    assert out.processed == 4
    assert [(d.offset, d.reason) for d in out.dead_letters] == [
        (offset, reason) for offset, (_, _, reason) in sorted(bad.items())
    ]
    for d in out.dead_letters:
        key, value, _ = bad[d.offset]
        assert (d.topic, d.partition, d.timestamp_ms) == ("in", 1, 5000 + d.offset)
        assert (d.key, d.value) == (key, value)
        assert d.detail
    # The bad records created no stream and the good ones all reached A.
    assert list(partition.streams) == ["A"]
    assert partition.streams["A"].index == 4
    assert partition.next_offset == 19  # the last record was bad, and still counts


def test_out_of_order_events_are_dead_lettered_by_the_partition() -> None:
    config = make_config()
    encode = EventDecoder().encode
    tolerance = config.max_out_of_order_ms
    events = [
        MarketEvent(stream="A", ts_ms=T0 + tolerance * 3, price=100.0),
        MarketEvent(stream="A", ts_ms=T0, price=101.0),  # far older than the newest
        MarketEvent(stream="A", ts_ms=T0 + tolerance * 3 + 1, price=102.0),
    ]
    recs = [Record(i, 0, b"A", encode(ev)) for i, ev in enumerate(events)]
    partition = PartitionState("in", 0, config, MAX_BYTES)
    out = Effects()
    partition.process(recs, {}, out)
    assert [(d.offset, d.reason) for d in out.dead_letters] == [(1, Reason.OUT_OF_ORDER)]
    assert out.processed == 2
    assert partition.streams["A"].index == 2


def test_next_offset_is_one_past_the_last_record() -> None:
    partition = PartitionState("in", 0, make_config(), MAX_BYTES)
    assert partition.next_offset is None
    partition.process([], {}, Effects())
    assert partition.next_offset is None
    recs = records(interleaved(3), first_offset=40)
    partition.process(recs[:4], {}, Effects())
    assert partition.next_offset == 44
    partition.process(recs[4:], {}, Effects())
    assert partition.next_offset == 40 + len(recs)


def test_a_restored_partition_skips_records_it_already_processed() -> None:
    config = make_config()
    policy = default_policy(len(config.feature_names))
    recs = records(interleaved(400))
    # A bad record in the already-processed range must not be dead-lettered twice.
    recs[498] = Record(recs[498].offset, 0, b"BTC", b"{oops")  # was a BTC event
    original = PartitionState("in", 0, config, MAX_BYTES)
    original.process(recs[:600], {"return": policy}, Effects())
    snapshot = pickle.dumps((original.streams, original.next_offset))

    restored = PartitionState("in", 0, make_config(), MAX_BYTES)
    streams, next_offset = pickle.loads(snapshot)
    restored.restore(streams, next_offset)
    assert restored.next_offset == 600
    assert restored.streams is streams
    assert all(s.config is restored.config for s in streams.values())

    a, b = Effects(), Effects()
    original.process(recs[600:], {"return": policy}, a)
    restored.process(recs[450:], {"return": policy}, b)  # a fetch that raced the seek
    assert view(a) == view(b)
    assert b.processed == len(recs) - 600
    assert {n: s.index for n, s in restored.streams.items()} == {
        "BTC": 399,
        "ETH": 400,
        "AAPL": 400,
    }
    assert restored.next_offset == original.next_offset == len(recs)


def test_restore_rebuilds_the_live_policies() -> None:
    config = make_config()
    d = len(config.feature_names)
    partition = PartitionState("in", 0, config, MAX_BYTES)
    partition.process(records(interleaved(50)), {}, Effects())
    rng = np.random.default_rng(1)
    weights = {
        "layers.0.weight": rng.normal(size=(3, d)).astype(np.float32),
        "layers.0.bias": np.zeros(3, np.float32),
        "layers.2.weight": rng.normal(size=(1, 3)).astype(np.float32),
        "layers.2.bias": np.zeros(1, np.float32),
    }
    partition.streams["ETH"].tracks[0].adopt(4, weights, None)
    streams = stored(partition.streams)
    restored = PartitionState("in", 0, config, MAX_BYTES)
    restored.restore(streams, partition.next_offset)
    x = rng.normal(size=(4, d))
    eth = restored.streams["ETH"].tracks[0].live
    assert eth.version == 4
    assert eth.model is not None
    before = partition.streams["ETH"].tracks[0].live.model
    assert before is not None
    np.testing.assert_array_equal(eth.model.predict(x), before.predict(x))
    assert restored.streams["BTC"].tracks[0].live.model is None


@pytest.mark.parametrize("first", ["BTC", "ETH"])
def test_dirty_tracks_the_streams_a_batch_touched(first: str) -> None:
    config = make_config()
    encode = EventDecoder().encode
    partition = PartitionState("in", 0, config, MAX_BYTES)
    ev = MarketEvent(stream=first, ts_ms=T0, price=10.0)
    partition.process([Record(0, 0, first.encode(), encode(ev))], {}, Effects())
    assert partition.dirty == {first}
    other = MarketEvent(stream="AAPL", ts_ms=T0, price=10.0)
    bad = Record(2, 0, b"ZZZ", b"{oops")  # dead letters touch no stream
    partition.process([Record(1, 0, b"AAPL", encode(other)), bad], {}, Effects())
    assert partition.dirty == {first, "AAPL"}
    partition.dirty.clear()
    partition.process([dataclasses.replace(bad, offset=3)], {}, Effects())
    assert partition.dirty == set()
    partition.process([Record(4, 0, b"AAPL", encode(other))], {}, Effects())
    assert partition.dirty == {"AAPL"}
    partition.restore(dict(partition.streams), partition.next_offset)
    assert partition.dirty == set()


def test_streams_snapshotted_with_other_feature_settings_warm_up_again() -> None:
    config = make_config()
    partition = PartitionState("in", 0, config, MAX_BYTES)
    partition.process(records(interleaved(100)), {}, Effects())
    streams = stored(partition.streams)
    wider = make_config(calendar=["day_of_week"])
    restored = PartitionState("in", 0, wider, MAX_BYTES)
    assert sorted(restored.restore(streams, partition.next_offset)) == sorted(STREAMS)
    assert restored.streams == {}
    # The next events start each stream afresh, with vectors of the new width.
    out = Effects()
    more = [dataclasses.replace(r, offset=r.offset + 10_000) for r in records(interleaved(60))]
    restored.process(more, {}, out)
    assert {s.features.names for s in restored.streams.values()} == {wider.feature_names}
    assert len(wider.feature_names) == len(config.feature_names) + 2
    # The same settings: every stream is adopted.
    again = PartitionState("in", 0, config, MAX_BYTES)
    assert again.restore(stored(partition.streams), 1) == []


def test_a_corpus_of_hostile_input_is_dead_lettered_or_absorbed_and_nothing_breaks() -> None:
    """Issue 12's bad-input classes in one partition: oversized keys and values, keys that
    are not UTF-8, prices flipping between 1e-12 and 1e12, times at both ends of the range.
    Every record is processed or dead-lettered once, the position moves past all of them, and
    every feature, label and snapshot stays finite and picklable."""
    from adaptd.daemon.core.schema import MAX_TS_MS, MIN_TS_MS

    part = PartitionState("in", 0, make_config(), MAX_BYTES)
    encode = EventDecoder().encode
    corpus: list[tuple[bytes | None, bytes | None, str | None]] = [
        (b"K" * 3_000_000, encode(MarketEvent("K", T0, 1.0)), "key_mismatch"),  # 3 MB key
        (b"X", b"{" + b" " * 10_000 + b"}", "oversize"),
        (b"\xff\xfe", encode(MarketEvent("X", T0, 1.0)), "key_mismatch"),  # key not UTF-8
        (b"\xff", b'{"stream": "\xff", "ts": 1, "price": 1}', "undecodable"),
        (b"EDGE", encode(MarketEvent("EDGE", MIN_TS_MS, 1.0)), None),  # year 1
        (b"EDGE", encode(MarketEvent("EDGE", MAX_TS_MS - 1, 1.0)), None),  # end of 2200
        (b"EDGE", b'{"stream": "EDGE", "ts": %d, "price": 1}' % MAX_TS_MS, "bad_timestamp"),
        (b"EDGE", b'{"stream": "EDGE", "ts": %d, "price": 1}' % (MIN_TS_MS - 1), "bad_timestamp"),
        (None, None, "empty_payload"),
    ]
    # A price flipping by 24 orders of magnitude on every event, for long enough to shift.
    corpus += [
        (b"FLIP", encode(MarketEvent("FLIP", T0 + 1000 * i, 1e-12 if i % 2 else 1e12)), None)
        for i in range(400)
    ]
    recs = [Record(k, 0, key, value) for k, (key, value, _) in enumerate(corpus)]
    out = Effects()
    for batch in batches(recs, 50):
        part.process(batch, {"return": default_policy(len(part.config.feature_names))}, out)
    expected = [why for _, _, why in corpus if why is not None]
    assert [d.reason.value for d in out.dead_letters] == expected
    assert out.processed + len(out.dead_letters) == len(corpus)
    assert part.next_offset == len(corpus)
    flip = part.streams["FLIP"]
    assert flip.index == 400
    assert out.episodes
    for _, episode in out.episodes:
        x, y = episode.arrays()
        assert np.isfinite(x).all() and np.isfinite(y).all()
    for request in out.requests:
        assert np.isfinite(request.support_x).all() and np.isfinite(request.support_y).all()
    assert stored(flip).index == 400
