from __future__ import annotations

import base64
import hashlib
import json

import msgspec
import numpy as np
import pytest
import torch
from torch.func import functional_call

from adaptd.adapters.codec import params_from_bytes, params_to_bytes
from adaptd.adapters.network import PolicyNet, init_params
from adaptd.adapters.serving import NumpyPolicy
from adaptd.daemon.core.policy import (
    POLICY_SCHEMA,
    Policy,
    PolicyBook,
    PolicyError,
    PolicyMessage,
    ShiftRef,
    build_message,
    decode_message,
    encode_message,
)

NAMES = ("a", "b", "c", "d", "e")


def net_and_weights(seed: int = 0, hidden: tuple[int, ...] = (6, 4)) -> tuple[PolicyNet, dict]:
    net = PolicyNet(in_dim=len(NAMES), hidden=hidden)
    params = init_params(net, seed=seed)
    return net, {k: v.numpy().copy() for k, v in params.items()}


def message(
    model_id: str = "BTC-USD", version: int = 2, parent_version: int = 1, seed: int = 0
) -> PolicyMessage:
    _, weights = net_and_weights(seed)
    return build_message(
        model_id=model_id,
        version=version,
        parent_version=parent_version,
        stream=model_id,
        weights=weights,
        architecture={"kind": "mlp", "in_dim": len(NAMES), "hidden": [6, 4], "activation": "tanh"},
        features={"names": list(NAMES)},
        shift=ShiftRef("s1", ("adwin:returns",), 608, 1700, "in", 0, 42),
        metrics={"query_loss_before": 1.0, "query_loss_after": 0.5},
        created_ms=1_700_000_000_000,
    )


def with_raw_weights(msg: PolicyMessage, raw: bytes, sha: str | None = None) -> PolicyMessage:
    return msgspec.structs.replace(
        msg,
        weights=base64.b64encode(raw).decode("ascii"),
        sha256=hashlib.sha256(raw).hexdigest() if sha is None else sha,
    )


def test_build_encode_decode_round_trip() -> None:
    msg = message()
    decoded = decode_message(encode_message(msg))
    assert decoded == msg
    assert decoded.schema == POLICY_SCHEMA
    assert decoded.shift == ShiftRef("s1", ("adwin:returns",), 608, 1700, "in", 0, 42)
    assert json.loads(encode_message(msg))["model_id"] == "BTC-USD"
    # The weights are the safetensors bytes of the float32 parameters, checksummed.
    raw = decoded.weight_bytes()
    assert hashlib.sha256(raw).hexdigest() == decoded.sha256
    _, weights = net_and_weights(0)
    restored = params_from_bytes(raw)
    assert sorted(restored) == sorted(weights)
    for name, value in weights.items():
        np.testing.assert_array_equal(restored[name], value)


def test_version_must_exceed_parent_version() -> None:
    for parent in (2, 3):
        with pytest.raises(ValueError, match=rf"version 2 must be above parent_version {parent}"):
            message(version=2, parent_version=parent)


def test_tampered_weights_fail_the_checksum_naming_model_and_version() -> None:
    msg = message(model_id="ETH-USD", version=7, parent_version=3)
    raw = bytearray(msg.weight_bytes())
    raw[-1] ^= 0x01  # one bit of one weight
    tampered = msgspec.structs.replace(msg, weights=base64.b64encode(bytes(raw)).decode())
    data = encode_message(tampered)
    decoded = decode_message(data)  # decoding does not verify; using does
    with pytest.raises(PolicyError, match=r"ETH-USD v7: sha256 mismatch"):
        decoded.weight_bytes()
    with pytest.raises(PolicyError, match=r"ETH-USD v7"):
        Policy(decoded)


def test_tampered_checksum_is_refused() -> None:
    msg = message(model_id="ETH-USD", version=7, parent_version=3)
    bad = msgspec.structs.replace(msg, sha256="0" * 64)
    with pytest.raises(PolicyError, match=r"ETH-USD v7: sha256 mismatch"):
        Policy(decode_message(encode_message(bad)))


def test_weights_that_are_not_base64_are_refused() -> None:
    bad = msgspec.structs.replace(message(version=4, parent_version=0), weights="not base64!!")
    with pytest.raises(PolicyError, match=r"BTC-USD v4: weights are not base64"):
        bad.weight_bytes()


def test_unknown_schema_and_bad_json_are_refused() -> None:
    other = msgspec.structs.replace(message(), schema="adaptd.policy/v2")
    with pytest.raises(PolicyError, match=r"unknown policy schema 'adaptd.policy/v2'"):
        decode_message(encode_message(other))
    with pytest.raises(PolicyError, match="not a policy message"):
        decode_message(b"{not json")
    with pytest.raises(PolicyError, match="not a policy message"):
        decode_message(b'{"schema": "adaptd.policy/v1"}')  # fields missing


def test_book_keeps_the_latest_version_and_counts_stale_and_duplicate() -> None:
    book = PolicyBook()
    assert book.latest("BTC-USD") is None
    assert book.offer(message(version=1, parent_version=0, seed=1))
    assert book.offer(message(version=3, parent_version=1, seed=3))
    assert book.latest("BTC-USD").version == 3
    assert not book.offer(message(version=2, parent_version=1, seed=2))  # stale
    assert not book.offer(message(version=3, parent_version=2, seed=4))  # duplicate version
    assert (book.ignored, book.corrupt) == (2, 0)
    # The stale/duplicate ones did not replace the live weights.
    kept = book.latest("BTC-USD").message
    assert kept == message(version=3, parent_version=1, seed=3)
    # Models are independent.
    assert book.offer(message(model_id="AAPL", version=1, parent_version=0))
    assert book.models() == ["AAPL", "BTC-USD"]
    assert len(book) == 2


def test_book_refuses_a_corrupt_version_and_keeps_the_previous() -> None:
    book = PolicyBook()
    assert book.offer(message(version=3, parent_version=1))
    good4 = message(version=4, parent_version=3, seed=9)
    bad4 = msgspec.structs.replace(good4, sha256="f" * 64)
    with pytest.raises(PolicyError, match="BTC-USD v4"):
        book.offer(bad4)
    assert book.corrupt == 1
    assert book.latest("BTC-USD").version == 3
    # The genuine v4 is still accepted afterwards.
    assert book.offer(good4)
    assert book.latest("BTC-USD").version == 4


def test_book_refuses_checksummed_bytes_that_are_not_weights() -> None:
    book = PolicyBook()
    assert book.offer(message(version=1, parent_version=0))
    garbage = with_raw_weights(message(version=2, parent_version=1), b"definitely not safetensors")
    with pytest.raises(PolicyError, match="BTC-USD v2"):
        book.offer(garbage)
    assert book.corrupt == 1
    assert book.latest("BTC-USD").version == 1


def test_feature_names_must_match_the_network_width() -> None:
    msg = msgspec.structs.replace(message(version=5, parent_version=0), features={"names": ["a"]})
    with pytest.raises(PolicyError, match=r"BTC-USD v5: 1 feature names .* input width 5"):
        Policy(msg)


def test_predict_by_name_by_sequence_and_in_batches() -> None:
    policy = Policy(message())
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(7, len(NAMES))).astype(np.float32)
    batch = policy.predict(rows)
    assert batch.shape == (7,)
    for i, row in enumerate(rows):
        by_sequence = policy.predict(list(row))
        # Order of the mapping does not matter, names do; extra names are ignored.
        pairs = list(zip(NAMES, row.tolist(), strict=True))
        by_name = policy.predict({"extra": 9.0, **dict(reversed(pairs))})
        assert by_sequence.shape == by_name.shape == ()
        assert float(by_sequence) == pytest.approx(float(batch[i]), abs=1e-12)
        assert float(by_name) == pytest.approx(float(batch[i]), abs=1e-12)


def test_predict_names_the_missing_feature() -> None:
    policy = Policy(message())
    with pytest.raises(KeyError, match=r"features missing for BTC-USD: c, e"):
        policy.predict({"a": 0.0, "b": 0.0, "d": 0.0})


def test_predict_refuses_the_wrong_width() -> None:
    policy = Policy(message())
    with pytest.raises(ValueError, match="expected 5 features, got 4"):
        policy.predict([0.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_predictions_match_the_torch_network_and_numpy_serving(seed: int) -> None:
    net, weights = net_and_weights(seed, hidden=(8, 3))
    msg = build_message(
        model_id="m",
        version=1,
        parent_version=0,
        stream="m",
        weights=weights,
        architecture={"activation": "tanh"},
        features={"names": list(NAMES)},
    )
    policy = Policy(decode_message(encode_message(msg)))
    x = np.random.default_rng(seed).normal(size=(32, len(NAMES))).astype(np.float32)
    params = {k: torch.from_numpy(v) for k, v in weights.items()}
    with torch.no_grad():
        expected_torch = functional_call(net, params, (torch.from_numpy(x),)).numpy()
    expected_numpy = NumpyPolicy.from_params(weights, activation="tanh").predict(x)
    got = policy.predict(x)
    np.testing.assert_allclose(got, expected_numpy, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got, expected_torch, rtol=1e-5, atol=1e-6)
    # Not a degenerate network: the predictions vary with the input.
    assert np.std(got) > 1e-3


def test_relu_activation_is_taken_from_the_architecture() -> None:
    net = PolicyNet(in_dim=len(NAMES), hidden=(6,), activation="relu")
    weights = {k: v.numpy() for k, v in init_params(net, seed=5).items()}
    msg = build_message(
        model_id="m",
        version=1,
        parent_version=0,
        stream="m",
        weights=weights,
        architecture={"activation": "relu"},
        features={"names": list(NAMES)},
    )
    x = np.random.default_rng(0).normal(size=(16, len(NAMES))).astype(np.float32)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(Policy(msg).predict(x), expected, rtol=1e-5, atol=1e-6)


def test_weights_bytes_do_not_depend_on_dict_order() -> None:
    _, weights = net_and_weights(0)
    common = {
        "model_id": "m",
        "version": 1,
        "parent_version": 0,
        "stream": "m",
        "architecture": {},
        "features": {},
        "created_ms": 1,
    }
    a = build_message(weights=weights, **common)
    b = build_message(weights=dict(reversed(list(weights.items()))), **common)
    assert a.sha256 == b.sha256 == hashlib.sha256(params_to_bytes(weights)).hexdigest()


def test_the_exp_link_gives_a_positive_multiplier_and_unknown_links_are_refused() -> None:
    identity = Policy(message())
    exp = Policy(msgspec.structs.replace(message(), task={"name": "risk", "link": "exp"}))
    rows = np.random.default_rng(5).normal(size=(4, len(NAMES))).astype(np.float32)
    np.testing.assert_allclose(exp.predict(rows), np.exp(identity.predict(rows)), rtol=1e-6)
    with pytest.raises(PolicyError, match="unknown link 'log'"):
        Policy(msgspec.structs.replace(message(), task={"link": "log"}))
