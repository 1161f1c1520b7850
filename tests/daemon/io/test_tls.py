"""The clients over TLS (issue 12, security): Kafka with a CA file, a client certificate and
host-name checks, through a TLS terminator in front of Tansu (Tansu 0.6's own TLS options
cannot be combined: --cert refuses --key); Redis with TLS, client certificates and an ACL
user, against redis-server started so. Then the whole daemon over both."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError
from daemon_support import SIGNING_KEY, regime_stream, wait_until
from tls_support import ACL_PASSWORD, ACL_USER, make_pki, tls_redis, tls_terminator

from adaptd.daemon import cli
from adaptd.daemon.config.connections import KafkaSettings, RedisSettings
from adaptd.daemon.config.settings import ConfigError, load_settings
from adaptd.daemon.core.policy import decode_message
from adaptd.daemon.io.clients import kafka_common, make_redis
from adaptd.daemon.io.stores import PolicyStore
from adaptd.daemon.service.daemon import Daemon
from adaptd.tools.embedded import EmbeddedKafka, free_port

pytestmark = pytest.mark.integration


def kafka_tls(port: int, pki, **extra) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{port}",
        security_protocol="SSL",
        ssl_cafile=pki.ca,
        ssl_certfile=pki.client_cert,
        ssl_keyfile=pki.client_key,
        **extra,
    )


def redis_tls(port: int, pki, user: str = ACL_USER, password: str = ACL_PASSWORD, **extra):
    return RedisSettings(
        url=f"rediss://{user}:{password}@127.0.0.1:{port}/0",
        tls_ca_file=pki.ca,
        tls_cert_file=pki.client_cert,
        tls_key_file=pki.client_key,
        **extra,
    )


async def test_kafka_clients_verify_the_broker_and_present_their_certificate(tmp_path) -> None:
    pki = make_pki(tmp_path / "pki")
    tls_port = free_port()
    with EmbeddedKafka(advertised_port=tls_port) as broker:
        async with tls_terminator(pki, broker.port, tls_port):
            k = kafka_tls(tls_port, pki)
            admin = AIOKafkaAdminClient(**kafka_common(k))
            await admin.start()
            await admin.create_topics([NewTopic("tls-topic", 1, 1)])
            await admin.close()
            producer = AIOKafkaProducer(**kafka_common(k), enable_idempotence=False)
            await producer.start()
            await producer.send_and_wait("tls-topic", b"over tls", key=b"k")
            await producer.stop()
            consumer = AIOKafkaConsumer(
                "tls-topic", **kafka_common(k), group_id=None, auto_offset_reset="earliest"
            )
            await consumer.start()
            record = await asyncio.wait_for(consumer.getone(), 30)
            await consumer.stop()
            assert record.value == b"over tls"

            # adaptd feed: its admin client and producer take the same settings.
            env = {
                "ADAPTD_KAFKA__BOOTSTRAP_SERVERS": k.bootstrap_servers,
                "ADAPTD_KAFKA__SECURITY_PROTOCOL": "SSL",
                "ADAPTD_KAFKA__SSL_CAFILE": str(pki.ca),
                "ADAPTD_KAFKA__SSL_CERTFILE": str(pki.client_cert),
                "ADAPTD_KAFKA__SSL_KEYFILE": str(pki.client_key),
            }
            with pytest.MonkeyPatch.context() as mp:
                for name in [n for n in os.environ if n.startswith("ADAPTD_")]:
                    mp.delenv(name)
                for name, value in env.items():
                    mp.setenv(name, value)
                argv = ["feed", "--dataset", "bitcoin", "--limit", "20", "--rate", "0",
                        "--topic", "fed-over-tls"]  # fmt: skip
                assert await asyncio.to_thread(cli.main, argv) == 0
            consumer = AIOKafkaConsumer(
                "fed-over-tls", **kafka_common(k), group_id=None, auto_offset_reset="earliest"
            )
            await consumer.start()
            fed = await asyncio.wait_for(consumer.getmany(timeout_ms=5000), 30)
            await consumer.stop()
            assert sum(len(v) for v in fed.values()) > 0

            # No client certificate: the terminator refuses the handshake.
            bare = KafkaSettings(
                bootstrap_servers=f"127.0.0.1:{tls_port}",
                security_protocol="SSL",
                ssl_cafile=pki.ca,
                request_timeout_ms=2000,
            )
            with pytest.raises(KafkaConnectionError):
                await _start_and_stop(bare)
            # A broker certificate from another authority is not trusted.
            other = make_pki(tmp_path / "other", name="another CA")
            with pytest.raises(KafkaConnectionError):
                await _start_and_stop(kafka_tls(tls_port, other, request_timeout_ms=2000))


async def _start_and_stop(k: KafkaSettings) -> None:
    producer = AIOKafkaProducer(**kafka_common(k), enable_idempotence=False)
    try:
        await producer.start()
    finally:
        await producer.stop()


async def test_redis_over_tls_with_an_acl_user(tmp_path) -> None:
    pki = make_pki(tmp_path / "pki")
    with tls_redis(pki, tmp_path) as port:
        client = make_redis(redis_tls(port, pki))
        assert await client.ping()
        assert await PolicyStore(client, "tls").next_version("M") == 1
        await client.aclose()
        for settings, error in [
            (redis_tls(port, pki, password="wrong"), aioredis.AuthenticationError),
            (redis_tls(port, pki, tls_check_hostname=False), None),  # still verified by CA
            (
                RedisSettings(url=f"rediss://{ACL_USER}:{ACL_PASSWORD}@127.0.0.1:{port}/0",
                              tls_ca_file=pki.ca),
                aioredis.ConnectionError,  # no client certificate
            ),
            (redis_tls(port, make_pki(tmp_path / "other", name="another CA")),
             aioredis.ConnectionError),  # the server's certificate is not trusted
        ]:  # fmt: skip
            client = make_redis(settings)
            try:
                if error is None:
                    assert await client.ping()
                else:
                    with pytest.raises(error):
                        await client.ping()
            finally:
                await client.aclose()
        # The default user is off: the password is what lets the daemon in.
        anonymous = make_redis(
            RedisSettings(
                url=f"rediss://127.0.0.1:{port}/0",
                tls_ca_file=pki.ca,
                tls_cert_file=pki.client_cert,
                tls_key_file=pki.client_key,
            )
        )
        with pytest.raises(aioredis.RedisError):
            await anonymous.ping()
        await anonymous.aclose()


def test_tls_files_without_tls_are_configuration_errors(tmp_path) -> None:
    pki = make_pki(tmp_path)
    with pytest.raises(ConfigError, match=r"kafka.*ssl_cafile is set but security_protocol"):
        load_settings(environ={}, kafka={"ssl_cafile": str(pki.ca)})
    with pytest.raises(ConfigError, match=r"redis.*tls_ca_file is set but url is not rediss"):
        load_settings(environ={}, redis={"tls_ca_file": str(pki.ca)})
    with pytest.raises(ConfigError, match="ssl_certfile and ssl_keyfile go together"):
        load_settings(
            environ={},
            kafka={"security_protocol": "SSL", "ssl_certfile": str(pki.client_cert)},
        )
    missing = str(tmp_path / "no")
    for section, field, rest in [
        ("kafka", "ssl_cafile", {"security_protocol": "SSL"}),
        ("kafka", "ssl_certfile", {"security_protocol": "SSL"}),
        ("kafka", "ssl_keyfile", {"security_protocol": "SSL"}),
        ("redis", "tls_ca_file", {"url": "rediss://127.0.0.1:1/0"}),
        ("redis", "tls_cert_file", {"url": "rediss://127.0.0.1:1/0"}),
        ("redis", "tls_key_file", {"url": "rediss://127.0.0.1:1/0"}),
    ]:
        with pytest.raises(ConfigError, match=rf"{section}\.{field}: .*cannot read .*no"):
            load_settings(environ={}, **{section: {**rest, field: missing}})


async def test_the_daemon_runs_over_tls_kafka_and_tls_redis(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    tls_port = free_port()
    tag = uuid.uuid4().hex[:8]
    topics = {n: f"{n}.{tag}" for n in ("market", "policies", "shifts", "deadletter")}
    with EmbeddedKafka(advertised_port=tls_port) as broker, tls_redis(pki, tmp_path) as rport:
        async with tls_terminator(pki, broker.port, tls_port):
            k = kafka_tls(tls_port, pki)
            admin = AIOKafkaAdminClient(**kafka_common(k))
            await admin.start()
            await admin.create_topics([NewTopic(t, 1, 1) for t in topics.values()])
            await admin.close()
            settings = load_settings(
                environ={},
                kafka=k.model_dump()
                | {
                    "group_id": f"g-{tag}",
                    "input_topic": topics["market"],
                    "policy_topic": topics["policies"],
                    "shift_topic": topics["shifts"],
                    "deadletter_topic": topics["deadletter"],
                    "commit_interval_ms": 200,
                },
                redis=redis_tls(rport, pki).model_dump() | {"url": redis_tls(rport, pki).url},
                metrics={"host": "127.0.0.1", "port": 0},
                adaptation={"meta_interval_s": 0.5},
                signing={"key": SIGNING_KEY.decode()},
                log_level="warning",
            )
            daemon = Daemon(settings)
            task = asyncio.create_task(daemon.run())
            try:
                await daemon.wait_started(task, 60)
                events = regime_stream("ACME", 700, 300, seed=1)
                producer = AIOKafkaProducer(**kafka_common(k), enable_idempotence=False)
                await producer.start()
                for key, value in events:
                    await producer.send(topics["market"], value, key=key)
                await producer.flush()
                await producer.stop()
                await wait_until(
                    lambda: asyncio.sleep(0, daemon.events_seen >= len(events)), 90, "the events"
                )
                consumer = AIOKafkaConsumer(
                    topics["policies"],
                    **kafka_common(k),
                    group_id=None,
                    auto_offset_reset="earliest",
                )
                await consumer.start()
                record = await asyncio.wait_for(consumer.getone(), 60)
                await consumer.stop()
                assert decode_message(record.value).model_id == "ACME"
                status = await daemon.readiness()
                assert status["redis"] and status["group_joined"] and status["input_topic"]
            finally:
                daemon.stop()
                await asyncio.wait_for(task, 60)
