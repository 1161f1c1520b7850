"""Strata keys and the round-robin share-out of a batch (pure)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from adaptd.replay.strata import regime_key, share_out, split_regime_key


@pytest.mark.parametrize(("stream", "regime"), [("BTC", 0), ("venue:BTC-USD", 17), (":", 3)])
def test_regime_keys_split_back_even_with_colons(stream: str, regime: int) -> None:
    assert split_regime_key(regime_key(stream, regime)) == (stream, regime)


@pytest.mark.parametrize("bad", ["nocolon", "s:", ":3", "s:-1", "s:1.5"])
def test_a_malformed_key_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="key must look like"):
        split_regime_key(bad)


@pytest.mark.parametrize("bad", [-1, True, 1.0])
def test_a_bad_regime_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="regime must be an integer"):
        regime_key("s", bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("counts", "n", "expected"),
    [
        ({"a": 300, "b": 20, "c": 20}, 30, {"a": 10, "b": 10, "c": 10}),
        ({"a": 300, "b": 20, "c": 20}, 90, {"a": 50, "b": 20, "c": 20}),
        ({"a": 2, "b": 0, "c": 1}, 10, {"a": 2, "c": 1}),
        ({"a": 5}, 0, {}),
        ({}, 4, {}),
    ],
)
def test_share_out_is_even_as_far_as_strata_hold_items(
    counts: dict[str, int], n: int, expected: dict[str, int]
) -> None:
    order, taken = share_out(counts, n, random.Random(0))
    assert taken == expected
    assert Counter(order) == Counter(expected)
    assert len(order) == min(n, sum(counts.values()))


def test_share_out_leftover_draws_go_to_a_random_stratum() -> None:
    firsts = Counter(
        share_out({"a": 9, "b": 9, "c": 9}, 1, random.Random(s))[0][0] for s in range(300)
    )
    assert set(firsts) == {"a", "b", "c"}
    assert min(firsts.values()) > 60


def test_share_out_refuses_a_negative_n() -> None:
    with pytest.raises(ValueError, match="n must be an integer >= 0"):
        share_out({"a": 1}, -1, random.Random(0))
