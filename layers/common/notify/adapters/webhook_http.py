"""Status webhooks over HTTP (issue 24): one signed POST to an endpoint, its answer classified.

- **The address that was checked.** The connection goes to the IP :func:`notify.webhooks.resolve_public` answered,
  never to the host name, so the name cannot resolve to something else in between (DNS rebinding). The URL's host
  still travels as the ``Host`` header, as the TLS server name (SNI) and as the name the certificate is verified
  against.
- **10 s in all.** The deadline covers connecting, the TLS handshake, sending and the answer's headers: a receiver
  that trickles its answer a byte at a time gets no more time than one that says nothing. At most
  :data:`MAX_ANSWER_BYTES` of an answer are read.
- **Nothing followed.** A 3xx is a failed attempt, retried: a redirect could point anywhere, including inside.
- **One connection per attempt.** A pooled connection is chosen by address and port only, so a connection verified
  for one host name could carry the request of another endpoint on the same address; no connection is kept.

Built on httpcore, the transport httpx itself is built on: httpx takes no network backend, and the deadline is one.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable
from typing import Any, Optional, TypeVar
from urllib.parse import quote

import httpcore
import httpx

from notify.records import WebhookAttempt, WebhookOutcome
from notify.webhooks import Target

TIMEOUT_SECONDS = 10.0
MAX_ANSWER_BYTES = 64 * 1024
MAX_ERROR_CHARS = 200
USER_AGENT = "notify-webhooks/1"
DEFAULT_PORTS = {"https": 443, "http": 80}
# What a request target may hold as it is; anything else (non-ASCII, spaces) is percent-encoded.
_PATH_SAFE = "!#$%&'()*+,/:;=?@[]~"
_Timeout = TypeVar("_Timeout", bound=httpcore.TimeoutException)


class HttpWebhookSender:
    """:class:`notify.ports.WebhookSender` over HTTP/1.1. One per container (:meth:`build`); thread-safe."""

    def __init__(self, pool: httpcore.ConnectionPool, timeout_seconds: float = TIMEOUT_SECONDS) -> None:
        self._pool = pool
        self._timeout = timeout_seconds

    @classmethod
    def build(
        cls,
        timeout_seconds: float = TIMEOUT_SECONDS,
        ssl_context: Optional[ssl.SSLContext] = None,
        max_connections: int = 64,
    ) -> HttpWebhookSender:
        """A sender whose every attempt ends within ``timeout_seconds``; certificates are verified against
        ``ssl_context`` (httpx's default: certifi's roots)."""
        pool = httpcore.ConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=0,
            network_backend=_DeadlineBackend(timeout_seconds),
        )
        return cls(pool, timeout_seconds)

    def close(self) -> None:
        """Close the pool (no connection outlives an attempt, so this only refuses later ones)."""
        self._pool.close()

    def post(self, target: Target, address: str, headers: dict[str, str], body: bytes) -> WebhookAttempt:
        """POST ``body`` to ``target`` at ``address``: DELIVERED on a 2xx, GONE on a 410, RETRY on anything else,
        with the status code, the time to the answer's headers and a short error."""
        started = time.monotonic()
        request_headers = [
            (name, value)
            for name, value in headers.items()
            if name.lower() not in ("host", "content-length", "transfer-encoding", "connection")
        ]
        request_headers += [
            ("Host", _host_header(target)),
            ("Content-Length", str(len(body))),
            ("User-Agent", USER_AGENT),
            ("Connection", "close"),
        ]
        url = httpcore.URL(
            scheme=target.scheme.encode("ascii"),
            host=address.encode("ascii"),
            port=target.port,
            target=quote(target.path, safe=_PATH_SAFE).encode("ascii"),
        )
        extensions = {
            "sni_hostname": target.host,
            "timeout": {"connect": self._timeout, "read": self._timeout, "write": self._timeout, "pool": self._timeout},
        }
        try:
            with self._pool.stream("POST", url, headers=request_headers, content=body, extensions=extensions) as answer:
                latency = _ms_since(started)
                status = answer.status
                if 200 <= status < 300:
                    return WebhookAttempt(WebhookOutcome.DELIVERED, status, latency)
                excerpt = _excerpt(answer)
        except httpcore.TimeoutException as exc:
            return WebhookAttempt(WebhookOutcome.RETRY, None, _ms_since(started), _timeout_error(exc, self._timeout))
        except httpcore.ConnectError as exc:
            return WebhookAttempt(WebhookOutcome.RETRY, None, _ms_since(started), _connect_error(exc))
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            error = _short(f"the connection failed before an answer: {exc or type(exc).__name__}")
            return WebhookAttempt(WebhookOutcome.RETRY, None, _ms_since(started), error)
        if status == 410:
            return WebhookAttempt(
                WebhookOutcome.GONE, status, latency, "HTTP 410 Gone: the endpoint asks to be disabled"
            )
        if 300 <= status < 400:
            return WebhookAttempt(WebhookOutcome.RETRY, status, latency, f"HTTP {status}: redirects are not followed")
        error = _short(f"HTTP {status}" + (f": {excerpt}" if excerpt else ""))
        return WebhookAttempt(WebhookOutcome.RETRY, status, latency, error)


def _host_header(target: Target) -> str:
    host = target.host
    if ":" in host:  # an IPv6 literal, bracketed as in the URL
        host = f"[{host}]"
    return host if target.port == DEFAULT_PORTS.get(target.scheme) else f"{host}:{target.port}"


def _excerpt(answer: httpcore.Response) -> str:
    """The first characters of the answer's body (at most :data:`MAX_ANSWER_BYTES` read), printable and on one line;
    empty if the body cannot be read in time."""
    data = b""
    try:
        for chunk in answer.iter_stream():
            data += chunk
            if len(data) >= MAX_ANSWER_BYTES:
                break
    except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError):
        pass
    text = data[:MAX_ANSWER_BYTES].decode("utf-8", "replace")
    return " ".join("".join(c if c.isprintable() else " " for c in text[: MAX_ERROR_CHARS * 2]).split())


def _timeout_error(exc: httpcore.TimeoutException, seconds: float) -> str:
    if isinstance(exc, httpcore.ConnectTimeout):
        return f"no connection within {seconds:g} s"
    return f"no answer within {seconds:g} s"


def _connect_error(exc: httpcore.ConnectError) -> str:
    # httpcore wraps the socket's error as its argument (the pool re-raises without the cause).
    original = exc.args[0] if exc.args else exc
    if isinstance(original, ssl.SSLError):
        return _short(f"TLS failed: {original.reason or original}" + _verify_detail(original))
    return _short(f"connection failed: {original or type(exc).__name__}")


def _verify_detail(error: ssl.SSLError) -> str:
    message = getattr(error, "verify_message", None)
    return f" ({message})" if isinstance(error, ssl.SSLCertVerificationError) and message else ""


def _short(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


# -- one deadline per attempt ------------------------------------------------------------------------------------
# httpcore's timeouts apply to each socket operation; these wrappers cap each one at what is left of the attempt's
# deadline, set when its connection is opened (every attempt opens its own).


def _left(deadline: float, timeout: Optional[float], error: type[_Timeout]) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise error("the attempt's deadline passed")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: Optional[float] = None) -> bytes:
        return self._stream.read(max_bytes, _left(self._deadline, timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: Optional[float] = None) -> None:
        self._stream.write(buffer, _left(self._deadline, timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: Optional[str] = None, timeout: Optional[float] = None
    ) -> httpcore.NetworkStream:
        left = _left(self._deadline, timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, left), self._deadline)

    def get_extra_info(self, info: str) -> object:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: Optional[float] = None,
        local_address: Optional[str] = None,
        socket_options: Optional[Iterable[Any]] = None,
    ) -> httpcore.NetworkStream:
        deadline = time.monotonic() + self._seconds
        left = _left(deadline, timeout, httpcore.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, left, local_address, socket_options)
        return _DeadlineStream(stream, deadline)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)
