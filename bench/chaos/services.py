"""The processes a scenario owns: a Tansu broker, a Redis server with AOF, and ``adaptd run``
children; each can be paused (SIGSTOP), resumed and killed by its own process id.

Everything listens on 127.0.0.1 only. The daemon's evidence helpers (its log, its metrics,
``py-spy dump``) are here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptd.tools.embedded import EmbeddedKafka, free_port, redis_server_binary

__all__ = ["AofRedis", "Broker", "DaemonChild", "daemon_env", "py_spy_dump"]


def _wait_port(proc: subprocess.Popen[bytes], port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{proc.args[0]} did not listen on port {port} in {timeout_s} s")


class _Pausable:
    """SIGSTOP and SIGCONT by process id: a server that is paused keeps its connections
    open and answers nothing (a hung host, not a closed port)."""

    @property
    def pid(self) -> int:
        raise NotImplementedError

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)


class Broker(_Pausable):
    """A Tansu broker (memory storage: a restart loses every topic, so it is never
    restarted here, only paused). ``advertised_port``: the port the broker names in its
    metadata, where every client connects after bootstrapping (a proxy's, say)."""

    def __init__(self, port: int = 0, advertised_port: int = 0) -> None:
        self.kafka = EmbeddedKafka(port=port, advertised_port=advertised_port)

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap_servers

    @property
    def pid(self) -> int:
        assert self.kafka.child is not None
        return self.kafka.child.proc.pid

    def start(self) -> Broker:
        self.kafka.start()
        return self

    def stop(self) -> None:
        if self.kafka.child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)  # a paused broker cannot act on SIGTERM
        self.kafka.stop()


class AofRedis(_Pausable):
    """redis-server on a fixed free port and folder, append-only file on, fsync every
    second, no RDB snapshots: killed and restarted on the same port and folder, it reloads
    what its AOF holds. ``maxmemory`` (Redis's units, "1800kb"): with ``noeviction``,
    writes are refused with OOM errors beyond it."""

    def __init__(self, folder: Path, maxmemory: str | None = None) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.maxmemory = maxmemory
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout_s: float = 20.0) -> AofRedis:
        log = (self.folder / f"redis-{self.starts}.log").open("ab")
        self.starts += 1
        self.proc = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--maxmemory-policy",
                "noeviction",
                *(["--maxmemory", self.maxmemory] if self.maxmemory else []),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        _wait_port(self.proc, self.port, timeout_s)
        # Listening is not loaded: wait for PING to answer (after the AOF is replayed).
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                with contextlib.suppress(redis.RedisError, OSError):
                    if client.ping():
                        return self
                time.sleep(0.05)
        finally:
            client.close()
        raise RuntimeError("redis-server did not answer PING")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def daemon_env(
    *,
    bootstrap: str,
    redis_url: str,
    topics: dict[str, str],
    group: str,
    prefix: str,
    signing_key: bytes,
    port: int,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of ``adaptd run``: the caller's without any ADAPTD_* variable, plus
    these settings (as tests/daemon/conftest.py's settings_env writes them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTD_")}
    env |= {
        "ADAPTD_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "ADAPTD_KAFKA__GROUP_ID": group,
        "ADAPTD_KAFKA__INPUT_TOPIC": topics["input"],
        "ADAPTD_KAFKA__POLICY_TOPIC": topics["policies"],
        "ADAPTD_KAFKA__SHIFT_TOPIC": topics["shifts"],
        "ADAPTD_KAFKA__DEADLETTER_TOPIC": topics["deadletter"],
        "ADAPTD_REDIS__URL": redis_url,
        "ADAPTD_REDIS__KEY_PREFIX": prefix,
        "ADAPTD_METRICS__HOST": "127.0.0.1",
        "ADAPTD_METRICS__PORT": str(port),
        "ADAPTD_SIGNING__KEY": signing_key.decode(),
        "ADAPTD_LOG_LEVEL": "info",
        "ADAPTD_LOG_FORMAT": "json",
    }
    return env | (extra or {})


@dataclass
class DaemonChild:
    """One ``adaptd run`` child process (its own session), its log file and HTTP port."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    started_at: float
    ready_at: float | None = None
    children: list[int] = field(default_factory=list)
    wall_started: float = field(default_factory=time.time)

    @classmethod
    def start(cls, env_of: Any, log_path: Path) -> DaemonChild:
        """``env_of(port)`` gives the environment for a metrics port."""
        port = free_port()
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "adaptd.daemon.cli", "run"],
                env=env_of(port),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(proc, port, log_path, time.monotonic())

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _get(self, path: str, timeout_s: float = 1.0) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}{path}", timeout=timeout_s
            ) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    async def readyz(self) -> tuple[int, dict[str, Any]]:
        """(status, checks); (0, {}) when nothing answers."""
        try:
            status, body = await asyncio.to_thread(self._get, "/readyz")
        except (OSError, ValueError):
            return 0, {}
        with contextlib.suppress(ValueError):
            return status, json.loads(body)
        return status, {}

    async def metrics(self) -> dict[str, float] | None:
        """The daemon's samples summed by name plus ``name{label=value}`` for the labels
        the scenarios read; None when /metrics does not answer."""
        from prometheus_client.parser import text_string_to_metric_families

        try:
            status, body = await asyncio.to_thread(self._get, "/metrics", 2.0)
        except (OSError, ValueError):
            return None
        if status != 200:
            return None
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(body.decode()):
            for s in family.samples:
                out[s.name] = out.get(s.name, 0.0) + s.value
                for label, value in s.labels.items():
                    key = f"{s.name}{{{label}={value}}}"
                    out[key] = out.get(key, 0.0) + s.value
        return out

    async def wait_ready(self, timeout_s: float) -> float | None:
        """Seconds from start to the first /readyz 200; None on timeout or exit."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.alive():
            status, _ = await self.readyz()
            if status == 200:
                self.ready_at = time.monotonic()
                self.children = _children(self.pid)
                return self.ready_at - self.started_at
            await asyncio.sleep(0.1)
        return None

    def kill(self) -> None:
        if self.alive():
            self.children = self.children or _children(self.pid)
            self.proc.kill()
        self.proc.wait()

    async def terminate(self, timeout_s: float) -> tuple[int | None, float]:
        """SIGTERM; (exit status or None if it had to be killed, seconds to exit)."""
        t0 = time.monotonic()
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.to_thread(self.proc.wait), timeout_s)
        except TimeoutError:
            self.kill()
            return None, time.monotonic() - t0
        return self.proc.returncode, time.monotonic() - t0

    def orphans(self) -> list[int]:
        """The daemon's former children (its learner) still running."""
        return [pid for pid in self.children if _running(pid)]

    def cleanup(self) -> None:
        """Kill the child and what is left of its session (its learner), by process id."""
        self.kill()
        for pid in self.orphans():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def log_lines(self) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []

    def log_tail(self, lines: int = 40) -> list[str]:
        return self.log_lines()[-lines:]

    def started_s(self) -> float | None:
        """Seconds from the process's start to its log line "adaptd started" (the learner
        spawned and warmed up, clients open; the group not joined yet)."""
        from datetime import datetime

        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return None
        for line in lines:
            if '"adaptd started"' in line:
                with contextlib.suppress(ValueError, KeyError):
                    stamp = json.loads(line)["timestamp"].replace("Z", "+00:00")
                    return datetime.fromisoformat(stamp).timestamp() - self.wall_started
        return None

    def log_count(self, needle: str) -> int:
        try:
            return self.log_path.read_text(errors="replace").count(needle)
        except OSError:
            return 0


def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                found = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
                out += [int(x) for x in found]
    return out


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def py_spy_dump(pid: int, timeout_s: float = 20.0) -> str:
    """``py-spy dump --pid`` of a process (its threads' Python stacks), or why not."""
    binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(binary).exists():
        return "py-spy is not installed"
    try:
        done = subprocess.run(
            [binary, "dump", "--pid", str(pid)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"py-spy failed: {exc!r}"
    return (done.stdout + done.stderr).strip()
