from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from adaptd.daemon import __version__
from adaptd.daemon.cli import EXIT_CONFIG, GC_YOUNG_THRESHOLD, main, run_as_service
from adaptd.daemon.config.settings import load_settings
from adaptd.daemon.service.daemon import Daemon
from adaptd.tools.embedded import free_port

ADAPTD = Path(sys.executable).with_name("adaptd")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment without any ADAPTD_ variable of the caller's."""
    for name in list(os.environ):
        if name.upper().startswith("ADAPTD_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_config_show_prints_the_effective_configuration_redacted(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("ADAPTD_KAFKA__SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    env.setenv("ADAPTD_KAFKA__SASL_MECHANISM", "PLAIN")
    env.setenv("ADAPTD_KAFKA__SASL_PASSWORD", "s3cret-pw")
    env.setenv("ADAPTD_REDIS__URL", "redis://:redis-pw@db:6379/1")
    env.setenv("ADAPTD_ADAPTATION__INNER_STEPS", "7")
    assert main(["config", "show"]) == 0
    out, err = capsys.readouterr()
    shown = json.loads(out)
    assert shown["kafka"]["sasl_password"] == "**********"
    assert shown["redis"]["url"] == "**********"
    assert "s3cret-pw" not in out
    assert "redis-pw" not in out
    assert shown["kafka"]["security_protocol"] == "SASL_PLAINTEXT"
    assert shown["adaptation"]["inner_steps"] == 7
    assert err == ""


def test_config_show_reads_a_file(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "adaptd.toml"
    path.write_text('[kafka]\ngroup_id = "from-file"\n')
    env.setenv("ADAPTD_KAFKA__CLIENT_ID", "from-env")
    assert main(["config", "show", "--config", str(path)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["kafka"]["group_id"], shown["kafka"]["client_id"]) == ("from-file", "from-env")


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("ADAPTD_ADAPTATION__SHOTS", "1", "adaptation.shots"),
        ("ADAPTD_KAFKA__NOPE", "1", "kafka.nope"),
        ("ADAPTD_METRICS__PORT", "-1", "metrics.port"),
    ],
)
def test_an_invalid_setting_exits_2_naming_it(
    env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    named: str,
) -> None:
    env.setenv(name, value)
    assert main(["config", "show"]) == EXIT_CONFIG == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("adaptd: invalid configuration")
    assert named in err


def test_a_missing_config_file_exits_2(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["config", "show", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml" in capsys.readouterr().err


def test_version_and_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"adaptd {__version__}"
    with pytest.raises(SystemExit) as info:
        main([])  # a command is required
    assert info.value.code == 2


def test_the_console_script_exits_2_on_an_unknown_setting() -> None:
    assert ADAPTD.exists(), f"console script not installed at {ADAPTD}"
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ADAPTD_")}
    env["ADAPTD_KAFKA__NOPE"] = "1"
    proc = subprocess.run(
        [str(ADAPTD), "config", "show"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "kafka.nope" in proc.stderr
    assert proc.stdout == ""


@pytest.mark.integration
def test_an_unreachable_broker_exits_1_with_one_clear_error(redis_url: str) -> None:
    """Issue 12, finding 6: a stray "Unclosed AIOKafkaProducer" followed the clean error."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ADAPTD_")}
    env |= {
        "ADAPTD_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",  # nothing listens
        "ADAPTD_REDIS__URL": redis_url,
        "ADAPTD_METRICS__PORT": "0",
    }
    proc = subprocess.run(
        [str(ADAPTD), "run"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 1, proc.stderr
    output = proc.stdout + proc.stderr
    assert "adaptd: KafkaConnectionError" in proc.stderr and "Unable to bootstrap" in output
    assert "(check kafka.bootstrap_servers=127.0.0.1:" in proc.stderr  # the setting, named
    assert "Unclosed" not in output


class _FakeDaemon:
    """What run_as_service needs of a Daemon: ``started``, ``run``, and the Daemon's own
    ``wait_started``."""

    wait_started = Daemon.wait_started

    def __init__(self, fail: bool) -> None:
        self.started = asyncio.Event()
        self.fail = fail
        self.bounds: dict[str, object] = {}
        self.threshold_while_running: tuple[int, ...] | None = None

    async def run(self, **bounds: object) -> None:
        self.bounds = bounds
        if self.fail:
            raise ConnectionError("no broker")
        self.started.set()
        for _ in range(100):  # the service runs on (a few loop turns): tuned meanwhile
            if gc.get_threshold()[0] == GC_YOUNG_THRESHOLD:
                break
            await asyncio.sleep(0)
        self.threshold_while_running = gc.get_threshold()


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


async def test_the_service_tunes_the_collector_once_started(restore_gc: None) -> None:
    daemon = _FakeDaemon(fail=False)
    await run_as_service(daemon, max_events=5)  # type: ignore[arg-type]
    assert daemon.bounds == {"max_events": 5, "idle_timeout_s": None}
    assert daemon.threshold_while_running is not None
    assert daemon.threshold_while_running[0] == GC_YOUNG_THRESHOLD
    assert gc.get_freeze_count() > 0


async def test_a_daemon_that_fails_to_start_leaves_the_collector_alone(restore_gc: None) -> None:
    before = gc.get_threshold()
    with pytest.raises(ConnectionError):
        await run_as_service(_FakeDaemon(fail=True))  # type: ignore[arg-type]
    assert gc.get_threshold() == before


def test_a_failed_connection_names_the_kafka_settings_to_check() -> None:
    from aiokafka.errors import KafkaConnectionError

    from adaptd.daemon.cli import _settings_to_check

    settings = load_settings(
        environ={},
        kafka={
            "bootstrap_servers": "kafka:9093",
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": "adaptd",
            "sasl_password": "secret",
        },
    )
    hint = _settings_to_check(KafkaConnectionError("Unable to bootstrap"), settings)
    assert hint.startswith(" (check kafka.bootstrap_servers=kafka:9093;")
    assert "kafka.security_protocol=SASL_SSL" in hint and "SCRAM-SHA-512" in hint
    assert "kafka.sasl_username='adaptd' and kafka.sasl_password" in hint
    assert "secret" not in hint
    assert _settings_to_check(RuntimeError("other"), settings) == ""
