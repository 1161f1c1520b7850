"""A loopback TCP proxy that can cut the network: :meth:`CutProxy.cut` resets every open
connection it carries (RST, as a dropped link looks to both ends) and refuses new ones until
:meth:`CutProxy.restore`.

Without ``identify`` every connection is cut and, while cut, the proxy does not listen at
all (a connect is refused). With it, only the connections it selects are: the proxy reads
the start of each connection to decide, so a selected connection made during a cut is
accepted and reset at once. That is how only the daemon is cut from the broker: Tansu
advertises one address, so the scenario's own feed and readers come through the same port,
and a feed cut mid-request would retry its produce requests and write records twice at
offsets the checks do not know about (its acknowledgements lost); a real feed is on
another host's link anyway. :func:`kafka_client_prefix` selects by the Kafka client id
of the first request.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from adaptd.tools.embedded import free_port

__all__ = [
    "KAFKA_HEAD",
    "CutProxy",
    "Identify",
    "kafka_client_id",
    "kafka_client_id_length",
    "kafka_client_prefix",
    "pipe",
]

HOST = "127.0.0.1"
IDENTIFY_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5.0
KAFKA_HEAD = 14
"""Bytes of a Kafka request up to its client id: size (int32), api key (int16), api version
(int16), correlation id (int32), client id length (int16)."""

Identify = Callable[[asyncio.StreamReader], Awaitable[tuple[bytes, bool]]]
"""Reads the start of a client's connection: (the bytes read, to forward first; whether the
connection is one the cuts apply to)."""


def kafka_client_id_length(head: bytes) -> int:
    """The client id's length from a request's first ``KAFKA_HEAD`` bytes (-1: null)."""
    if len(head) < KAFKA_HEAD:
        raise ValueError(f"a Kafka request header needs {KAFKA_HEAD} bytes, got {len(head)}")
    (length,) = struct.unpack_from(">h", head, KAFKA_HEAD - 2)
    return length


def kafka_client_id(request: bytes) -> str | None:
    """The client id of a Kafka request (request header v1 and later, which every client
    request but ControlledShutdown v0 uses: the id is an int16-sized string even in the
    flexible versions); None when it is null."""
    length = kafka_client_id_length(request)
    if length < 0:
        return None
    if len(request) < KAFKA_HEAD + length:
        raise ValueError("the request ends inside its client id")
    return request[KAFKA_HEAD : KAFKA_HEAD + length].decode("utf-8", errors="replace")


def kafka_client_prefix(prefix: str) -> Identify:
    """Select the Kafka connections whose first request's client id starts with ``prefix``."""

    async def identify(reader: asyncio.StreamReader) -> tuple[bytes, bool]:
        head = await reader.readexactly(KAFKA_HEAD)
        length = kafka_client_id_length(head)
        rest = await reader.readexactly(length) if length > 0 else b""
        client_id = kafka_client_id(head + rest)
        return head + rest, client_id is not None and client_id.startswith(prefix)

    return identify


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST: SO_LINGER on with a zero timeout, then abort."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    selected: bool
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def reset(self) -> None:
        _reset(self.client)
        _reset(self.upstream)


@dataclass
class CutProxy:
    """Pipes each connection on ``port`` to ``upstream_port``, both on 127.0.0.1."""

    upstream_port: int
    port: int = 0
    name: str = "proxy"
    identify: Identify | None = None
    accepted: int = 0
    refused: int = 0
    """Connections reset at once because the link was cut (with ``identify``; without it
    a cut proxy does not listen, and the kernel refuses them)."""
    dropped: int = 0
    """Open connections reset by the cuts."""
    cuts: list[dict[str, Any]] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _links: set[_Link] = field(default_factory=set)
    _cut_since: float | None = None
    _refused_at_cut: int = 0

    def __post_init__(self) -> None:
        self.port = self.port or free_port()

    @property
    def is_cut(self) -> bool:
        return self._cut_since is not None

    @property
    def open_links(self) -> int:
        return len(self._links)

    async def start(self) -> CutProxy:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._serve, HOST, self.port, reuse_address=True
            )
        return self

    async def close(self) -> None:
        server = self._stop_listening()
        links = list(self._links)
        for link in links:
            link.reset()
            for task in link.tasks:
                task.cancel()
        await asyncio.gather(*(t for link in links for t in link.tasks), return_exceptions=True)
        self._links.clear()
        await _closed(server)

    async def cut(self) -> int:
        """Cut: reset the selected open connections, refuse new ones; returns how many
        were reset."""
        self._cut_since = time.monotonic()
        server = self._stop_listening() if self.identify is None else None
        gone = [link for link in self._links if link.selected]
        for link in gone:
            link.reset()
        await _closed(server)
        self.dropped += len(gone)
        self._refused_at_cut = self.refused
        self.cuts.append({"dropped": len(gone)})
        return len(gone)

    async def restore(self) -> None:
        """Let connections through again."""
        if self._cut_since is not None:
            self.cuts[-1]["seconds"] = round(time.monotonic() - self._cut_since, 2)
            self.cuts[-1]["refused"] = self.refused - self._refused_at_cut
        self._cut_since = None
        await self.start()

    def _stop_listening(self) -> asyncio.Server | None:
        """Stop accepting at once; the server, for :func:`_closed` once its connections
        are reset (from Python 3.12 on, ``wait_closed`` waits for them)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        return server

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        head, selected = b"", True
        if self.identify is not None:
            try:
                head, selected = await asyncio.wait_for(self.identify(reader), IDENTIFY_TIMEOUT_S)
            except (asyncio.IncompleteReadError, TimeoutError, ConnectionError, ValueError):
                _reset(writer)
                return
        if selected and self.is_cut:
            self.refused += 1
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(HOST, self.upstream_port), CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError):
            _reset(writer)
            return
        link = _Link(writer, up_writer, selected)
        if selected and self.is_cut:  # cut while it connected
            self.refused += 1
            link.reset()
            return
        if head:
            up_writer.write(head)
        self._links.add(link)
        link.tasks = [
            asyncio.create_task(pipe(reader, up_writer)),
            asyncio.create_task(pipe(up_reader, writer)),
        ]
        for task in link.tasks:
            task.add_done_callback(lambda _t, link=link: self._forget(link))

    def _forget(self, link: _Link) -> None:
        if all(t.done() for t in link.tasks):
            self._links.discard(link)


async def _closed(server: asyncio.Server | None) -> None:
    if server is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), CONNECT_TIMEOUT_S)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF or an error, then close the other side too (neither Kafka's nor Redis's
    clients half-close, so one side ending ends the connection)."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
