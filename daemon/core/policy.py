"""Adapted-policy messages: the format on the policy topic, and the downstream view of it.

A message is one JSON object keyed by model id (one model per stream). Its weights are
safetensors bytes (base64 in the JSON) with their sha256, so a subscriber can verify
them before use. Versions only increase per model; ``PolicyBook`` keeps the latest
version per model and ignores stale and duplicate ones. Nothing here needs torch.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> weights = {"layers.0.weight": rng.normal(size=(4, 3)).astype("float32"),
...            "layers.0.bias": np.zeros(4, "float32"),
...            "layers.2.weight": rng.normal(size=(1, 4)).astype("float32"),
...            "layers.2.bias": np.zeros(1, "float32")}
>>> msg = build_message(model_id="BTC-USD", version=3, parent_version=2, stream="BTC-USD",
...     weights=weights, architecture={"kind": "mlp", "in_dim": 3, "hidden": [4],
...     "activation": "tanh"}, features={"names": ["a", "b", "c"]})
>>> book = PolicyBook()
>>> book.offer(decode_message(encode_message(msg)))
True
>>> book.offer(decode_message(encode_message(msg)))   # the same version again: ignored
False
>>> policy = book.latest("BTC-USD")
>>> policy.version, policy.predict({"a": 0.1, "b": -0.2, "c": 0.0}).shape
(3, ())
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import numpy as np

from adaptd.adapters.codec import params_from_bytes, params_to_bytes, sha256_hex
from adaptd.adapters.serving import NumpyPolicy

from .tasks.protocol import LINKS

POLICY_SCHEMA = "adaptd.policy/v1"


class PolicyError(ValueError):
    """A policy message that cannot be trusted: bad JSON, wrong schema, checksum mismatch."""


class ShiftRef(msgspec.Struct, frozen=True):
    """The detected shift that caused an adaptation."""

    id: str
    triggers: tuple[str, ...]
    index: int
    ts_ms: int
    topic: str
    partition: int
    offset: int
    change_index: int | None = None
    """Where the detectors estimated the change began (an index like ``index``, at most it;
    None in messages from before)."""


class RegimeRef(msgspec.Struct, frozen=True):
    """The regime the adaptation examples were classified into (see adaptd.daemon.core.regimes)."""

    id: int
    """Regime id on this stream: a returning regime gets its earlier id back."""
    known: bool
    """True when the examples matched a stored regime (adaptation may have started from its
    last policy: ``warm_start``)."""
    ratio: float | None
    """Distance ratio to the nearest stored prototype (None when there was none)."""
    warm_start: bool = False
    """True when adaptation started from the regime's last policy, not the initialisation."""
    name: str | None = None
    """What kind of market it is, from its examples' features (:mod:`.naming`): "extreme
    event", "high volatility", "trending up", "trending down" or "sideways"."""


class PolicyMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One adapted policy, as published on the policy topic (see docs/operations.md)."""

    schema: str = POLICY_SCHEMA
    model_id: str
    version: int
    parent_version: int
    stream: str
    shift: ShiftRef | None = None
    regime: RegimeRef | None = None
    algorithm: dict[str, Any] = msgspec.field(default_factory=dict)
    architecture: dict[str, Any]
    features: dict[str, Any]
    task: dict[str, Any] = msgspec.field(default_factory=dict)
    """What the policy predicts (``PolicyTask.describe``: name, label, loss, output, link,
    baseline); empty in messages from before policy tasks (the return task)."""
    metrics: dict[str, float] = msgspec.field(default_factory=dict)
    latency_s: dict[str, float] = msgspec.field(default_factory=dict)
    source: dict[str, Any] = msgspec.field(default_factory=dict)
    validation: dict[str, Any] = msgspec.field(default_factory=dict)
    """Set when this policy is the task's baseline published in place of a retired one:
    ``retired_version``, ``replaced_by`` ("baseline"), ``baseline`` (its name), ``reason``."""
    created_ms: int
    weights_format: str = "safetensors"
    weights: str
    """Base64 of the safetensors bytes."""
    sha256: str
    """Hex sha256 of the safetensors bytes (not of the base64 text)."""

    def weight_bytes(self) -> bytes:
        """The safetensors bytes, verified against sha256 (PolicyError if they differ)."""
        try:
            raw = base64.b64decode(self.weights, validate=True)
        except ValueError as exc:
            raise PolicyError(f"{self.model_id} v{self.version}: weights are not base64") from exc
        digest = sha256_hex(raw)
        if digest != self.sha256:
            raise PolicyError(
                f"{self.model_id} v{self.version}: sha256 mismatch "
                f"(message says {self.sha256[:12]}…, weights hash to {digest[:12]}…)"
            )
        return raw


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(PolicyMessage)


def build_message(
    *,
    model_id: str,
    version: int,
    parent_version: int,
    stream: str,
    weights: Mapping[str, Any],
    architecture: Mapping[str, Any],
    features: Mapping[str, Any],
    shift: ShiftRef | None = None,
    regime: RegimeRef | None = None,
    task: Mapping[str, Any] | None = None,
    algorithm: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    latency_s: Mapping[str, float] | None = None,
    source: Mapping[str, Any] | None = None,
    validation: Mapping[str, Any] | None = None,
    created_ms: int | None = None,
) -> PolicyMessage:
    """Serialise weights to safetensors, checksum them, and assemble the message."""
    if version <= parent_version:
        raise ValueError(f"version {version} must be above parent_version {parent_version}")
    raw = params_to_bytes(weights)
    return PolicyMessage(
        model_id=model_id,
        version=version,
        parent_version=parent_version,
        stream=stream,
        shift=shift,
        regime=regime,
        algorithm=dict(algorithm or {}),
        architecture=dict(architecture),
        features=dict(features),
        task=dict(task or {}),
        metrics=dict(metrics or {}),
        latency_s=dict(latency_s or {}),
        source=dict(source or {}),
        validation=dict(validation or {}),
        created_ms=int(time.time() * 1000) if created_ms is None else created_ms,
        weights=base64.b64encode(raw).decode("ascii"),
        sha256=sha256_hex(raw),
    )


def encode_message(message: PolicyMessage) -> bytes:
    return _encoder.encode(message)


def decode_message(data: bytes) -> PolicyMessage:
    """Parse a policy message (PolicyError on bad JSON or an unknown schema)."""
    try:
        message = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise PolicyError(f"not a policy message: {exc}") from exc
    if message.schema != POLICY_SCHEMA:
        raise PolicyError(f"unknown policy schema {message.schema!r} (expected {POLICY_SCHEMA})")
    return message


class Policy:
    """A verified, ready-to-use policy: ``predict(features)`` gives what its task predicts
    (``message.task``; the scaled forward return for the return task), with the task's link
    applied (class probabilities for a classifier)."""

    __slots__ = ("feature_names", "link", "message", "model", "model_id", "version")

    def __init__(self, message: PolicyMessage) -> None:
        arch = message.architecture
        raw = message.weight_bytes()
        self.message = message
        self.model_id = message.model_id
        self.version = message.version
        self.feature_names: tuple[str, ...] = tuple(message.features.get("names", ()))
        self.link = str(message.task.get("link", "identity"))
        if self.link not in LINKS:
            raise PolicyError(f"{message.model_id} v{message.version}: unknown link {self.link!r}")
        try:
            self.model = NumpyPolicy.from_params(
                params_from_bytes(raw),
                activation=str(arch.get("activation", "tanh")),
                skip=int(arch.get("skip", 0)),
            )
        except ValueError as exc:
            raise PolicyError(
                f"{message.model_id} v{message.version}: weights do not form a policy: {exc}"
            ) from exc
        if self.feature_names and len(self.feature_names) != self.model.in_dim:
            raise PolicyError(
                f"{self.model_id} v{self.version}: {len(self.feature_names)} feature names "
                f"for a network of input width {self.model.in_dim}"
            )

    def predict(self, features: Mapping[str, float] | Sequence[float] | np.ndarray) -> np.ndarray:
        """Predict from one feature vector (a mapping by name, or values in spec order) or a
        2-D array of rows. Returns a scalar array for one vector, else one value per row (a
        vector of class probabilities each, for a classifier)."""
        if isinstance(features, Mapping):
            missing = [n for n in self.feature_names if n not in features]
            if missing:
                raise KeyError(f"features missing for {self.model_id}: {', '.join(missing)}")
            x = np.array([features[n] for n in self.feature_names], dtype=np.float32)
        else:
            x = np.asarray(features, dtype=np.float32)
        if x.shape[-1] != self.model.in_dim:
            raise ValueError(f"expected {self.model.in_dim} features, got {x.shape[-1]}")
        out = self.model.predict(x)
        if self.link == "softmax":
            z = np.exp(out - out.max(axis=-1, keepdims=True))
            out = z / z.sum(axis=-1, keepdims=True)
        elif self.link == "exp":
            out = np.exp(out)
        return out


class PolicyBook:
    """The latest verified policy per model. ``offer`` returns False for a stale or duplicate
    version (counted in ``ignored``) and raises PolicyError for a corrupt message (counted in
    ``corrupt``); either way the book keeps what it had."""

    def __init__(self) -> None:
        self._latest: dict[str, Policy] = {}
        self.ignored = 0
        self.corrupt = 0

    def offer(self, message: PolicyMessage) -> bool:
        current = self._latest.get(message.model_id)
        if current is not None and message.version <= current.version:
            self.ignored += 1
            return False
        try:
            policy = Policy(message)
        except PolicyError:
            self.corrupt += 1
            raise
        self._latest[message.model_id] = policy
        return True

    def latest(self, model_id: str) -> Policy | None:
        return self._latest.get(model_id)

    def models(self) -> list[str]:
        return sorted(self._latest)

    def __len__(self) -> int:
        return len(self._latest)
