from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator

import pytest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from adaptd.daemon.io.http import HttpServer
from adaptd.daemon.io.metrics import Metrics


class Readiness:
    """A readiness check whose answer the test sets."""

    def __init__(self) -> None:
        self.checks = {"group_joined": True, "redis": True}
        self.calls = 0

    async def __call__(self) -> dict[str, bool]:
        self.calls += 1
        return dict(self.checks)


@pytest.fixture
def readiness() -> Readiness:
    return Readiness()


@pytest.fixture
def metrics() -> Metrics:
    m = Metrics()
    m.dead_letters.labels(reason="invalid_json").inc(3)
    return m


@pytest.fixture
async def server(readiness: Readiness, metrics: Metrics) -> AsyncIterator[HttpServer]:
    srv = HttpServer("127.0.0.1", 0, metrics.render, readiness)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.aclose()


async def request(port: int, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10.0)  # the server closes the connection
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    assert int(headers["content-length"]) == len(body) or method == "HEAD"
    return int(status_line.split(" ")[1]), headers, body


async def test_start_on_port_zero_picks_a_free_port(server: HttpServer) -> None:
    assert server.port > 0


async def test_livez(server: HttpServer, readiness: Readiness) -> None:
    status, _, body = await request(server.port, "GET", "/livez")
    assert (status, body) == (200, b"ok\n")
    assert readiness.calls == 0  # liveness checks no dependency


async def test_metrics_are_prometheus_text(server: HttpServer) -> None:
    status, headers, body = await request(server.port, "GET", "/metrics")
    assert status == 200
    # The Prometheus text exposition format (0.0.4 or, with newer clients, 1.0.0).
    assert headers["content-type"] == CONTENT_TYPE_LATEST
    assert headers["content-type"].startswith("text/plain; version=")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert "adaptd_dead_letters" in families
    samples = {
        (s.name, s.labels.get("reason")): s.value for s in families["adaptd_dead_letters"].samples
    }
    assert samples[("adaptd_dead_letters_total", "invalid_json")] == 3.0


async def test_metrics_are_rendered_per_request(server: HttpServer, metrics: Metrics) -> None:
    metrics.dead_letters.labels(reason="invalid_json").inc()
    _, _, body = await request(server.port, "GET", "/metrics?x=1")
    assert b'adaptd_dead_letters_total{reason="invalid_json"} 4.0' in body


async def test_readyz_when_every_check_passes(server: HttpServer) -> None:
    status, headers, body = await request(server.port, "GET", "/readyz")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"group_joined": True, "redis": True}


async def test_readyz_reports_the_failing_check(server: HttpServer, readiness: Readiness) -> None:
    readiness.checks["redis"] = False
    status, _, body = await request(server.port, "GET", "/readyz")
    assert status == 503
    assert json.loads(body) == {"group_joined": True, "redis": False}
    readiness.checks["redis"] = True
    assert (await request(server.port, "GET", "/readyz"))[0] == 200


async def test_unknown_path_is_404(server: HttpServer) -> None:
    status, _, body = await request(server.port, "GET", "/nope")
    assert (status, body) == (404, b"not found\n")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_other_methods_are_405(server: HttpServer, method: str) -> None:
    status, _, _ = await request(server.port, method, "/livez")
    assert status == 405


async def test_head_sends_no_body(server: HttpServer) -> None:
    status, headers, body = await request(server.port, "HEAD", "/livez")
    assert (status, body) == (200, b"")
    assert headers["content-length"] == "3"


async def test_urllib_client_in_a_thread(server: HttpServer, readiness: Readiness) -> None:
    def get(path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    assert await asyncio.to_thread(get, "/livez") == (200, b"ok\n")
    readiness.checks["group_joined"] = False
    status, body = await asyncio.to_thread(get, "/readyz")
    assert status == 503
    assert json.loads(body)["group_joined"] is False


async def test_a_silent_client_does_not_stop_the_server(server: HttpServer) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /livez HTTP/1.1\r\n")  # never finishes its request head
    await writer.drain()
    assert (await request(server.port, "GET", "/livez"))[0] == 200
    writer.close()
    await writer.wait_closed()


async def test_aclose_stops_listening(readiness: Readiness, metrics: Metrics) -> None:
    srv = HttpServer("127.0.0.1", 0, metrics.render, readiness)
    await srv.start()
    port = srv.port
    await srv.aclose()
    with pytest.raises(ConnectionRefusedError):
        await request(port, "GET", "/livez")
