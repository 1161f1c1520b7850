"""PolicySubscriber on the real broker: it keeps only policies a trusted key signed, and
counts what it refuses."""

from __future__ import annotations

import numpy as np
import pytest
from daemon_support import SIGNING_KEY, TRUSTED, produce, wait_until

from adaptd.daemon.core.policy import build_message, encode_message
from adaptd.daemon.core.signing import SIGNATURE_HEADER, Signer, generate_key_pair
from adaptd.daemon.io.subscriber import PolicySubscriber

pytestmark = pytest.mark.integration


def message(model: str, version: int, scale: float = 1.0) -> bytes:
    rng = np.random.default_rng(version)
    return encode_message(
        build_message(
            model_id=model,
            version=version,
            parent_version=version - 1,
            stream=model,
            weights={
                "layers.0.weight": scale * rng.normal(size=(4, 3)).astype("float32"),
                "layers.0.bias": np.zeros(4, "float32"),
                "layers.2.weight": rng.normal(size=(1, 4)).astype("float32"),
                "layers.2.bias": np.zeros(1, "float32"),
            },
            architecture={"kind": "mlp", "in_dim": 3, "hidden": [4], "activation": "tanh"},
            features={"names": ["a", "b", "c"]},
        )
    )


async def test_only_policies_signed_by_a_trusted_key_reach_the_book(
    kafka_bootstrap, topic_factory
) -> None:
    topic = await topic_factory("signed")
    signer, forger = Signer.from_pem(SIGNING_KEY), Signer.from_pem(generate_key_pair()[0])
    good = message("M", 1)
    forged = message("M", 5, scale=100.0)  # what an intruder would like subscribers to use
    tampered = good.replace(b'"version":1', b'"version":6')
    records = [
        (b"M", good, signer.headers(good)),
        (b"M", forged),  # unsigned
        (b"M", forged, forger.headers(forged)),  # signed, by a key nobody trusts
        # Signed by the intruder, naming the trusted key's id:
        (b"M", forged, [(SIGNATURE_HEADER, forger.headers(forged)[0][1]),
                        ("adaptd-key-id", signer.key_id.encode())]),
        (b"M", tampered, signer.headers(good)),  # the daemon's signature, another record
    ]  # fmt: skip
    await produce(kafka_bootstrap, topic, records)
    async with PolicySubscriber(kafka_bootstrap, topic, keyring=TRUSTED) as sub:

        async def all_read() -> bool:
            return sub.received == len(records)

        await wait_until(all_read, 30, "every record")
        policy = sub.book.latest("M")
        assert policy is not None and policy.version == 1
        assert dict(sub.refused) == {"unsigned": 1, "unknown_key": 1, "bad_signature": 2}

    # Without verification (explicitly), the forged version would have won.
    async with PolicySubscriber(kafka_bootstrap, topic, verify=False) as plain:
        await plain.wait_for("M", min_version=6, timeout_s=30)
        assert not plain.refused


def test_verifying_needs_trusted_keys() -> None:
    with pytest.raises(ValueError, match="keyring"):
        PolicySubscriber("127.0.0.1:9092")
