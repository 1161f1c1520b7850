"""Kafka SASL (issue 12, security): adaptd's clients, built from the Settings, authenticate
with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, then create topics, produce and consume; a wrong
password is refused at once with SaslAuthenticationFailed; the whole daemon runs over SASL_SSL.

The broker is Tansu behind a SASL terminator (tests/sasl_support.py), because Tansu 0.6's
own --authentication cannot authenticate anyone (no PLAIN; SCRAM credentials are accepted but
not kept): the last test shows the clients refuse it rather than carry on."""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError
from daemon_support import SIGNING_KEY, regime_stream, wait_until
from sasl_support import (
    MECHANISMS,
    AuthFailed,
    ScramServer,
    sasl_terminator,
    scram_credential,
    tansu_with_authentication,
)
from tls_support import make_pki, tls_terminator

from adaptd.daemon.config.connections import KafkaSettings
from adaptd.daemon.config.settings import Settings, load_settings, redacted
from adaptd.daemon.core.policy import decode_message
from adaptd.daemon.io.clients import kafka_common, make_consumer, make_producer
from adaptd.daemon.service.daemon import Daemon
from adaptd.tools.embedded import EmbeddedKafka, create_topics, free_port

pytestmark = pytest.mark.integration

USER, PASSWORD = "adaptd", "sasl-s3cret-for-tests"


def kafka_sasl(port: int, mechanism: str, password: str = PASSWORD, **extra: Any) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{port}",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_username=USER,
        sasl_password=password,
        **extra,
    )


def test_the_terminators_scram_follows_rfc_7677() -> None:
    # The example exchange of RFC 7677: the terminator checks the proofs the clients send
    # against the RFC, not merely against the client under test.
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    credential = scram_credential("SCRAM-SHA-256", "pencil", salt, 4096)
    client_final = (
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    for proof_ok in (True, False):
        server = ScramServer(
            "SCRAM-SHA-256", {"user": credential}.get, nonce="%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
        )
        assert server.first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO") == (
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
            b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        )
        if proof_ok:
            assert server.final(client_final) == b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        else:
            with pytest.raises(AuthFailed, match="invalid credentials"):
                server.final(client_final.replace(b"p=dHz", b"p=dHy"))
    with pytest.raises(AuthFailed, match="unknown user"):
        ScramServer("SCRAM-SHA-256", {"user": credential}.get).first(b"n,,n=other,r=abc")


@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_adaptd_clients_authenticate_and_a_wrong_password_is_refused(
    mechanism: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    topic = f"sasl.{uuid.uuid4().hex[:10]}"
    with EmbeddedKafka(advertised_port=port) as broker:
        async with sasl_terminator(broker.port, {USER: PASSWORD}, port) as sasl:
            k = kafka_sasl(port, mechanism)
            await asyncio.wait_for(
                create_topics(k.bootstrap_servers, [topic], connection=kafka_common(k)), 30
            )
            producer = make_producer(k)
            try:
                await asyncio.wait_for(producer.start(), 30)
                await asyncio.wait_for(producer.send_and_wait(topic, b"over sasl", key=b"k"), 30)
            finally:
                await producer.stop()
            consumer = make_consumer(k, group_id=None)
            try:
                await asyncio.wait_for(consumer.start(), 30)
                consumer.assign([TopicPartition(topic, 0)])
                record = await asyncio.wait_for(consumer.getone(), 30)
            finally:
                await consumer.stop()
            assert record.value == b"over sasl"
            # Every connection (admin, producer, consumer, bootstrap and broker ones) went
            # through the exchange, as the configured user with the configured mechanism.
            assert len(sasl.authenticated) >= 3
            assert set(sasl.authenticated) == {(USER, mechanism)}
            assert sasl.refused == []

            wrong = kafka_sasl(port, mechanism, password="not-the-password")
            producer = make_producer(wrong)
            try:
                with (
                    caplog.at_level(logging.ERROR, logger="aiokafka"),
                    pytest.raises(KafkaConnectionError),
                ):
                    await asyncio.wait_for(producer.start(), 30)
            finally:
                await producer.stop()
            # aiokafka gives up on the broker at once and logs why: Kafka's own message.
            assert "SaslAuthenticationFailed" in caplog.text
            assert f"invalid credentials with SASL mechanism {mechanism}" in caplog.text
            assert sasl.refused == [f"{mechanism}: invalid credentials"]
            assert set(sasl.authenticated) == {(USER, mechanism)}


async def test_a_client_without_sasl_is_refused() -> None:
    port = free_port()
    with EmbeddedKafka(advertised_port=port) as broker:
        async with sasl_terminator(broker.port, {USER: PASSWORD}, port) as sasl:
            plain = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}")
            producer = make_producer(plain)
            try:
                with pytest.raises(KafkaConnectionError):
                    await asyncio.wait_for(producer.start(), 30)
            finally:
                await producer.stop()
            assert sasl.authenticated == []
            assert sasl.refused and all(
                r.endswith("before authentication") for r in sasl.refused
            ), sasl.refused


async def test_the_daemon_runs_over_sasl_ssl(
    tmp_path: Path, redis_url: str, key_prefix: str, redis_client: aioredis.Redis
) -> None:
    pki = make_pki(tmp_path / "pki")
    tls_port, sasl_port = free_port(), free_port()
    tag = uuid.uuid4().hex[:8]
    topics = {n: f"{n}.{tag}" for n in ("market", "policies", "shifts", "deadletter")}
    # The SASL settings come from the environment, as a deployment's secret would.
    env = {
        "ADAPTD_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{tls_port}",
        "ADAPTD_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "ADAPTD_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
        "ADAPTD_KAFKA__SASL_USERNAME": USER,
        "ADAPTD_KAFKA__SASL_PASSWORD": PASSWORD,
        "ADAPTD_KAFKA__SSL_CAFILE": str(pki.ca),
        "ADAPTD_KAFKA__SSL_CERTFILE": str(pki.client_cert),
        "ADAPTD_KAFKA__SSL_KEYFILE": str(pki.client_key),
    }

    def settings(environ: dict[str, str]) -> Settings:
        return load_settings(
            environ=environ,
            kafka={
                "group_id": f"g-{tag}",
                "input_topic": topics["market"],
                "policy_topic": topics["policies"],
                "shift_topic": topics["shifts"],
                "deadletter_topic": topics["deadletter"],
                "commit_interval_ms": 200,
            },
            redis={"url": redis_url, "key_prefix": key_prefix},
            metrics={"host": "127.0.0.1", "port": 0},
            adaptation={"meta_interval_s": 0.5},
            signing={"key": SIGNING_KEY.decode()},
            log_level="warning",
        )

    s = settings(env)
    assert PASSWORD not in str(redacted(s))
    # TLS terminator (client certificate required) -> SASL terminator -> Tansu.
    with EmbeddedKafka(advertised_port=tls_port) as broker:
        async with (
            sasl_terminator(broker.port, {USER: PASSWORD}, sasl_port) as sasl,
            tls_terminator(pki, sasl_port, tls_port),
        ):
            await asyncio.wait_for(
                create_topics(
                    s.kafka.bootstrap_servers, topics.values(), connection=kafka_common(s.kafka)
                ),
                30,
            )
            daemon = Daemon(s)
            task = asyncio.create_task(daemon.run())
            try:
                await daemon.wait_started(task, 60)
                events = regime_stream("ACME", 700, 300, seed=1)
                producer = make_producer(s.kafka)
                await asyncio.wait_for(producer.start(), 30)
                try:
                    for key, value in events:
                        await producer.send(topics["market"], value, key=key)
                    await asyncio.wait_for(producer.flush(), 30)
                finally:
                    await producer.stop()
                await wait_until(
                    lambda: asyncio.sleep(0, daemon.events_seen >= len(events)), 90, "the events"
                )
                consumer = AIOKafkaConsumer(
                    topics["policies"],
                    **kafka_common(s.kafka),
                    group_id=None,
                    auto_offset_reset="earliest",
                )
                await asyncio.wait_for(consumer.start(), 30)
                try:
                    record = await asyncio.wait_for(consumer.getone(), 60)
                finally:
                    await consumer.stop()
                assert decode_message(record.value).model_id == "ACME"
                status = await daemon.readiness()
                assert status["redis"] and status["group_joined"] and status["input_topic"]
            finally:
                daemon.stop()
                await asyncio.wait_for(task, 60)
            assert set(sasl.authenticated) == {(USER, "SCRAM-SHA-512")}
            assert sasl.refused == []

            # The same daemon with a wrong password stops at start-up with the broker's
            # refusal, rather than waiting for a broker it can never use.
            wrong = settings(env | {"ADAPTD_KAFKA__SASL_PASSWORD": "not-the-password"})
            with pytest.raises(KafkaConnectionError):
                await asyncio.wait_for(Daemon(wrong).run(), 60)
            assert sasl.refused == ["SCRAM-SHA-512: invalid credentials"]


async def test_tansu_own_authentication_is_refused_by_the_clients(tmp_path: Path) -> None:
    # Tansu 0.6 with --authentication: PLAIN is not offered (it drops the connection), and
    # no SCRAM user can exist (its storage keeps no credentials), so the SCRAM exchange ends
    # in "e=unknown-user" -- with error code NONE on the SaslAuthenticate response, after
    # which Tansu serves the connection. The clients must not carry on regardless.
    with tansu_with_authentication(tmp_path) as (port, log):
        for mechanism in MECHANISMS:
            producer = make_producer(kafka_sasl(port, mechanism, request_timeout_ms=5000))
            try:
                # aiokafka reads only "v=" from the server-final message, so Tansu's "e="
                # surfaces as KeyError('v'); any KafkaError would do as well.
                with pytest.raises((KafkaError, KeyError)):
                    await asyncio.wait_for(producer.start(), 30)
            finally:
                await producer.stop()
        assert "NoSharedMechanism" in log.read_text(errors="replace")
