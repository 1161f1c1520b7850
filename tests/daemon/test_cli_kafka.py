"""``adaptd feed`` and ``adaptd policies`` against the real broker."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from daemon_support import SIGNING_KEY, SIGNING_PUBLIC, produce, read_topic

from adaptd.daemon import cli
from adaptd.daemon.core.policy import build_message, encode_message
from adaptd.daemon.core.signing import Signer, generate_key_pair

pytestmark = pytest.mark.integration


def _env(monkeypatch: pytest.MonkeyPatch, bootstrap: str, **values: str) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("ADAPTD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ADAPTD_KAFKA__BOOTSTRAP_SERVERS", bootstrap)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


async def test_feed_produces_a_bundled_dataset(kafka_bootstrap, topic_factory, monkeypatch, capsys):
    topic = await topic_factory("feed")
    _env(monkeypatch, kafka_bootstrap, ADAPTD_KAFKA__INPUT_TOPIC=topic)
    code = await asyncio.to_thread(
        cli.main, ["feed", "--dataset", "bitcoin", "--limit", "30", "--rate", "0"]
    )
    assert code == 0
    assert f"BTC-USD: 30 events -> {topic}" in capsys.readouterr().out
    records = await read_topic(kafka_bootstrap, topic, count=30)
    assert len(records) == 30
    assert {r.key for r in records} == {b"BTC-USD"}
    first = json.loads(records[0].value)
    assert first["stream"] == "BTC-USD" and first["v"] == 1 and first["price"] > 0


async def test_feed_from_csv_and_a_bad_csv(
    kafka_bootstrap, topic_factory, monkeypatch, capsys, tmp_path
):
    topic = await topic_factory("feedcsv")
    _env(monkeypatch, kafka_bootstrap)
    good = tmp_path / "prices.csv"
    good.write_text("date,close\n2024-01-02,10.5\n2024-01-03,10.7\n2024-01-04,10.2\n")
    code = await asyncio.to_thread(
        cli.main,
        [
            "feed",
            "--csv",
            str(good),
            "--stream",
            "ACME",
            "--time-col",
            "date",
            "--price-col",
            "close",
            "--rate",
            "0",
            "--topic",
            topic,
        ],
    )
    assert code == 0
    assert len(await read_topic(kafka_bootstrap, topic, count=3)) == 3
    bad = tmp_path / "bad.csv"
    bad.write_text("date,close\n2024-01-02,-1\n")
    code = await asyncio.to_thread(
        cli.main,
        [
            "feed",
            "--csv",
            str(bad),
            "--stream",
            "ACME",
            "--time-col",
            "date",
            "--price-col",
            "close",
            "--topic",
            topic,
        ],
    )
    assert code == 2
    assert "bad.csv" in capsys.readouterr().err


async def test_policies_prints_each_verified_policy_and_marks_stale_and_refused_ones(
    kafka_bootstrap, topic_factory, monkeypatch, capsys, tmp_path
):
    topic = await topic_factory("policies")
    rng = np.random.default_rng(0)
    weights = {
        "layers.0.weight": rng.normal(size=(4, 3)).astype("float32"),
        "layers.0.bias": np.zeros(4, "float32"),
        "layers.2.weight": rng.normal(size=(1, 4)).astype("float32"),
        "layers.2.bias": np.zeros(1, "float32"),
    }

    def message(version: int) -> bytes:
        return encode_message(
            build_message(
                model_id="M",
                version=version,
                parent_version=version - 1,
                stream="M",
                weights=weights,
                architecture={"kind": "mlp", "activation": "tanh"},
                features={"names": ["a", "b", "c"]},
                metrics={"query_loss_before": 1.0, "query_loss_after": 0.5},
            )
        )

    signer, forger = Signer.from_pem(SIGNING_KEY), Signer.from_pem(generate_key_pair()[0])
    two, one, three = message(2), message(1), message(3)
    await produce(
        kafka_bootstrap,
        topic,
        [
            (b"M", two, signer.headers(two)),
            (b"M", one, signer.headers(one)),
            (b"M", three),  # unsigned
            (b"M", three, forger.headers(three)),  # a key nobody trusts
        ],
    )
    trusted = tmp_path / "daemon.pub"
    trusted.write_bytes(SIGNING_PUBLIC)
    _env(monkeypatch, kafka_bootstrap, ADAPTD_KAFKA__POLICY_TOPIC=topic)
    # Verifying by default, with nothing to verify with: a configuration error naming it.
    assert await asyncio.to_thread(cli.main, ["policies", "--json"]) == 2
    assert "signing.trusted_keys" in capsys.readouterr().err

    monkeypatch.setenv("ADAPTD_SIGNING__TRUSTED_KEYS", str(trusted))
    assert await asyncio.to_thread(cli.main, ["policies", "--json"]) == 0
    out = capsys.readouterr().out.splitlines()
    lines = [json.loads(line) for line in out if not line.startswith("!")]
    assert [(x["version"], x["latest"]) for x in lines] == [(2, True), (1, False)]
    assert lines[0]["query_loss_after"] == 0.5
    refused = [line for line in out if line.startswith("!")]
    assert refused == [
        "! offset 2: refused, unsigned: the record has no signature headers",
        f"! offset 3: refused, unknown_key: key id {forger.key_id!r} is not trusted",
    ]

    assert await asyncio.to_thread(cli.main, ["policies", "--json", "--no-verify"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(x["version"], x["latest"]) for x in lines] == [
        (2, True),
        (1, False),
        (3, True),
        (3, False),
    ]


async def test_feed_checks_every_row_with_the_daemons_decoder_before_sending(
    kafka_bootstrap, topic_factory, monkeypatch, capsys, tmp_path
):
    """Issue 12, finding 2: a CSV whose rows the daemon would dead-letter was sent, exit 0."""
    topic = await topic_factory("feedcheck")
    _env(monkeypatch, kafka_bootstrap)
    quotes = tmp_path / "quotes.csv"
    quotes.write_text(
        "date,close,bid,ask\n"
        "1929-10-24,10.5,10.4,10.6\n"  # before 1970: valid
        "1929-10-25,10.7,10.9,10.6\n"  # crossed quote
        "1929-10-28,10.2,10.1,10.3\n"
        "1929-10-29,10.1,10.2,10.0\n"  # crossed quote
        "2024-01-02,11.0,10.9,11.1\n"
        "2301-01-02,11.2,11.1,11.3\n"  # after the year 2200
    )
    argv = [
        "feed", "--csv", str(quotes), "--stream", "ACME", "--price-col", "close",
        "--bid-col", "bid", "--ask-col", "ask", "--rate", "0", "--topic", topic,
    ]  # fmt: skip
    assert await asyncio.to_thread(cli.main, argv) == 2
    err = capsys.readouterr().err
    assert "3 of 6 rows would be dead-lettered (1 bad_timestamp, 2 crossed_quote)" in err
    assert "ACME row 1: crossed_quote" in err and "ACME row 5: bad_timestamp" in err
    assert "nothing was sent" in err

    assert await asyncio.to_thread(cli.main, [*argv, "--send-invalid"]) == 0
    out = capsys.readouterr()
    assert "3 of 6 rows would be dead-lettered" in out.err and "sending them anyway" in out.err
    assert f"ACME: 6 events -> {topic}" in out.out
    records = await read_topic(kafka_bootstrap, topic, idle_s=1.0)
    assert len(records) == 6  # the refused run sent nothing
    assert json.loads(records[0].value)["ts"] < 0
