"""Signing the policies: the daemon's private key, the public keys subscribers trust; and,
keyed by the same private key, the seals of the partition snapshots.

The key files are read and checked when the settings load, so a wrong key is a
configuration error that names the setting (the key's bytes never appear in it).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr, field_validator, model_validator

from ..core.sealing import Sealer
from ..core.signing import Keyring, Signer
from .sections import Section, read_file

__all__ = ["SigningSettings"]


class SigningSettings(Section):
    """Ed25519 signatures of the policies (docs/security.md): the daemon signs with a private
    key; subscribers and ``adaptd policies`` verify with the public keys they trust."""

    key_file: Path | None = None
    """PEM file of the daemon's Ed25519 private key (PKCS #8, unencrypted; ``adaptd keys
    generate`` writes one). Without it or ``key``, policies are published unsigned (logged at
    start), and subscribers that verify refuse them."""
    key: SecretStr | None = None
    """The private key's PEM text itself, e.g. from a secret in the environment
    (``ADAPTD_SIGNING__KEY``), instead of ``key_file``."""
    trusted_keys: tuple[Path, ...] = ()
    """PEM files of the Ed25519 public keys whose policies ``adaptd policies`` accepts: the
    daemon's, and during a rotation the next one too."""
    verify: bool = True
    """``adaptd policies`` refuses (and marks) policies that are unsigned, signed by a key not
    trusted, or altered."""
    accept_unsealed_snapshots: bool = False
    """With a signing key, partition snapshots and the meta-learner's checkpoint in Redis are
    sealed with an HMAC derived from it, and a stream state or checkpoint without a valid seal
    is never read (its stream, or meta-training, starts afresh). True also reads unsealed
    ones: for the first restart after upgrading from a version that did not seal them (an
    unsealed pickle also needs state.read_pickled_snapshots)."""

    @field_validator("key_file")
    @classmethod
    def _check_key_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            _private_key(read_file(value))
        return value

    @field_validator("key")
    @classmethod
    def _check_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _private_key(value.get_secret_value().encode())
        return value

    @field_validator("trusted_keys")
    @classmethod
    def _check_trusted(cls, value: tuple[Path, ...]) -> tuple[Path, ...]:
        for path in value:
            try:
                Keyring.from_pem([read_file(path)])
            except ValueError as exc:
                raise ValueError(f"{path}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_key(self) -> SigningSettings:
        if self.key_file is not None and self.key is not None:
            raise ValueError("give key_file or key, not both")
        return self

    def private_pem(self) -> bytes | None:
        """The private key's PEM (None: policies are not signed)."""
        if self.key is not None:
            return self.key.get_secret_value().encode()
        return None if self.key_file is None else read_file(self.key_file)

    def sealer(self) -> Sealer:
        """What seals and opens the partition snapshots: keyed by the signing key when there
        is one (the daemons of a group share it), else storing them unsealed."""
        pem = self.private_pem()
        if pem is None:
            return Sealer()
        return Sealer.derived(pem, accept_unsealed=self.accept_unsealed_snapshots)

    def public_pems(self) -> list[bytes]:
        return [read_file(path) for path in self.trusted_keys]


def _private_key(pem: bytes) -> None:
    try:
        Signer.from_pem(pem)
    except (ValueError, TypeError) as exc:
        # The key's bytes never appear in the message.
        raise ValueError(f"not an unencrypted Ed25519 private key in PEM ({exc})") from None
