"""Signed policies: Ed25519 signatures over the exact bytes of each policy record.

The daemon signs the record value it publishes (the policy message's JSON, which holds the
weights, their sha256 and every other field) and sends the signature and the signing key's id
in two record headers, ``adaptd-signature`` (64 bytes) and ``adaptd-key-id`` (ASCII). Signing
the bytes as sent, not a re-encoding, lets a subscriber in any language verify them with an
Ed25519 library and the public key alone: no canonical form to reproduce. The key id is the
first 16 hex digits of the sha256 of the raw public key, so a subscriber that trusts several
keys (during a rotation) knows which one to try, and a key id cannot be chosen to collide
with a trusted one.

Only the holder of the private key (the daemon) can sign: anyone who can write to the policy
topic but does not hold it can replay a signed policy (an older version, which subscribers
ignore as stale) but cannot forge or alter one.

>>> private_pem, public_pem = generate_key_pair()
>>> signer = Signer.from_pem(private_pem)
>>> headers = signer.headers(b'{"model_id": "BTC-USD", "version": 3}')
>>> keyring = Keyring.from_pem([public_pem])
>>> keyring.verify(b'{"model_id": "BTC-USD", "version": 3}', headers) == signer.key_id
True
>>> keyring.verify(b'{"model_id": "BTC-USD", "version": 4}', headers)
Traceback (most recent call last):
...
adaptd.daemon.core.signing.SignatureError: bad_signature: the record is not what key ... signed
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from .policy import PolicyError

__all__ = [
    "KEY_ID_HEADER",
    "SIGNATURE_HEADER",
    "Keyring",
    "SignatureError",
    "Signer",
    "generate_key_pair",
    "key_id_of",
]

SIGNATURE_HEADER = "adaptd-signature"
KEY_ID_HEADER = "adaptd-key-id"

Headers = Sequence[tuple[str, bytes]]


class SignatureError(PolicyError):
    """A policy record that is unsigned, signed with a key not trusted, or altered."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        """``unsigned``, ``unknown_key`` or ``bad_signature`` (a metric label)."""


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """The key's id: the first 16 hex digits of the sha256 of its 32 raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_key_pair() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair as PEM: (private key in PKCS #8, public key)."""
    private = Ed25519PrivateKey.generate()
    return (
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


class Signer:
    """Signs record values with one private key."""

    __slots__ = ("_key", "key_id")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.key_id = key_id_of(key.public_key())

    @classmethod
    def from_pem(cls, pem: bytes) -> Signer:
        """From an unencrypted PEM private key (ValueError when it is not Ed25519)."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (TypeError, UnsupportedAlgorithm) as exc:  # encrypted, or an unknown kind
            raise ValueError(str(exc)) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"not an Ed25519 private key: {type(key).__name__}")
        return cls(key)

    def headers(self, value: bytes) -> list[tuple[str, bytes]]:
        """The record headers that sign ``value``."""
        return [
            (SIGNATURE_HEADER, self._key.sign(value)),
            (KEY_ID_HEADER, self.key_id.encode("ascii")),
        ]


class Keyring:
    """The public keys a subscriber trusts, by key id."""

    __slots__ = ("keys",)

    def __init__(self, keys: Iterable[Ed25519PublicKey]) -> None:
        self.keys = {key_id_of(k): k for k in keys}

    @classmethod
    def from_pem(cls, pems: Iterable[bytes]) -> Keyring:
        """From PEM public keys (ValueError when one is not an Ed25519 public key)."""
        keys = []
        for pem in pems:
            try:
                key = serialization.load_pem_public_key(pem)
            except (ValueError, UnsupportedAlgorithm) as exc:
                raise ValueError(f"not an Ed25519 public key in PEM ({exc})") from None
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError(f"not an Ed25519 public key: {type(key).__name__}")
            keys.append(key)
        return cls(keys)

    def verify(self, value: bytes, headers: Headers | None) -> str:
        """The id of the trusted key that signed ``value``; :class:`SignatureError` when it is
        unsigned, signed by a key not in the ring, or not what the key signed."""
        found = {name: raw for name, raw in headers or ()}
        signature, key_id = found.get(SIGNATURE_HEADER), found.get(KEY_ID_HEADER)
        if signature is None or key_id is None:
            raise SignatureError("unsigned", "the record has no signature headers")
        name = key_id.decode("ascii", errors="replace")
        key = self.keys.get(name)
        if key is None:
            raise SignatureError("unknown_key", f"key id {name!r} is not trusted")
        try:
            key.verify(signature, value)
        except InvalidSignature:
            raise SignatureError(
                "bad_signature", f"the record is not what key {name} signed"
            ) from None
        return name

    def __len__(self) -> int:
        return len(self.keys)
