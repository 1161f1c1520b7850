"""Seals of the partition snapshots: a blob is opened only with its key, at its place, and
unchanged; unsealed blobs only where allowed."""

from __future__ import annotations

import pytest

from adaptd.daemon.core.sealing import MAGIC, SealBroken, Sealer

PLACE = "adaptd:state:g:market:0\x00AAA"


def test_a_sealed_blob_opens_at_its_place_with_its_key() -> None:
    sealer = Sealer.derived(b"signing key")
    sealed = sealer.seal(PLACE, b"\x78state")
    assert sealed.startswith(MAGIC) and sealed.endswith(b"\x78state")
    assert sealer.open(PLACE, sealed) == b"\x78state"
    assert Sealer.derived(b"signing key").open(PLACE, sealed) == b"\x78state"  # same group key


@pytest.mark.parametrize(
    ("opener", "place", "change"),
    [
        (Sealer.derived(b"another key"), PLACE, None),
        (Sealer.derived(b"signing key"), PLACE.replace("AAA", "BBB"), None),  # moved
        (Sealer.derived(b"signing key"), PLACE.replace(":0", ":1"), None),
        (Sealer.derived(b"signing key"), PLACE, -1),  # last byte of the state altered
        (Sealer.derived(b"signing key"), PLACE, len(MAGIC)),  # the seal altered
        (Sealer(), PLACE, None),  # sealed, and no key to check it
    ],
)
def test_anything_else_is_refused(opener: Sealer, place: str, change: int | None) -> None:
    sealed = bytearray(Sealer.derived(b"signing key").seal(PLACE, b"\x78state"))
    if change is not None:
        sealed[change] ^= 1
    with pytest.raises(SealBroken):
        opener.open(place, bytes(sealed))


def test_unsealed_blobs_are_read_without_a_key_or_when_migrating() -> None:
    assert Sealer().seal(PLACE, b"\x78state") == b"\x78state"
    assert Sealer().open(PLACE, b"\x78state") == b"\x78state"
    with pytest.raises(SealBroken, match="accept_unsealed_snapshots"):
        Sealer.derived(b"k").open(PLACE, b"\x78state")
    assert Sealer.derived(b"k", accept_unsealed=True).open(PLACE, b"\x78state") == b"\x78state"
