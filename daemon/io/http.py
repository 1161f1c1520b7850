"""The daemon's one HTTP port: ``/metrics``, ``/livez`` and ``/readyz``.

A deliberately small HTTP/1.1 server on asyncio streams: three GET routes and no
framework, so the probes keep answering whatever the rest of the daemon is doing.
``/livez`` answers whenever the event loop runs (no dependency checks: a liveness probe
that fails on a Redis outage would restart a daemon that cannot help it).
``/readyz`` answers 200 only when the readiness check (group joined, Redis reachable)
passes, with the reasons as JSON either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable

from prometheus_client.exposition import CONTENT_TYPE_LATEST

Readiness = Callable[[], Awaitable[dict[str, bool]]]

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class HttpServer:
    """Serves the probes and the metrics of one daemon."""

    def __init__(
        self, host: str, port: int, render_metrics: Callable[[], bytes], readiness: Readiness
    ) -> None:
        self.host = host
        self.port = port
        self.render_metrics = render_metrics
        self.readiness = readiness
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            method, _, rest = request.decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            status, ctype, body = await self._route(method, path)
            head = (
                f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _route(self, method: str, path: str) -> tuple[int, str, bytes]:
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"only GET\n"
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, self.render_metrics()
        if path == "/livez":
            return 200, "text/plain", b"ok\n"
        if path == "/readyz":
            checks = await self.readiness()
            status = 200 if all(checks.values()) else 503
            return status, "application/json", json.dumps(checks).encode() + b"\n"
        return 404, "text/plain", b"not found\n"
