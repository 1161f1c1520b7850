"""The typed format of stored stream states: values come back as they were (types, identity),
a stream's state of every configuration is stored and continues exactly, and a blob that
names anything not allowed, or is malformed, is refused without running anything."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import zlib
from collections import deque
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from service_support import MAX_BYTES, TOPIC, market_records

from adaptd.daemon.config.settings import load_settings
from adaptd.daemon.core import state_format
from adaptd.daemon.core.effects import Effects
from adaptd.daemon.core.labels import Example
from adaptd.daemon.core.partition import PartitionState
from adaptd.daemon.core.state_format import MAGIC, StateFormatError, dumps, loads
from adaptd.daemon.core.stream import StreamState
from adaptd.daemon.service.configs import stream_config, tasks_of
from adaptd.replay.episode import encode_episode


def _blob(value: Any) -> bytes:
    """A blob as a writer without adaptd would make it."""
    return MAGIC + zlib.compress(msgpack.packb(value, use_bin_type=True))


def _object(name: str, args: list[Any], state: Any = None) -> msgpack.ExtType:
    return msgpack.ExtType(8, msgpack.packb([name, args, state], use_bin_type=True))


# -- values ------------------------------------------------------------------------------------


def test_values_come_back_with_their_types() -> None:
    value = {
        "none": None,
        "flags": [True, False],
        "ints": (0, -1, 2**63 - 1, -(2**63), 2**80, -(2**70)),
        "floats": (0.0, -0.0, 1.5, math.inf, -math.inf),
        "mixed": (1, 1.0, "1", b"1", None),
        "empty": ((), [], {}, set(), frozenset()),
        (1, "tuple key"): {3: "int key", 2.5: "float key", None: "none key"},
        "sets": ({1, 2}, frozenset({"a"})),
        "deques": (deque([1, 2, 3], maxlen=3), deque(["x"])),
        "scalars": (np.float64(1.25), np.float32(2.5), np.int64(-3), np.bool_(True)),
    }
    back = loads(dumps(value))
    assert back == value
    assert type(back["ints"]) is tuple and type(back["flags"]) is list
    assert [type(v) for v in back["scalars"]] == [np.float64, np.float32, np.int64, np.bool_]
    assert back["deques"][0].maxlen == 3 and back["deques"][1].maxlen is None
    assert math.copysign(1.0, back["floats"][1]) == -1.0
    assert math.isnan(loads(dumps((math.nan, 1.0)))[0])


@pytest.mark.parametrize("dtype", ["float64", "float32", "int64", "int8", "uint16", "bool"])
def test_arrays_come_back_equal_writable_and_their_own(dtype: str) -> None:
    array = (np.arange(12) % 5).astype(dtype).reshape(3, 4)
    for a in (array, array.T, array[:, 1], np.asarray(array[0, 0])):
        back = loads(dumps(a))
        assert back.dtype == a.dtype and back.shape == a.shape
        assert np.array_equal(back, a)
        back[...] = 0  # restored states update their arrays in place
    assert loads(dumps(np.zeros((0, 3)))).shape == (0, 3)


def test_objects_keep_their_identity_within_a_blob() -> None:
    shared = Example((1.0, 2.0), 0.5, 3, 4, 5)
    array = np.ones(3)
    window = deque([shared])
    value = {"a": [shared, array, window], "b": (shared, array, window)}
    back = loads(dumps(value))
    assert back["a"][0] is back["b"][0] and type(back["a"][0]) is Example
    assert back["a"][1] is back["b"][1] and back["a"][2] is back["b"][2]
    assert back["a"][0] == shared and back["a"][0].x == (1.0, 2.0)


def test_state_and_constructor_arguments_are_rebuilt_as_pickle_would() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Frozen:
        a: int

    # Classes outside the allowed ones are not stored: this module's are not.
    with pytest.raises(StateFormatError, match=r"test_state_format\..*Frozen is not a type"):
        dumps(Frozen(1))
    with pytest.raises(StateFormatError, match="of dtype object is not stored"):
        dumps(np.array([None, 1], dtype=object))
    with pytest.raises(StateFormatError, match=r"builtins\.builtin_function_or_method is not"):
        dumps({"f": math.sqrt})
    with pytest.raises(StateFormatError, match=r"builtins\.type is not"):
        dumps({"cls": Example})  # classes are code, not state


# -- stream states of every configuration ----------------------------------------------------


CONFIGURATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "defaults": {},
    "every task": {"adaptation": {"tasks": ["return", "risk", "strategy"]}},
    "a task from outside adaptd": {
        "adaptation": {"tasks": ["return", "direction_task:DirectionTask"]}
    },
    "every detector, confirmed": {
        "detection": {
            "detectors": ["adwin", "page_hinkley", "cusum", "focus", "bocpd", "resegment"],
            "confirm": True,
        }
    },
    "calendar features": {"features": {"calendar": ["hour_of_day", "day_of_week", "month_end"]}},
}
SMALL = {  # short warm-ups and small adaptation sets: a shift within 250 events
    "features": {"momentum_horizons": [5, 20], "warmup_events": 20, "label_horizon": 3},
    "detection": {"warmup_events": 100, "cooldown_events": 50},
    "adaptation": {"shots": 12, "query_size": 4},
    "replay": {"episode_size": 16},
}


def _partition(sections: dict[str, dict[str, Any]]) -> PartitionState:
    merged = {k: SMALL.get(k, {}) | sections.get(k, {}) for k in SMALL.keys() | sections.keys()}
    s = load_settings(environ={}, **merged)
    return PartitionState(TOPIC, 3, stream_config(s, tasks_of(s)), MAX_BYTES)


def _view(out: Effects) -> tuple:
    return (
        [(s.id, s.offset) for s in out.shifts],
        [(task, encode_episode(e)) for task, e in out.episodes],
        [(r.id, r.support_x.tobytes(), r.query_y.tobytes()) for r in out.requests],
        out.examples,
        out.processed,
    )


@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_a_stored_stream_continues_exactly_like_the_original(name: str) -> None:
    sections = CONFIGURATIONS[name]
    original = _partition(sections)
    first = [r for seed, s in enumerate("AB") for r in market_records(s, 3, seed=seed)]
    first = [dataclasses.replace(r, offset=i) for i, r in enumerate(first)]
    original.process(first, {}, Effects())
    blobs = {n: dumps(s) for n, s in original.streams.items()}
    states = {n: loads(b) for n, b in blobs.items()}
    # Stored again unchanged: nothing is lost or added on the way.
    assert {n: dumps(s) for n, s in states.items()} == blobs
    restored = _partition(sections)
    restored.restore(states, original.next_offset)

    more = [r for seed, s in enumerate("AB") for r in market_records(s, 3, seed=seed, day=9)]
    more = [dataclasses.replace(r, offset=len(first) + i) for i, r in enumerate(more)]
    want, got = Effects(), Effects()
    original.process(more, {}, want)
    restored.process(more, {}, got)
    assert _view(got) == _view(want) and got.processed == len(more)


@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_a_stream_state_shares_no_list_or_dict(name: str) -> None:
    # The format stores lists and dicts by value: two references to one would come back as
    # two objects. Whatever a stream state holds twice must be of another type.
    part = _partition(CONFIGURATIONS[name])
    part.process(market_records("A", 3), {}, Effects())
    seen: dict[int, str] = {}
    keep: list[Any] = []

    def walk(obj: Any, path: str) -> None:
        if isinstance(obj, (str, bytes, int, float, type(None), np.ndarray, np.generic)):
            return
        if id(obj) in seen:
            assert type(obj) not in (list, dict), f"{path} is {seen[id(obj)]}"
            return
        seen[id(obj)] = path
        if type(obj) in (list, tuple, set, frozenset, deque) or isinstance(obj, tuple):
            for i, item in enumerate(obj):
                walk(item, f"{path}[{i}]")
        elif type(obj) is dict:
            for key, item in obj.items():
                walk(key, f"{path}.keys()")
                walk(item, f"{path}[{key!r}]")
        elif not isinstance(obj, type):
            reduced = obj.__reduce_ex__(2)
            keep.append(reduced)  # its temporaries stay alive: ids stay unique
            walk(reduced[1][1:], f"{path}<args>")
            walk(reduced[2] if len(reduced) > 2 else None, f"{path}<state>")

    (state,) = part.streams.values()
    assert isinstance(state, StreamState)
    walk(state, "stream")
    assert len(seen) > 100


def test_writing_and_reading_a_state_leave_no_garbage_cycles() -> None:
    # The daemon collects rarely (``tune_gc``): a cycle per write held every state it wrote
    # until a full collection, and a soak grew by 16 MB per 1,000 adaptations.
    part = _partition(CONFIGURATIONS["every task"])
    part.process(market_records("A", 3), {}, Effects())
    (state,) = part.streams.values()
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        blob = dumps(state)
        assert gc.collect() == 0
        loads(blob)
        assert gc.collect() == 0
    finally:
        if was:
            gc.enable()


# -- what is refused -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "posix.system",
        "builtins.eval",
        "subprocess.Popen",
        "adaptd.daemon.io.stores.SnapshotStore",  # adaptd's, but not the pure core's
        "adaptd.daemon.core.nothing.Here",
        "adaptd.daemon.core.state_format.loads",  # allowed module, but not a class
    ],
)
def test_a_blob_naming_anything_else_is_refused(name: str) -> None:
    with pytest.raises(
        StateFormatError, match=r"not a type it may hold|is not that class|does not"
    ):
        loads(_blob({"x": _object(name, ["true"])}))


def test_malformed_blobs_are_refused() -> None:
    good = dumps({"a": np.arange(4.0)})
    raw = zlib.decompress(good[len(MAGIC) :])
    arrays = msgpack.ExtType(6, msgpack.packb(["<f8", [5], b"\x00" * 32]))
    objects = msgpack.ExtType(6, msgpack.packb(["|O", [1], b"\x00" * 8]))
    for blob, why in [
        (b"\x78" + good, "not a stored stream state"),
        (MAGIC + b"not zlib", "malformed"),
        (MAGIC + zlib.compress(raw[:-3]), "malformed"),
        (_blob(arrays), "does not match its shape"),
        (_blob(objects), "dtype object"),
        (_blob(msgpack.ExtType(1, (7).to_bytes(4, "big"))), "reference 7"),
        (_blob(msgpack.ExtType(10, b"\x00" * 7)), "whole doubles"),
        (_blob(msgpack.ExtType(99, b"")), "unknown extension code 99"),
    ]:
        with pytest.raises(StateFormatError, match=why):
            loads(blob)


def test_a_third_party_state_that_cannot_be_parsed_is_refused_not_fatal() -> None:
    # river's ADWIN keeps its window in Rust, and panics on bytes it cannot parse.
    name = "river._river_rust.drift.AdaptiveWindowing"
    for state in (b"", b"garbage", b"\xff" * 64):
        with pytest.raises(StateFormatError, match="AdaptiveWindowing refused its state"):
            loads(_blob(_object(name, [0.002, 32, 5, 5, 10], state)))


def test_a_blob_that_inflates_without_end_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_format, "MAX_BYTES", 1000)
    with pytest.raises(StateFormatError, match="inflates beyond 1000 bytes"):
        loads(MAGIC + zlib.compress(msgpack.packb(b"\x00" * 5000)))
    assert loads(MAGIC + zlib.compress(msgpack.packb(b"\x00" * 900))) == b"\x00" * 900


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_are_refused_or_read_never_anything_else(body: bytes) -> None:
    for blob in (MAGIC + body, MAGIC + zlib.compress(body)):
        with contextlib.suppress(StateFormatError):
            loads(blob)


def test_a_policy_task_from_outside_adaptd_allows_its_package() -> None:
    name = "direction_task.UpRule"
    if not state_format.allowed(name):  # the first resolve allows it, once per process
        from adaptd.daemon.core.tasks.registry import resolve

        resolve("direction_task:DirectionTask")
    assert state_format.allowed(name)
    assert not state_format.allowed("direction_task_other.UpRule")
