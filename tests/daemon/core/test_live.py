"""The live policy of a (stream, task) and its requests in flight."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from state_support import stored

from adaptd.daemon.core.effects import AdaptationRequest
from adaptd.daemon.core.live import PolicySlot


def request(name: str) -> AdaptationRequest:
    x = np.zeros((2, 3), np.float32)
    return AdaptationRequest(
        id=name,
        stream="X",
        shift=SimpleNamespace(id=name),  # type: ignore[arg-type]
        support_x=x,
        support_y=x[:, 0],
        query_x=x,
        query_y=x[:, 0],
        parent_version=0,
        parent_weights=None,
        first_offset=0,
        last_offset=1,
        ready_wall_time=0.0,
    )


def weights(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "layers.0.weight": rng.normal(size=(4, 3)).astype(np.float32),
        "layers.0.bias": np.zeros(4, np.float32),
        "layers.2.weight": rng.normal(size=(1, 4)).astype(np.float32),
        "layers.2.bias": np.zeros(1, np.float32),
    }


def test_one_request_in_flight_and_the_newest_waits() -> None:
    slot = PolicySlot()
    first, second, third = request("a"), request("b"), request("c")
    assert slot.submit(first) is True
    assert slot.submit(second) is False
    assert slot.submit(third) is False  # replaces the waiting one
    assert (slot.pending, slot.queued) == (first, third)


def test_completing_hands_over_the_queued_request_against_the_live_policy() -> None:
    slot = PolicySlot()
    first, second = request("a"), request("b")
    slot.submit(first)
    slot.submit(second)
    w = weights(1)
    slot.adopt(3, w, "tanh")
    assert slot.complete("not-pending") is None and slot.pending is first
    handed = slot.complete("a")
    assert handed is not None and handed.id == "b"
    assert (handed.parent_version, handed.parent_weights) == (3, w)
    assert (second.parent_version, second.parent_weights) == (0, None)  # not rewritten
    assert (slot.pending, slot.queued) == (handed, None)
    assert slot.complete("b") is None and slot.pending is None


def test_adopt_builds_the_numpy_model_and_a_snapshot_leaves_it_out() -> None:
    slot = PolicySlot()
    slot.adopt(2, weights(0), "tanh")
    assert slot.model is not None and slot.model.in_dim == 3
    restored = stored(slot)
    assert restored.model is None and restored.version == 2
    restored.rebuild("tanh")
    x = np.ones((2, 3))
    np.testing.assert_array_equal(restored.model.predict(x), slot.model.predict(x))
    empty = PolicySlot()
    empty.rebuild("tanh")
    assert empty.model is None
