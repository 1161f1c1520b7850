"""Partition snapshots sealed with an HMAC, so that whoever can write to Redis cannot make the
daemon read a state they wrote or altered.

A stream's state is stored in a typed format that runs no code (:mod:`.state_format`), but
what it holds steers the daemon: its detectors, its labels, its live policy. Earlier versions
stored pickles, which run whatever they name; those are read only when sealed (or by leave,
``state.read_pickled_snapshots``). Sealing prefixes each stored blob with ``MAGIC`` and an
HMAC-SHA256 over the place it is stored at (the Redis key and the stream's field) and the
blob; :meth:`Sealer.open` checks it before anything is read, in constant time. Binding the
place means a sealed state cannot be copied onto another stream or partition either. It does
not stop a writer from putting back an older sealed state of the same stream (a rollback):
that takes the key's holders only back to a state the daemon itself wrote.

The key is derived from the daemon's policy-signing key (:meth:`Sealer.derived`): the
daemons of one group share it, as they must to restore each other's partitions. Without a
key, blobs are stored as they are and read only when unsealed. With one, an unsealed blob (a
snapshot written before sealing, or by a writer without the key) is refused unless
``accept_unsealed`` (one restart, to migrate).

>>> sealer = Sealer.derived(b"the daemon's signing key")
>>> sealed = sealer.seal("state:g:market:0\\x00AAA", b"pickle")
>>> sealer.open("state:g:market:0\\x00AAA", sealed)
b'pickle'
>>> try:
...     sealer.open("state:g:market:0\\x00BBB", sealed)
... except SealBroken as exc:
...     print(exc)
the snapshot's seal does not match: altered, moved or sealed with another key
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["MAGIC", "SealBroken", "Sealer"]

MAGIC = b"\xa5adaptd-seal1"
"""Starts a sealed blob (a typed state starts with its own magic, an older pickled one with
0x78)."""
_MAC = hashlib.sha256().digest_size
_LABEL = b"adaptd partition snapshot seal v1"


class SealBroken(ValueError):
    """A stored blob that must not be read: its seal does not match, or it is unsealed where
    seals are required."""


class Sealer:
    """Seals and opens stored blobs with one key (None: blobs are stored unsealed)."""

    def __init__(self, key: bytes | None = None, *, accept_unsealed: bool = False) -> None:
        self.key = key
        self.accept_unsealed = accept_unsealed

    @classmethod
    def derived(cls, secret: bytes, *, accept_unsealed: bool = False) -> Sealer:
        """A sealer whose key is derived from ``secret`` (the policy-signing key's PEM), so the
        signing key itself never keys an HMAC."""
        return cls(
            hmac.new(secret, _LABEL, hashlib.sha256).digest(), accept_unsealed=accept_unsealed
        )

    @property
    def seals(self) -> bool:
        return self.key is not None

    def seal(self, where: str, blob: bytes) -> bytes:
        """``blob`` as stored at ``where`` (sealed when there is a key)."""
        if self.key is None:
            return blob
        return MAGIC + self._mac(where, blob) + blob

    def open(self, where: str, data: bytes) -> bytes:
        """The blob stored at ``where``, once its seal is checked; :class:`SealBroken` when it
        must not be read."""
        if data.startswith(MAGIC):
            if self.key is None:
                raise SealBroken("the snapshot is sealed and this daemon has no key to check it")
            mac, blob = data[len(MAGIC) : len(MAGIC) + _MAC], data[len(MAGIC) + _MAC :]
            if not hmac.compare_digest(mac, self._mac(where, blob)):
                raise SealBroken(
                    "the snapshot's seal does not match: altered, moved or sealed with another key"
                )
            return blob
        if self.key is not None and not self.accept_unsealed:
            raise SealBroken("the snapshot is not sealed (signing.accept_unsealed_snapshots)")
        return data

    def _mac(self, where: str, blob: bytes) -> bytes:
        assert self.key is not None
        mac = hmac.new(self.key, digestmod=hashlib.sha256)
        place = where.encode()
        mac.update(len(place).to_bytes(4, "big") + place)
        mac.update(blob)
        return mac.digest()
