"""API Gateway WebSocket API, locally: connections and frames become events for WebSocketFunction, and the
management API (``/@connections/{id}``) lets the other functions post to the sockets.

One port serves both, as one API Gateway domain does:

- **WebSocket.** A handshake on ``ws://127.0.0.1:3002/`` (or ``/<stage>``) is a ``$connect`` event; the handshake
  completes only if the handler answers 2xx, and is refused with the handler's status otherwise (401 for a bad
  token). Each text message is a ``$default`` event; a close is a ``$disconnect`` event with the close code and
  API Gateway's reason. As on AWS: a frame over 32 KiB or a message over 128 KiB closes the connection with
  1009, a binary frame with 1003 (API Gateway does not take binary frames in), a connection idle for 10 minutes
  or open for 2 hours is closed with 1001.
- **Management API**, in the wire format of boto3's ``apigatewaymanagementapi`` client pointed at
  ``http://127.0.0.1:3002/<stage>`` (the local ``WEBSOCKET_ENDPOINT``): ``POST /@connections/{id}`` sends the body
  to the socket (200), ``GET`` answers ``{"connectedAt", "identity": {"sourceIp", "userAgent"}, "lastActiveAt"}``,
  ``DELETE`` closes it (204); an id that is not connected is 410 ``GoneException``, a body over 128 KiB is 413
  ``PayloadTooLargeException``. The stage prefix is optional, as the real endpoint's path carries it.

The websockets library reads no request body, so a request for ``/@connections/…`` is taken off the connection
before the WebSocket handshake sees it (:class:`_Connection`) and answered here, one request per TCP connection.
No business logic: the gateway only delivers API Gateway's events to the handler and frames to sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Optional, Protocol
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from local.events import (
    WEBSOCKET_STAGE,
    disconnect_reason,
    websocket_connect_event,
    websocket_disconnect_event,
    websocket_id,
    websocket_message_event,
)

log = logging.getLogger("local.ws_gateway")

# API Gateway's WebSocket quotas (not adjustable).
FRAME_BYTES = 32 * 1024
MESSAGE_BYTES = 128 * 1024
IDLE_SECONDS = 10 * 60
MAX_CONNECTION_SECONDS = 2 * 60 * 60
# A management request's line and headers; its body is read up to this before it is answered 413.
MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024
# How long a handshake (the $connect invocation included) may take: API Gateway's integration timeout is 29 s.
OPEN_TIMEOUT = 30.0


class Invocable(Protocol):
    """A handler the way the local stack invokes one (``local.invoke.Function``)."""

    def invoke(self, event: dict[str, Any]) -> Any:
        """Run the handler with one event and return its result."""
        ...


@dataclass
class _Client:
    """One open connection, as the management API describes it."""

    socket: ServerConnection
    connection_id: str
    connected_at: datetime
    source_ip: str
    user_agent: str
    last_active: datetime = field(default_factory=lambda: datetime.now(UTC))
    closing_reason: Optional[str] = None  # set when the gateway closes it (DELETE, idle, 2 hours)


@dataclass(frozen=True)
class ManagementAnswer:
    """An HTTP answer of the management API."""

    status: int
    body: bytes = b""
    error: Optional[str] = None  # x-amzn-ErrorType

    @classmethod
    def failure(cls, status: int, error: str, message: str) -> ManagementAnswer:
        return cls(status, json.dumps({"message": message}).encode(), error)

    def serialize(self) -> bytes:
        head = [f"HTTP/1.1 {self.status} {http.HTTPStatus(self.status).phrase}"]
        head.append(f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime())}")
        if self.body:
            head.append("Content-Type: application/json")
        if self.error:
            head.append(f"x-amzn-ErrorType: {self.error}")
        head += [f"Content-Length: {len(self.body)}", "Connection: close"]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + self.body


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class WebSocketGateway:
    """The WebSocket API of one stage on ``host:port``, invoking ``function`` for each route."""

    def __init__(
        self,
        function: Invocable,
        port: int,
        host: str = "127.0.0.1",
        stage: str = WEBSOCKET_STAGE,
        *,
        idle_seconds: float = IDLE_SECONDS,
        max_seconds: float = MAX_CONNECTION_SECONDS,
        api_id: str = "local",
    ) -> None:
        self._function = function
        self.host = host
        self.port = port
        self.stage = stage
        self.api_id = api_id
        self._idle = idle_seconds
        self._max = max_seconds
        self._clients: dict[str, _Client] = {}
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stopping: Optional[asyncio.Event] = None
        self._ready = threading.Event()
        self._failure: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name="ws-gateway", daemon=True)

    @property
    def url(self) -> str:
        """What a client connects to (add ``?token=…``)."""
        return f"ws://{self.host}:{self.port}/"

    @property
    def management_url(self) -> str:
        """The management API's endpoint (``WEBSOCKET_ENDPOINT``): the stage's URL."""
        return f"http://{self.host}:{self.port}/{self.stage}"

    def connection_ids(self) -> list[str]:
        """The ids of the open connections (for tests and the banner)."""
        return list(self._clients)

    def start(self) -> WebSocketGateway:
        self._thread.start()
        self._ready.wait(30)
        if self._failure is not None:
            raise RuntimeError(f"the WebSocket gateway could not start on port {self.port}") from self._failure
        if not self._ready.is_set():
            raise RuntimeError("the WebSocket gateway did not start within 30 s")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(15)

    # --- the server ----------------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        gateway = self

        class Connection(_Connection):
            owner = gateway

        async with serve(
            self._session,
            self.host,
            self.port,
            process_request=self._handshake,
            create_connection=Connection,
            max_size=(MESSAGE_BYTES, FRAME_BYTES),
            compression=None,
            ping_interval=None,  # API Gateway sends no pings; it answers the client's
            open_timeout=OPEN_TIMEOUT,
            server_header=None,
        ) as server:
            self.port = int(server.sockets[0].getsockname()[1])
            watchdog = asyncio.create_task(self._watch())
            self._ready.set()
            await self._stopping.wait()
            watchdog.cancel()
            await self._close_all(server)

    async def _close_all(self, server: Server) -> None:
        for client in list(self._clients.values()):
            client.closing_reason = "Going away"
        server.close(close_connections=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 10)

    async def _invoke(self, event: dict[str, Any]) -> Any:
        """The handler's result, invoked off the event loop; a handler that raised answers 500, as on AWS."""
        try:
            return await asyncio.to_thread(self._function.invoke, event)
        except Exception:
            log.exception("WebSocketFunction raised on %s", event["requestContext"]["routeKey"])
            return {"statusCode": 500}

    # --- $connect ------------------------------------------------------------------------------------------

    async def _handshake(self, socket: ServerConnection, request: Request) -> Optional[Response]:
        parts = urlsplit(request.path)
        if parts.path.rstrip("/") not in ("", f"/{self.stage}"):
            return socket.respond(http.HTTPStatus.FORBIDDEN, "Forbidden\n")
        connection_id = websocket_id()
        source_ip = str(socket.remote_address[0])
        headers = list(request.headers.raw_items())
        names = {name.lower() for name, _ in headers}
        for name, value in (("X-Forwarded-For", source_ip), ("X-Forwarded-Port", str(self.port))):
            if name.lower() not in names:
                headers.append((name, value))
        if "x-forwarded-proto" not in names:
            headers.append(("X-Forwarded-Proto", "http"))
        event = websocket_connect_event(
            connection_id, parts.query, headers, source_ip=source_ip, api_id=self.api_id, stage=self.stage
        )
        result = await self._invoke(event)
        status = int(result.get("statusCode", 200)) if isinstance(result, dict) else 200
        if status not in set(http.HTTPStatus):  # not an HTTP status: API Gateway's integration error
            status = 500
        if not 200 <= status < 300:
            body = result.get("body") if isinstance(result, dict) else None
            return socket.respond(status, str(body) if body else f"{http.HTTPStatus(status).phrase}\n")
        socket.connection_id = connection_id  # type: ignore[attr-defined]
        socket.connected_at = event["requestContext"]["connectedAt"]  # type: ignore[attr-defined]
        return None

    # --- frames and $disconnect ----------------------------------------------------------------------------

    async def _session(self, socket: ServerConnection) -> None:
        connection_id: str = socket.connection_id  # type: ignore[attr-defined]
        connected_ms: int = socket.connected_at  # type: ignore[attr-defined]
        agent = str(socket.request.headers.get("User-Agent", "")) if socket.request else ""
        source_ip = str(socket.remote_address[0])
        client = _Client(socket, connection_id, datetime.fromtimestamp(connected_ms / 1000, UTC), source_ip, agent)
        self._clients[connection_id] = client
        try:
            while True:
                message = await socket.recv()
                client.last_active = datetime.now(UTC)
                if isinstance(message, bytes):
                    client.closing_reason = "Binary frames are not supported"
                    await socket.close(1003, client.closing_reason)
                    break
                event = websocket_message_event(
                    connection_id, message, connected_ms, source_ip=source_ip, api_id=self.api_id, stage=self.stage
                )
                await self._invoke(event)
        except ConnectionClosed:
            pass
        finally:
            self._clients.pop(connection_id, None)
            await socket.wait_closed()
            code, reason = _closed(socket, client.closing_reason)
            event = websocket_disconnect_event(
                connection_id, connected_ms, code, reason, source_ip=source_ip, api_id=self.api_id, stage=self.stage
            )
            await self._invoke(event)

    async def _watch(self) -> None:
        """Close connections idle for longer than API Gateway allows, or open for longer than 2 hours."""
        period = max(0.05, min(self._idle, self._max) / 10)
        while True:
            await asyncio.sleep(period)
            now = datetime.now(UTC)
            for client in list(self._clients.values()):
                idle = (now - client.last_active).total_seconds() > self._idle
                old = (now - client.connected_at).total_seconds() > self._max
                if (idle or old) and client.closing_reason is None:
                    client.closing_reason = "Going away"
                    asyncio.create_task(client.socket.close(1001, client.closing_reason))

    # --- the management API --------------------------------------------------------------------------------

    async def manage(self, method: str, target: str, body: bytes) -> ManagementAnswer:
        """Answer one management API request (``target``: the path, with or without the stage)."""
        path = urlsplit(target).path
        prefix, marker, rest = path.partition("/@connections/")
        if not marker or prefix not in ("", f"/{self.stage}") or not rest or "/" in rest:
            return ManagementAnswer.failure(403, "ForbiddenException", "Forbidden")
        connection_id = unquote(rest)
        client = self._clients.get(connection_id)
        if method == "POST" and len(body) > MESSAGE_BYTES:
            return ManagementAnswer.failure(
                413, "PayloadTooLargeException", f"Message is larger than the {MESSAGE_BYTES} bytes allowed"
            )
        if method not in ("POST", "GET", "DELETE"):
            return ManagementAnswer.failure(403, "ForbiddenException", "Forbidden")
        if client is None or client.closing_reason is not None:
            return ManagementAnswer.failure(410, "GoneException", f"Connection {connection_id} is gone")
        if method == "GET":
            document = {
                "connectedAt": _iso(client.connected_at),
                "identity": {"sourceIp": client.source_ip, "userAgent": client.user_agent},
                "lastActiveAt": _iso(client.last_active),
            }
            return ManagementAnswer(200, json.dumps(document).encode())
        if method == "DELETE":
            client.closing_reason = "Connection Closed Normally"
            asyncio.create_task(client.socket.close(1000, ""))
            return ManagementAnswer(204)
        try:
            text = body.decode()
        except UnicodeDecodeError:
            data: str | bytes = body
        else:
            data = text
        try:
            await asyncio.wait_for(client.socket.send(data), 10)
        except (ConnectionClosed, TimeoutError):
            return ManagementAnswer.failure(410, "GoneException", f"Connection {connection_id} is gone")
        client.last_active = datetime.now(UTC)
        return ManagementAnswer(200)


def _closed(socket: ServerConnection, closing_reason: Optional[str]) -> tuple[int, str]:
    """The $disconnect event's status code and reason for a closed connection."""
    protocol = socket.protocol
    received, sent = protocol.close_rcvd, protocol.close_sent
    if received is not None and (sent is None or protocol.close_rcvd_then_sent):  # the client closed it
        code = int(received.code)
        return code, disconnect_reason(None if code == 1005 else code, received.reason)
    if sent is not None:  # the gateway closed it (DELETE, a limit, idle, shutting down)
        code = int(sent.code)
        return code, closing_reason or sent.reason or disconnect_reason(code, by_client=False)
    return 1006, "Connection closed abnormally"


class _Connection(ServerConnection):
    """A connection that is either a WebSocket (handed to websockets) or one management API request.

    The first bytes decide: a request line for ``…/@connections/…`` is read here, body included, answered, and the
    TCP connection closed; anything else goes to websockets' handshake unchanged.
    """

    owner: WebSocketGateway

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mode = "undecided"  # then "websocket" or "management"
        self._buffer = bytearray()
        self._request: Optional[tuple[str, str, int]] = None  # method, target, content length

    def data_received(self, data: bytes) -> None:
        if self._mode == "websocket":
            super().data_received(data)
            return
        self._buffer += data
        if self._mode == "undecided":
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD_BYTES:
                    self._hand_over()
                return
            request_line, *header_lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
            method, _, rest = request_line.partition(" ")
            target = rest.rpartition(" ")[0]
            if "/@connections/" not in target.split("?", 1)[0]:
                self._hand_over()
                return
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
            self._mode = "management"
            del self._buffer[: end + 4]
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                length = -1
            if "transfer-encoding" in headers or length < 0:
                self._answer(ManagementAnswer.failure(400, "BadRequestException", "Content-Length is required"))
                return
            self._request = (method.upper(), target, length)
        self._maybe_answer()

    def eof_received(self) -> None:
        if self._mode != "management":  # a management request is answered, then the gateway closes
            super().eof_received()

    def _hand_over(self) -> None:
        self._mode = "websocket"
        data, self._buffer = bytes(self._buffer), bytearray()
        super().data_received(data)

    def _maybe_answer(self) -> None:
        if self._request is None:
            return
        method, target, length = self._request
        if len(self._buffer) < min(length, MAX_BODY_BYTES):
            return
        self._request = None
        body = bytes(self._buffer[:length])
        self.loop.create_task(self._respond(method, target, body, length))

    async def _respond(self, method: str, target: str, body: bytes, length: int) -> None:
        if length > MAX_BODY_BYTES:
            answer = ManagementAnswer.failure(
                413, "PayloadTooLargeException", f"Message is larger than the {MESSAGE_BYTES} bytes allowed"
            )
        else:
            try:
                answer = await self.owner.manage(method, target, body)
            except Exception:
                log.exception("the management API failed on %s %s", method, target)
                answer = ManagementAnswer.failure(500, "InternalServerErrorException", "Internal server error")
        self._answer(answer)

    def _answer(self, answer: ManagementAnswer) -> None:
        self.transport.write(answer.serialize())
        self.transport.close()


def wait_connected(gateway: WebSocketGateway, known: Collection[str] = (), timeout: float = 60.0) -> str:
    """The id of a connection of the gateway's that is not in ``known``, once one is open (for tests)."""
    deadline = time.monotonic() + timeout
    while not (new := [c for c in gateway.connection_ids() if c not in known]):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no new connection after {timeout} s")
        time.sleep(0.02)
    return new[0]
