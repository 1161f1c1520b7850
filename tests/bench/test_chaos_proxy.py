"""The chaos suite's cut proxy on loopback: bytes go through, a cut resets the open
connections and refuses new ones, a restore lets them through again, and with a selector
only the selected connections are cut. The upstream is a small echo server (the proxy only
moves bytes; the netcut scenario runs it in front of the real broker and Redis)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest
from aiokafka.protocol.admin import ApiVersionRequest_v0

from adaptd.tools.embedded import free_port
from bench.chaos.proxy import CutProxy, kafka_client_prefix, pipe

WAIT_S = 5.0


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    # An echo server: what a client writes is piped back to it.
    server = await asyncio.start_server(pipe, "127.0.0.1", free_port())
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), WAIT_S)


async def _roundtrip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes):
    writer.write(data)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(data)), WAIT_S)


async def _is_cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Whether the connection was reset (or closed) under the client."""
    try:
        writer.write(b"after the cut")
        await writer.drain()
        return await asyncio.wait_for(reader.read(100), WAIT_S) == b""
    except ConnectionError:
        return True


def _kafka_hello(client_id: str) -> bytes:
    request = ApiVersionRequest_v0()
    message = request.build_request_header(correlation_id=1, client_id=client_id).encode()
    message += request.encode()
    return struct.pack(">i", len(message)) + message


async def test_a_cut_resets_open_connections_and_refuses_new_ones(echo_port: int) -> None:
    proxy = await CutProxy(echo_port, name="echo").start()
    try:
        reader, writer = await _connect(proxy.port)
        assert await _roundtrip(reader, writer, b"hello") == b"hello"
        assert await proxy.cut() == 1
        assert proxy.is_cut
        assert await _is_cut(reader, writer)
        with pytest.raises(ConnectionRefusedError):
            await _connect(proxy.port)
        await proxy.restore()
        reader, writer = await _connect(proxy.port)
        assert await _roundtrip(reader, writer, b"again") == b"again"
        writer.close()
        assert proxy.dropped == 1 and proxy.accepted == 2
        assert proxy.cuts[0]["dropped"] == 1 and proxy.cuts[0]["seconds"] >= 0
    finally:
        await proxy.close()


async def test_only_the_selected_kafka_clients_are_cut(echo_port: int) -> None:
    proxy = await CutProxy(
        echo_port, name="broker", identify=kafka_client_prefix("adaptd-chaos")
    ).start()
    try:
        daemon = _kafka_hello("adaptd-chaos-subscriber")
        feed = _kafka_hello("aiokafka-0.14.0")
        d_reader, d_writer = await _connect(proxy.port)
        f_reader, f_writer = await _connect(proxy.port)
        # The bytes read to identify the client reach the upstream first, unchanged.
        assert await _roundtrip(d_reader, d_writer, daemon) == daemon
        assert await _roundtrip(f_reader, f_writer, feed) == feed
        assert await proxy.cut() == 1
        assert await _is_cut(d_reader, d_writer)
        assert await _roundtrip(f_reader, f_writer, b"still here") == b"still here"
        # While cut, a selected client is accepted, identified and reset; others pass.
        reader, writer = await _connect(proxy.port)
        writer.write(daemon)
        assert await _is_cut(reader, writer)
        reader, writer = await _connect(proxy.port)
        assert await _roundtrip(reader, writer, feed) == feed
        await proxy.restore()
        assert proxy.cuts == [{"dropped": 1, "seconds": proxy.cuts[0]["seconds"], "refused": 1}]
        reader, writer = await _connect(proxy.port)
        assert await _roundtrip(reader, writer, daemon) == daemon
    finally:
        await proxy.close()


async def test_a_connection_that_never_identifies_itself_is_reset(echo_port: int) -> None:
    proxy = await CutProxy(echo_port, identify=kafka_client_prefix("adaptd")).start()
    try:
        reader, writer = await _connect(proxy.port)
        writer.write(b"\x00\x00")  # two bytes, then EOF: not a Kafka request
        writer.write_eof()
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(100), WAIT_S)
        assert proxy.open_links == 0
    finally:
        await proxy.close()
