"""Kafka and Redis clients built from the Settings, in one place.

Constructors of aiokafka clients need a running event loop, so these are called from
inside ``Daemon.run`` (and from the CLI's own coroutines), never at import time.
"""

from __future__ import annotations

import ssl
from typing import Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ..config.settings import KafkaSettings, RedisSettings


def kafka_common(k: KafkaSettings) -> dict[str, Any]:
    """Connection options shared by consumers, producers and admin clients."""
    opts: dict[str, Any] = {
        "bootstrap_servers": k.bootstrap_servers,
        "client_id": k.client_id,
        "request_timeout_ms": k.request_timeout_ms,
        "security_protocol": k.security_protocol,
    }
    if k.security_protocol in ("SSL", "SASL_SSL"):
        opts["ssl_context"] = kafka_ssl_context(k)
    if k.sasl_mechanism is not None:
        opts["sasl_mechanism"] = k.sasl_mechanism
        opts["sasl_plain_username"] = k.sasl_username
        opts["sasl_plain_password"] = (
            k.sasl_password.get_secret_value() if k.sasl_password else None
        )
    return opts


def kafka_ssl_context(k: KafkaSettings) -> ssl.SSLContext:
    """The brokers' certificates verified against ``ssl_cafile`` (or the system's
    authorities), the host name checked unless turned off, and the client certificate
    presented when one is set."""
    ctx = ssl.create_default_context(cafile=None if k.ssl_cafile is None else str(k.ssl_cafile))
    ctx.check_hostname = k.ssl_check_hostname
    if k.ssl_certfile is not None and k.ssl_keyfile is not None:
        ctx.load_cert_chain(str(k.ssl_certfile), str(k.ssl_keyfile))
    return ctx


def make_consumer(k: KafkaSettings, **overrides: Any) -> AIOKafkaConsumer:
    """The input consumer: manual commits, earliest reset, large fetches."""
    opts = kafka_common(k) | {
        "group_id": k.group_id,
        "group_instance_id": k.group_instance_id,
        "session_timeout_ms": k.session_timeout_ms,
        # Kafka's advice: heartbeats at most a third of the session apart.
        "heartbeat_interval_ms": k.session_timeout_ms // 3,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_partition_fetch_bytes": 4 << 20,
        "fetch_max_bytes": 32 << 20,
        "fetch_max_wait_ms": 100,
    }
    return AIOKafkaConsumer(**(opts | overrides))


def make_producer(k: KafkaSettings, **overrides: Any) -> AIOKafkaProducer:
    """The output producer: acks from all in-sync replicas before an offset is committed.

    Idempotence stays off: it only removes duplicates within one producer session, the
    commit protocol here already tolerates redelivery, and the test broker lacks it.
    """
    opts = kafka_common(k) | {
        "acks": "all",
        "enable_idempotence": False,
        "linger_ms": 2,
        # Records are sized to kafka.max_output_bytes before they are sent: a larger one is
        # refused here at once rather than by the broker.
        "max_request_size": k.max_output_bytes,
    }
    return AIOKafkaProducer(**(opts | overrides))


def make_redis(r: RedisSettings) -> aioredis.Redis:
    """A client of ``redis.url`` with at most ``redis.max_connections`` connections; over TLS
    (rediss://) the server's certificate is verified and its host name checked, and the
    client certificate presented when one is set."""
    url = r.url.get_secret_value()
    tls: dict[str, Any] = {}
    if url.lower().startswith("rediss://"):
        tls = {
            "ssl_cert_reqs": "required",
            "ssl_check_hostname": r.tls_check_hostname,
            "ssl_ca_certs": None if r.tls_ca_file is None else str(r.tls_ca_file),
            "ssl_certfile": None if r.tls_cert_file is None else str(r.tls_cert_file),
            "ssl_keyfile": None if r.tls_key_file is None else str(r.tls_key_file),
        }
    # A blocking pool: redis-py's default opens a connection for every command that finds
    # none free and keeps it (descriptors grew with the busiest moment so far), up to 100,
    # and then fails the command with MaxConnectionsError instead of waiting.
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=r.max_connections,
        timeout=r.socket_timeout_s,
        socket_timeout=r.socket_timeout_s,
        socket_connect_timeout=r.socket_timeout_s,
        health_check_interval=30,
        **tls,
    )
    return aioredis.Redis.from_pool(pool)
