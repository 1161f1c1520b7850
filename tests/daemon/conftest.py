"""Fixtures for the daemon's integration tests: settings on fresh topics and a fresh key
prefix, and ``adaptd run`` as a child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from daemon_support import SIGNING_KEY

from adaptd.daemon.config.settings import Settings, load_settings
from adaptd.tools.embedded import free_port


@dataclass
class Topics:
    input: str
    policies: str
    shifts: str
    deadletter: str


SettingsFactory = Callable[..., Awaitable[tuple[Settings, Topics]]]


@pytest.fixture
def settings_factory(
    kafka_bootstrap: str, redis_url: str, key_prefix: str, topic_factory: Any
) -> SettingsFactory:
    """``await settings_factory(partitions=2, adaptation={...})``: Settings on new topics,
    a new group and the test's key prefix (cleaned up by the redis_client fixture)."""

    async def make(partitions: int = 1, **sections: Any) -> tuple[Settings, Topics]:
        topics = Topics(
            input=await topic_factory("market", partitions),
            policies=await topic_factory("policies"),
            shifts=await topic_factory("shifts"),
            deadletter=await topic_factory("deadletter"),
        )
        kafka = {
            "bootstrap_servers": kafka_bootstrap,
            "group_id": f"g-{uuid.uuid4().hex[:8]}",
            "input_topic": topics.input,
            "policy_topic": topics.policies,
            "shift_topic": topics.shifts,
            "deadletter_topic": topics.deadletter,
            "commit_interval_ms": 200,
            # A partition that stops advancing is logged with its state well within the
            # tests' timeouts.
            "stall_timeout_s": 10,
        } | sections.pop("kafka", {})
        redis = {"url": redis_url, "key_prefix": key_prefix} | sections.pop("redis", {})
        metrics = {"host": "127.0.0.1", "port": 0} | sections.pop("metrics", {})
        adaptation = {"meta_interval_s": 0.5} | sections.pop("adaptation", {})
        # The daemon signs its policies, as in production (subscribers verify with
        # daemon_support.TRUSTED).
        signing = {"key": SIGNING_KEY.decode()} | sections.pop("signing", {})
        settings = load_settings(
            environ={},
            kafka=kafka,
            redis=redis,
            metrics=metrics,
            adaptation=adaptation,
            signing=signing,
            log_level="warning",
            **sections,
        )
        return settings, topics

    return make


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes ``adaptd run`` use these settings."""
    env = {}
    data = settings.model_dump(mode="json")
    data["redis"]["url"] = settings.redis.url.get_secret_value()
    if settings.signing.key is not None:
        data["signing"]["key"] = settings.signing.key.get_secret_value()
    for section, values in data.items():
        if isinstance(values, dict):
            for name, value in values.items():
                if value is None:
                    continue
                if isinstance(value, list):
                    value = ",".join(str(v) for v in value)
                env[f"ADAPTD_{section.upper()}__{name.upper()}"] = str(value)
        else:
            env[f"ADAPTD_{section.upper()}"] = str(values)
    return env


@dataclass
class DaemonProcess:
    proc: subprocess.Popen[bytes]
    port: int
    log: Any

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        from prometheus_client.parser import text_string_to_metric_families

        body = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2).read()
        total = 0.0
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in (labels or {}).items()
                ):
                    total += sample.value
        return total

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def daemon_process(
    tmp_path: Any, request: pytest.FixtureRequest
) -> Iterator[Callable[[Settings], DaemonProcess]]:
    """Start ``adaptd run`` as a child process with the given settings (killed at the end)."""
    started: list[DaemonProcess] = []

    def start(settings: Settings) -> DaemonProcess:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTD_")}
        env |= settings_env(settings) | {
            "ADAPTD_METRICS__PORT": str(port),
            "ADAPTD_METRICS__HOST": "127.0.0.1",
            "ADAPTD_LOG_LEVEL": "info",
        }
        log = (tmp_path / f"daemon-{len(started)}.log").open("w+b")
        proc = subprocess.Popen(
            [sys.executable, "-m", "adaptd.daemon.cli", "run"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        handle = DaemonProcess(proc, port, log)
        started.append(handle)
        return handle

    yield start
    failed = request.node.stash.get(FAILED, False)
    for handle in started:
        if failed and handle.proc.poll() is None:
            # A daemon that stopped moving: what its tasks and threads wait on, in its log.
            handle.proc.send_signal(signal.SIGUSR1)
            time.sleep(2.0)
        if failed:
            print(f"--- daemon {handle.proc.pid} log (last 30,000 characters)")
            print(handle.output()[-30_000:])
        if handle.proc.poll() is None:
            handle.proc.kill()
            handle.proc.wait()
        handle.log.close()
