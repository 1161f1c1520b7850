"""TLS for the tests: a throwaway certificate authority with a server and a client
certificate, a TLS terminator in front of a plaintext broker, and redis-server with TLS and
an ACL file. Loopback only; nothing is downloaded."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from adaptd.tools.embedded import free_port, redis_server_binary
from bench.chaos.proxy import pipe


@dataclass(frozen=True)
class Pki:
    """PEM files: the CA, a server certificate for 127.0.0.1 and localhost, a client one."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_pki(folder: Path, name: str = "adaptd test CA") -> Pki:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(cn: str, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName]) -> tuple:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    server = leaf(
        "localhost",
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    client = leaf("adaptd", ExtendedKeyUsageOID.CLIENT_AUTH, [])
    folder.mkdir(parents=True, exist_ok=True)
    paths = Pki(
        *(folder / n for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key"))
    )
    paths.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for (key, cert), cert_path, key_path in (
        (server, paths.server_cert, paths.server_key),
        (client, paths.client_cert, paths.client_key),
    ):
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return paths


@contextlib.asynccontextmanager
async def tls_terminator(pki: Pki, upstream_port: int, port: int = 0) -> AsyncIterator[int]:
    """Accept TLS connections (client certificates signed by the CA required) on ``port``
    and pipe each to 127.0.0.1:``upstream_port`` in plaintext; yields the port."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    ctx.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    ctx.verify_mode = ssl.CERT_REQUIRED
    tasks: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            writer.close()
            return
        for job in (pipe(reader, up_writer), pipe(up_reader, writer)):
            task = asyncio.create_task(job)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(serve, "127.0.0.1", port or free_port(), ssl=ctx)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


ACL_USER, ACL_PASSWORD = "adaptd", "s3cret-for-tests"


@contextlib.contextmanager
def tls_redis(pki: Pki, folder: Path) -> Iterator[int]:
    """redis-server with TLS only (client certificates required) and an ACL file: the
    default user is off, ``ACL_USER`` may do everything. Yields its TLS port."""
    acl = folder / "users.acl"
    acl.write_text(f"user default off\nuser {ACL_USER} on >{ACL_PASSWORD} ~* &* +@all\n")
    port = free_port()
    proc = subprocess.Popen(
        [
            redis_server_binary(),
            "--port", "0",
            "--tls-port", str(port),
            "--tls-cert-file", str(pki.server_cert),
            "--tls-key-file", str(pki.server_key),
            "--tls-ca-cert-file", str(pki.ca),
            "--tls-auth-clients", "yes",
            "--aclfile", str(acl),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(folder),
        ],
        stdout=(folder / "redis-tls.log").open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                output = (folder / "redis-tls.log").read_text(errors="replace")
                if "tls" in output.lower() and "support" in output.lower():
                    pytest.skip(f"this redis-server has no TLS: {output.strip()[-200:]}")
                raise RuntimeError(f"redis-server with TLS exited: {output[-500:]}")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
