"""Signed policies: a record verifies only with the key that signed it, unaltered."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adaptd.daemon.core.policy import build_message, encode_message
from adaptd.daemon.core.signing import (
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    Keyring,
    SignatureError,
    Signer,
    generate_key_pair,
)

PRIVATE, PUBLIC = generate_key_pair()
SIGNER = Signer.from_pem(PRIVATE)
KEYS = Keyring.from_pem([PUBLIC])


def value() -> bytes:
    rng = np.random.default_rng(0)
    return encode_message(
        build_message(
            model_id="BTC-USD",
            version=3,
            parent_version=2,
            stream="BTC-USD",
            weights={
                "layers.0.weight": rng.normal(size=(4, 3)).astype("float32"),
                "layers.0.bias": np.zeros(4, "float32"),
                "layers.2.weight": rng.normal(size=(1, 4)).astype("float32"),
                "layers.2.bias": np.zeros(1, "float32"),
            },
            architecture={"kind": "mlp", "in_dim": 3, "hidden": [4], "activation": "tanh"},
            features={"names": ["a", "b", "c"]},
            metrics={"query_loss_after": 0.5},
        )
    )


def reason(raw: bytes, headers: list[tuple[str, bytes]] | None) -> str:
    with pytest.raises(SignatureError) as info:
        KEYS.verify(raw, headers)
    return info.value.reason


def test_a_signed_record_verifies_with_the_signers_key_id() -> None:
    raw = value()
    headers = SIGNER.headers(raw)
    assert dict(headers)[KEY_ID_HEADER] == SIGNER.key_id.encode()
    assert len(dict(headers)[SIGNATURE_HEADER]) == 64
    assert KEYS.verify(raw, headers) == SIGNER.key_id
    assert KEYS.verify(raw, [("other", b"x"), *headers]) == SIGNER.key_id  # order, extras


def altered(field: str, old: object) -> object:
    if isinstance(old, bool):
        return not old
    if isinstance(old, int | float):
        return old + 1
    if isinstance(old, str):
        return old[:-1] + ("A" if old[-1:] != "A" else "B")
    if isinstance(old, dict):
        return {**old, "added": 1}
    if isinstance(old, list):
        return [*old, 1]
    return {"added": field}


def test_altering_any_field_of_the_message_fails_the_signature() -> None:
    raw = value()
    headers = SIGNER.headers(raw)
    message = json.loads(raw)
    assert len(message) >= 15
    for field, old in message.items():
        changed = json.dumps({**message, field: altered(field, old)}).encode()
        assert reason(changed, headers) == "bad_signature", field
    # The same message re-encoded (other spacing) is other bytes: bytes are what is signed.
    assert reason(json.dumps(message).encode(), headers) == "bad_signature"


def test_flipping_any_byte_of_the_record_or_the_signature_fails() -> None:
    raw = value()
    signature = SIGNER.headers(raw)[0][1]
    key_id = [(KEY_ID_HEADER, SIGNER.key_id.encode())]
    for i in range(len(raw)):
        flipped = raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1 :]
        assert reason(flipped, [(SIGNATURE_HEADER, signature), *key_id]) == "bad_signature", i
    for i in range(len(signature)):
        bad = signature[:i] + bytes([signature[i] ^ 0x80]) + signature[i + 1 :]
        assert reason(raw, [(SIGNATURE_HEADER, bad), *key_id]) == "bad_signature", i


def test_unsigned_and_untrusted_records_are_refused() -> None:
    raw = value()
    headers = SIGNER.headers(raw)
    assert reason(raw, None) == "unsigned"
    assert reason(raw, []) == "unsigned"
    assert reason(raw, [h for h in headers if h[0] == SIGNATURE_HEADER]) == "unsigned"
    assert reason(raw, [h for h in headers if h[0] == KEY_ID_HEADER]) == "unsigned"
    forger = Signer.from_pem(generate_key_pair()[0])
    assert reason(raw, forger.headers(raw)) == "unknown_key"
    # A forger naming the trusted key id: its signature does not verify with that key.
    forged = [
        (SIGNATURE_HEADER, forger.headers(raw)[0][1]),
        (KEY_ID_HEADER, SIGNER.key_id.encode()),
    ]
    assert reason(raw, forged) == "bad_signature"
    assert reason(raw, [(SIGNATURE_HEADER, b"x" * 64), (KEY_ID_HEADER, b"\xff\xfe")]) == (
        "unknown_key"
    )


def test_a_rotation_trusts_both_keys_until_the_old_one_is_dropped() -> None:
    new_private, new_public = generate_key_pair()
    new = Signer.from_pem(new_private)
    assert new.key_id != SIGNER.key_id
    both = Keyring.from_pem([PUBLIC, new_public])
    raw = value()
    assert both.verify(raw, SIGNER.headers(raw)) == SIGNER.key_id
    assert both.verify(raw, new.headers(raw)) == new.key_id
    after = Keyring.from_pem([new_public])
    with pytest.raises(SignatureError, match="not trusted"):
        after.verify(raw, SIGNER.headers(raw))


def test_keys_of_another_kind_are_refused() -> None:
    with pytest.raises(ValueError, match="Ed25519"):
        Keyring.from_pem([PRIVATE])  # a private key where a public one belongs
    with pytest.raises((ValueError, TypeError)):
        Signer.from_pem(PUBLIC)
