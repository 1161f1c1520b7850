"""The reservoir's key layout: one hash tag per prefix, and its two indexes of slots."""

from __future__ import annotations

import pytest

from adaptd.replay.holdout import HoldoutKeys
from adaptd.replay.layout import ReservoirKeys, Strata, check_prefix


def test_every_key_carries_the_prefix_as_its_hash_tag() -> None:
    keys = ReservoirKeys.for_prefix("desk-1")
    names = [*keys, keys.stream_set("s"), keys.regime_set("s:0")]
    assert all(name.startswith("desk-1:reservoir:{desk-1}:") for name in names)
    assert len(set(names)) == len(names)


def test_the_indexes_by_stream_and_by_regime() -> None:
    keys = ReservoirKeys.for_prefix("p")
    assert keys.by_stream == Strata(keys.counts, keys.stream_prefix)
    assert keys.by_regime == Strata(keys.regime_counts, keys.regime_prefix)
    assert keys.by_stream.set_of("a:b") == keys.stream_set("a:b") == "p:reservoir:{p}:stream:a:b"
    assert keys.by_regime.set_of("a:3") == keys.regime_set("a:3") == "p:reservoir:{p}:regime:a:3"


@pytest.mark.parametrize("prefix", ["", "a{b", "a}b", "{a}"])
def test_a_prefix_that_cannot_be_a_hash_tag_is_refused(prefix: str) -> None:
    for make in (check_prefix, ReservoirKeys.for_prefix, HoldoutKeys.for_prefix):
        with pytest.raises(
            ValueError, match=f"prefix must be non-empty and free of braces, got {prefix!r}"
        ):
            make(prefix)
    assert check_prefix("adaptd") == "adaptd"
