"""The sections of the Settings object: one frozen model per part of the daemon.

Each field's docstring is its documentation (docs/configuration.md is generated from them).
Every section forbids unknown keys, so a misspelled setting is an error that names it, and
a list field also takes a comma-separated string, as a list is written in one environment
variable or a YAML scalar:

>>> FeatureSettings(momentum_horizons="5, 20", warmup_events=20).momentum_horizons
(5, 20)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from ..core.tasks.registry import resolve

Detector = Literal["adwin", "page_hinkley"]
Channel = Literal["returns", "volatility", "error"]


class Section(BaseModel):
    """Base of every section: frozen, unknown keys rejected, field docstrings as descriptions."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    @model_validator(mode="before")
    @classmethod
    def _split_lists(cls, data: Any) -> Any:
        # Environment variables are strings: "5,20,60" is how a user writes a list there.
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, value in data.items():
            field = cls.model_fields.get(name)
            if field is not None and isinstance(value, str) and _is_tuple(field.annotation):
                out[name] = [part.strip() for part in value.split(",") if part.strip()]
        return out


def _is_tuple(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is tuple


class KafkaSettings(Section):
    """Kafka connection, topics and the consume loop."""

    bootstrap_servers: str = "127.0.0.1:9092"
    """Comma-separated host:port list of the brokers."""
    group_id: str = "adaptd"
    """Consumer group; run several daemons with the same group to scale out."""
    client_id: str = "adaptd"
    """Client id reported to the brokers."""
    input_topic: str = "adaptd.market"
    """Market events in (JSON, keyed by stream id)."""
    policy_topic: str = "adaptd.policies"
    """Adapted policies out (keyed by model id)."""
    shift_topic: str = "adaptd.shifts"
    """Detected shifts out (keyed by stream id)."""
    deadletter_topic: str = "adaptd.deadletter"
    """Rejected input out, with the reason and the source offset."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """How to talk to the brokers."""
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    """SASL mechanism when security_protocol is SASL_*."""
    sasl_username: str | None = None
    """SASL user name."""
    sasl_password: SecretStr | None = None
    """SASL password (redacted when shown)."""
    max_poll_records: int = Field(1000, ge=1, le=100_000)
    """Most records one poll returns. A batch is processed in one go on the event loop, so
    this bounds how long an adaptation result waits to be applied (latency) against the
    per-batch overhead (throughput)."""
    poll_timeout_ms: int = Field(200, ge=1, le=60_000)
    """How long one poll waits for records."""
    commit_interval_ms: int = Field(1000, ge=10, le=600_000)
    """How often processed offsets (and the stream state behind them) are committed."""
    max_message_bytes: int = Field(65_536, ge=64, le=16 << 20)
    """Larger input payloads are dead-lettered as oversize."""
    request_timeout_ms: int = Field(30_000, ge=1000)
    """Broker request timeout for the clients."""

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL") and self.sasl_mechanism is None:
            raise ValueError("sasl_mechanism is required when security_protocol is SASL_*")
        return self


class RedisSettings(Section):
    """The Redis server that holds the replay reservoir, stream state and checkpoints."""

    url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    """redis:// or rediss:// URL; it may carry a password, so it is redacted when shown."""
    key_prefix: str = Field("adaptd", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    """Prefix of every key the daemon writes; several deployments can share one Redis."""
    socket_timeout_s: float = Field(5.0, gt=0)
    """Per-command socket timeout."""


class FeatureSettings(Section):
    """Online features per stream and the delayed label."""

    momentum_horizons: tuple[int, ...] = (5, 20, 60)
    """Horizons, in events, of the momentum features (log price change over h events)."""
    fast_halflife: float = Field(10.0, gt=0)
    """Half-life, in events, of the fast exponentially weighted statistics."""
    slow_halflife: float = Field(100.0, gt=0)
    """Half-life, in events, of the slow exponentially weighted statistics."""
    label_horizon: int = Field(5, ge=1, le=10_000)
    """The label of the example formed at event t is the forward log return to t + horizon."""
    label_clip: float = Field(10.0, gt=0)
    """Labels and features are volatility-scaled and clipped to +/- this value."""
    warmup_events: int = Field(60, ge=2)
    """Events a stream needs before it forms examples (at least the longest horizon)."""
    max_out_of_order_ms: int = Field(60_000, ge=0)
    """An event older than its stream's newest event by more than this is dead-lettered."""

    @model_validator(mode="after")
    def _check(self) -> FeatureSettings:
        if not self.momentum_horizons or min(self.momentum_horizons) < 1:
            raise ValueError("momentum_horizons must be a non-empty list of positive integers")
        if self.warmup_events < max(self.momentum_horizons):
            raise ValueError("warmup_events must be at least the longest momentum horizon")
        if self.slow_halflife <= self.fast_halflife:
            raise ValueError("slow_halflife must be longer than fast_halflife")
        return self


class DetectionSettings(Section):
    """Regime-shift detection per stream."""

    detectors: tuple[Detector, ...] = ("adwin", "page_hinkley")
    """river detectors run on every channel."""
    channels: tuple[Channel, ...] = ("returns", "volatility", "error")
    """What the detectors watch: scaled returns, volatility, the live policy's error."""
    skip: tuple[str, ...] = ("page_hinkley:returns",)
    """detector:channel pairs left out. Page-Hinkley on raw returns raised most of the false
    alarms on steady heavy-tailed series, and ADWIN already watches that channel."""
    adwin_delta: float = Field(0.002, gt=0, lt=1)
    """ADWIN confidence; smaller means fewer, surer detections."""
    ph_threshold: float = Field(30.0, gt=0)
    """Page-Hinkley threshold (lambda), in units of the normalised input."""
    ph_delta: float = Field(0.1, ge=0)
    """Page-Hinkley tolerated drift per observation."""
    ph_alpha: float = Field(1.0, gt=0, le=1)
    """Page-Hinkley forgetting factor of the running mean. Below 1, river decays the running
    sums but not the extremes they are compared with, and false alarms grow with time."""
    scale_halflife: float = Field(1000.0, gt=0)
    """Half-life, in events, of the long-run volatility that normalises detector inputs."""
    warmup_events: int = Field(100, ge=0)
    """Detections are ignored for this many events after a stream starts."""
    debounce_events: int = Field(10, ge=1)
    """Detector firings within this many events count together towards min_detectors."""
    min_detectors: int = Field(1, ge=1)
    """Distinct detector/channel pairs that must fire within the debounce window."""
    cooldown_events: int = Field(100, ge=0)
    """After a shift, further firings are absorbed for this many events."""

    @model_validator(mode="after")
    def _check_skip(self) -> DetectionSettings:
        known = {
            f"{d}:{c}"
            for d in ("adwin", "page_hinkley")
            for c in ("returns", "volatility", "error")
        }
        unknown = [pair for pair in self.skip if pair not in known]
        if unknown:
            raise ValueError(f"skip: unknown detector:channel pairs {unknown}")
        return self


class AdaptationSettings(Section):
    """Few-shot adaptation, its publication gate, and meta-training of the initialisation."""

    shots: int = Field(20, ge=2, le=1024)
    """Labelled examples of the new regime collected after a shift (support plus query)."""
    query_size: int = Field(8, ge=1)
    """The latest of those examples, held out to gate publication."""
    inner_steps: int = Field(5, ge=1, le=1000)
    """Gradient steps of the fast-weight inner loop."""
    inner_lr: float = Field(0.05, gt=0)
    """Step size of the inner loop."""
    deadline_s: float = Field(1.0, gt=0, le=10.0)
    """Wall-clock budget of one adaptation; the design's hard bound is 10 s."""
    backend: Literal["autograd", "func"] = "autograd"
    """Gradient engine of the inner loop: torch.autograd.grad or torch.func.grad."""
    hidden: tuple[int, ...] = (32, 32)
    """Hidden layer widths of the policy MLP."""
    min_improvement: float = Field(0.0, ge=0)
    """Publish only if query loss improves on the current policy by more than this."""
    gate_z: float = Field(1.0, ge=0)
    """...and by more than this many standard errors of the paired per-example loss
    difference on the query set (0: any improvement passes)."""
    meta_algorithm: Literal["maml", "fomaml", "reptile", "metasgd", "anil"] = "anil"
    """How the shared initialisation is meta-trained from replayed episodes and adapted: MAML
    (second order), first-order MAML, Reptile, Meta-SGD (learned per-parameter step sizes)
    or ANIL (only the output layer adapts). ANIL is the default: lowest validation error of
    the five on the daemon's own task on real prices, and the fastest adaptation (see the
    `policy` section of docs/benchmarks.md)."""
    meta_interval_s: float = Field(2.0, gt=0)
    """Seconds between meta-training rounds."""
    meta_batch: int = Field(8, ge=1)
    """Episodes per meta-update."""
    meta_steps: int = Field(4, ge=1)
    """Meta-updates per round."""
    meta_lr: float = Field(0.1, gt=0, le=1)
    """Reptile's outer step: the fraction of the way the initialisation moves toward the
    mean adapted weights."""
    adam_lr: float = Field(0.01, gt=0)
    """Adam step size of the outer loop of maml, fomaml, metasgd and anil."""
    meta_min_items: int = Field(8, ge=1)
    """Replay items needed before meta-training starts."""
    torch_threads: int = Field(1, ge=1, le=64)
    """Intra-op threads of torch (the event loop keeps the other core)."""
    isolation: Literal["process", "thread"] = "process"
    """Where torch runs: a child process (no GIL shared with the event loop), or a thread
    of the daemon (one process, slower adaptations under load)."""
    seed: int = 0
    """Seed of parameter initialisation and meta-training sampling."""
    tasks: tuple[str, ...] = ("return",)
    """What the policies learn: policy tasks by name, or `module:Class` for a task class
    outside adaptd (see "Policy tasks" in docs/architecture.md). Every stream runs each task
    with its own labels, replay, regimes and published policy; the first task's errors feed
    the detectors' error channel."""

    @model_validator(mode="after")
    def _check(self) -> AdaptationSettings:
        if self.query_size >= self.shots:
            raise ValueError("query_size must be smaller than shots")
        if not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ValueError("tasks must be a non-empty list of distinct task names")
        for name in self.tasks:
            resolve(name)
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError("hidden must be a non-empty list of positive widths")
        return self


class RegimeSettings(Section):
    """The per-stream prototypical regime classifier that names each shift's regime."""

    novelty: float = Field(4.0, gt=0)
    """A shift's examples belong to a stored regime when the squared distance of their mean
    to its prototype is at most this many times what two samples of one regime would give
    (about 1); otherwise they found a new regime."""
    max_regimes: int = Field(32, ge=1, le=4096)
    """Regimes kept per stream; beyond it, the one seen least recently is forgotten."""
    warm_start: bool = True
    """Adapt a returning regime from the last policy published for it, not from the
    meta-learned initialisation."""
    exclude_features: tuple[str, ...] = ("mean_slow_z", "vol_ratio", "spread_z", "volume_z")
    """Features left out of the regime embedding: those with a long memory still describe
    the previous regime right after a shift (the label is always included)."""


class ReplaySettings(Section):
    """The Redis reservoir of completed episodes."""

    capacity: int = Field(10_000, ge=1)
    """Most episodes kept; beyond it, Algorithm R keeps a uniform sample of all seen."""
    episode_size: int = Field(32, ge=2, le=4096)
    """Labelled examples per episode; an episode also ends at a shift."""
    sample_strategy: Literal["uniform", "stratified", "regime"] = "regime"
    """How meta-training samples episodes: uniformly, evenly across streams, or evenly across
    the (stream, regime) pairs held, so that a short or long-past regime is rehearsed as
    often as a long or recent one (the replay half of forgetting prevention)."""


class ContinualSettings(Section):
    """Forgetting prevention: the penalty that protects the meta-learned initialisation and
    returning regimes' policies, and the held-out episodes that measure retention (see
    "Forgetting prevention in the daemon" in docs/architecture.md)."""

    penalty: Literal["none", "online_ewc"] = "online_ewc"
    """Penalty on moving weights that mattered before: online EWC (a running diagonal Fisher
    and an anchor, both checkpointed with the meta-learner), or none (replay alone)."""
    ewc_lambda: float = Field(100.0, ge=0, le=1e6)
    """Strength of the online-EWC penalty on the meta-learned initialisation,
    lambda / 2 * sum F (w - anchor)^2, added to every meta-update."""
    policy_lambda: float = Field(1.0, ge=0, le=1e6)
    """Strength of the same penalty (same Fisher) when a returning regime is adapted from its
    last policy, anchored at that policy. Lower than ewc_lambda: the support loss here is a
    mean over a dozen examples, and 1 weighs what the policy learned like the new examples
    (at 100 a returning policy barely moves; measured in docs/architecture.md)."""
    ewc_decay: float = Field(0.9, ge=0, le=1)
    """Factor applied to the running Fisher before each meta round's is added (1: never
    forget an importance, 0: only the last round's)."""
    fisher_episodes: int = Field(16, ge=1, le=1024)
    """Episodes sampled (stratified by regime) after each meta round to estimate that round's
    Fisher information at the new initialisation."""
    holdout_per_regime: int = Field(2, ge=0, le=64)
    """The first episodes of every (stream, regime) kept out of the reservoir, never trained
    on, to measure retention (0: no held-out episodes and no retention metrics)."""
    holdout_max_regimes: int = Field(64, ge=1, le=100_000)
    """Most (stream, regime) pairs with held-out episodes; beyond it the pair offered an
    episode least recently is forgotten with its reference losses (LRU)."""
    holdout_min_examples: int = Field(16, ge=2)
    """Shorter episodes (cut early by a shift) are never held out: their query part would be
    an example or two. Capped at replay.episode_size, so full episodes always qualify."""
    retention_floor: float = Field(0.8, gt=0, le=1)
    """A regime whose retention (reference loss / current loss of its held-out episodes)
    falls below this is logged as a warning, once per fall; the fall ends when it is back
    above halfway between the floor and 1."""


class MetricsSettings(Section):
    """The HTTP port with /metrics, /livez and /readyz."""

    enabled: bool = True
    """Serve the HTTP endpoints."""
    host: str = "0.0.0.0"
    """Interface to bind."""
    port: int = Field(9464, ge=0, le=65535)
    """Port to bind (0 picks a free one)."""
