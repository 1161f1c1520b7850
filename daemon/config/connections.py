"""The connection sections of the Settings object: Kafka (brokers, topics, the consume loop,
TLS and SASL) and Redis (URL, TLS, key prefix)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from .sections import ReadableFile, Section

__all__ = ["KafkaSettings", "RedisSettings"]


class KafkaSettings(Section):
    """Kafka connection, topics and the consume loop."""

    bootstrap_servers: str = "127.0.0.1:9092"
    """Comma-separated host:port list of the brokers."""
    group_id: str = "adaptd"
    """Consumer group; run several daemons with the same group to scale out."""
    client_id: str = "adaptd"
    """Client id reported to the brokers."""
    group_instance_id: str | None = Field(None, min_length=1, max_length=249)
    """Static group membership (Kafka's KIP-345): a stable id of this replica, different for
    every replica of the group (a StatefulSet pod's name). A replica restarted with the same
    id gets its partitions back without a rebalance, within the session timeout
    (session_timeout_ms), instead of waiting for the group to notice that its old member is
    gone. The trade-off: a stopped replica does not leave the group, so its partitions wait
    for the session timeout before another replica takes them. None: dynamic membership."""
    session_timeout_ms: int = Field(10_000, ge=1000, le=1_800_000)
    """How long the group waits for a member that stopped heartbeating (a crashed replica,
    or with group_instance_id a restarting one) before it hands that member's partitions to
    the others; heartbeats go every third of it, and a rebalance waits as long for members
    to rejoin. With group_instance_id, set it above a restart's duration (a start takes
    5-10 s, most of it the learner process's), else each restart rebalances. The brokers
    bound it (Apache Kafka's group.min.session.timeout.ms and group.max.session.timeout.ms,
    6 s and 30 min by default): a value outside their bounds fails the join."""
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
    ssl_cafile: ReadableFile | None = None
    """PEM bundle of the certificate authorities that sign the brokers' certificates, with
    security_protocol SSL or SASL_SSL (None: the system's)."""
    ssl_certfile: ReadableFile | None = None
    """PEM client certificate for brokers that require one (mutual TLS), with ssl_keyfile."""
    ssl_keyfile: ReadableFile | None = None
    """PEM private key of ssl_certfile (unencrypted)."""
    ssl_check_hostname: bool = True
    """Check that a broker's certificate names the host connected to (the certificate is
    verified against ssl_cafile either way)."""
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
    stall_timeout_s: float = Field(60.0, ge=0)
    """A partition whose next offset has not moved for this long while the broker holds
    records past it is logged with its state, counted (adaptd_partition_stalls_total) and
    fails /readyz (check partitions_advancing) until it moves. 0 turns the watch off."""
    max_output_bytes: int = Field(1_000_000, ge=16_384, le=16 << 20)
    """Largest record the daemon produces, key, value and headers: at or under the output
    topics' max.message.bytes (Kafka's default is 1,048,588). A dead letter is cut to fit,
    with the size and SHA-256 of what was cut in its headers; a record the brokers still
    refuse for good (too large, invalid topic) is dropped with a log line naming its source
    offset and adaptd_outputs_dropped_total, never retried."""
    request_timeout_ms: int = Field(30_000, ge=1000)
    """Broker request timeout for the clients."""

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL") and self.sasl_mechanism is None:
            raise ValueError("sasl_mechanism is required when security_protocol is SASL_*")
        tls = [n for n in ("ssl_cafile", "ssl_certfile", "ssl_keyfile") if getattr(self, n)]
        if tls and not self.security_protocol.endswith("SSL"):
            raise ValueError(f"{tls[0]} is set but security_protocol is {self.security_protocol}")
        paired(self.ssl_certfile, self.ssl_keyfile, "ssl_certfile", "ssl_keyfile")
        return self


class RedisSettings(Section):
    """The Redis server that holds the replay reservoir, stream state and checkpoints."""

    url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    """redis://, rediss:// (TLS) or unix:// URL; it may carry a password, so it is redacted
    when shown."""
    key_prefix: str = Field("adaptd", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    """Prefix of every key the daemon writes; several deployments can share one Redis."""
    socket_timeout_s: float = Field(5.0, gt=0)
    """Per-command socket timeout."""
    max_connections: int = Field(32, ge=2, le=10_000)
    """Most connections the daemon keeps open to Redis. When all are busy a command waits
    for one (up to socket_timeout_s, then it fails and is retried like any Redis error), so
    a burst of writes does not open a connection, and a descriptor, for each."""
    tls_ca_file: ReadableFile | None = None
    """PEM bundle of the certificate authorities that sign the server's certificate, with a
    rediss:// url (None: the system's)."""
    tls_cert_file: ReadableFile | None = None
    """PEM client certificate for a server that requires one (tls-auth-clients), with
    tls_key_file."""
    tls_key_file: ReadableFile | None = None
    """PEM private key of tls_cert_file (unencrypted)."""
    tls_check_hostname: bool = True
    """Check that the server's certificate names the host connected to."""

    @model_validator(mode="after")
    def _tls_needs_rediss(self) -> RedisSettings:
        tls = [n for n in ("tls_ca_file", "tls_cert_file", "tls_key_file") if getattr(self, n)]
        scheme = self.url.get_secret_value().partition("://")[0].lower()
        if tls and scheme != "rediss":
            raise ValueError(f"{tls[0]} is set but url is not rediss://")
        paired(self.tls_cert_file, self.tls_key_file, "tls_cert_file", "tls_key_file")
        return self

    @field_validator("url")
    @classmethod
    def _check_scheme(cls, value: SecretStr) -> SecretStr:
        # redis-py would refuse it only when the daemon first connects, as a runtime error.
        scheme = value.get_secret_value().partition("://")[0].lower()
        if scheme not in ("redis", "rediss", "unix"):
            raise ValueError(
                f"the scheme must be redis://, rediss:// or unix://, got {scheme + '://'!r}"
            )
        return value


def paired(cert: Path | None, key: Path | None, cert_name: str, key_name: str) -> None:
    if (cert is None) != (key is None):
        raise ValueError(f"{cert_name} and {key_name} go together")
