"""A fault-injecting proxy in front of moto server for the providers' send calls, and a ledger of those calls.

Point a process's SES v2 and SNS clients at it (``AWS_ENDPOINT_URL_SESV2``, ``AWS_ENDPOINT_URL_SNS``) and every
request is forwarded to moto unchanged, except that a share of SES ``SendEmail`` and SNS ``Publish`` calls is
answered with the provider's own throttling error instead (SES: HTTP 429 ``TooManyRequestsException``; SNS:
HTTP 429 ``Throttled``), in the wire format botocore parses. Each send that moto accepted is counted by the job it
belongs to (SES's ``job_id`` tag; the ``job_id`` in a push's data) and, for push, by endpoint: a count above one
is a notification that reached its provider twice.

Point ``AWS_ENDPOINT_URL_SQS`` at it too and :meth:`ProviderFaults.sqs_outage` makes SQS unavailable: while it
lasts every SQS call (the JSON protocol's ``AmazonSQS.*`` targets) is answered HTTP 503 ``ServiceUnavailable``, as
SQS answers when it cannot serve, and botocore's retries give up on it like on the real one.
"""

from __future__ import annotations

import http.client
import json
import random
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import parse_qs, urlparse

from local.quiet_http import QuietHandler

SES_SEND_PATH = "/v2/email/outbound-emails"
_SNS_THROTTLED = (
    b'<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type>'
    b"<Code>Throttled</Code><Message>Rate exceeded</Message></Error>"
    b"<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
)

_SQS_UNAVAILABLE = b'{"__type": "com.amazonaws.sqs#ServiceUnavailable", "message": "Service Unavailable"}'


@dataclass
class Ledger:
    """What the proxy saw: sends accepted by moto, by job (and endpoint), and the throttles it answered."""

    emails: Counter[str] = field(default_factory=Counter)  # job id → SendEmail calls moto accepted
    pushes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (job id, endpoint) → Publish calls
    untagged: int = 0  # sends with no job id (not the worker's)
    throttled_emails: int = 0
    throttled_pushes: int = 0
    sqs_refused: int = 0  # SQS calls answered 503 during an outage

    def duplicates(self) -> dict[str, int]:
        """Job id → provider calls beyond the first, for every job that reached its provider more than once."""
        extra: Counter[str] = Counter()
        for job, count in self.emails.items():
            extra[job] += count - 1
        for (job, _), count in self.pushes.items():
            extra[job] += count - 1
        return {job: n for job, n in extra.items() if n > 0}

    def reached(self) -> set[str]:
        """The jobs whose provider accepted at least one call."""
        return set(self.emails) | {job for job, _ in self.pushes}


class ProviderFaults:
    """The proxy: ``url`` forwards to ``upstream``; ``email_throttle_rate``/``push_throttle_rate`` of sends fail."""

    def __init__(
        self,
        upstream: str,
        email_throttle_rate: float = 0.0,
        push_throttle_rate: float = 0.0,
        seed: Optional[int] = None,
        port: int = 0,
        after_email: Optional[Callable[[bytes, bytes], None]] = None,
    ) -> None:
        target = urlparse(upstream)
        self._upstream = (target.hostname or "127.0.0.1", target.port or 80)
        self.email_throttle_rate = email_throttle_rate
        self.push_throttle_rate = push_throttle_rate
        self.ledger = Ledger()
        self._after_email = after_email  # (request, answer) of every SendEmail moto accepted
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._sqs_down = threading.Event()
        self._server = _Server(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> ProviderFaults:
        self._thread = threading.Thread(target=self._server.serve_forever, name="provider-faults", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def sqs_outage(self, down: bool) -> None:
        """Make SQS unavailable (``down``) to every client pointed at the proxy, or available again."""
        if down:
            self._sqs_down.set()
        else:
            self._sqs_down.clear()

    def _draw(self, rate: float) -> bool:
        with self._lock:
            return rate > 0 and self._rng.random() < rate

    def _record(self, kind: str, body: bytes) -> None:
        with self._lock:
            if kind == "email":
                job = _email_job(body)
                if job is None:
                    self.ledger.untagged += 1
                else:
                    self.ledger.emails[job] += 1
            else:
                job, endpoint = _push_job(body)
                if job is None:
                    self.ledger.untagged += 1
                else:
                    self.ledger.pushes[(job, endpoint)] += 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(QuietHandler):
            def _relay(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                if proxy._sqs_down.is_set() and str(self.headers.get("x-amz-target") or "").startswith("AmazonSQS."):
                    with proxy._lock:
                        proxy.ledger.sqs_refused += 1
                    headers = {"x-amzn-query-error": "ServiceUnavailable;Receiver"}
                    self._answer(503, _SQS_UNAVAILABLE, headers, "application/x-amz-json-1.0")
                    return
                kind = _send_kind(self.command, self.path, body)
                if kind == "email" and proxy._draw(proxy.email_throttle_rate):
                    with proxy._lock:
                        proxy.ledger.throttled_emails += 1
                    message = b'{"message": "Maximum sending rate exceeded."}'
                    self._answer(429, message, {"x-amzn-ErrorType": "TooManyRequestsException"}, "application/json")
                    return
                if kind == "push" and proxy._draw(proxy.push_throttle_rate):
                    with proxy._lock:
                        proxy.ledger.throttled_pushes += 1
                    self._answer(429, _SNS_THROTTLED, {}, "text/xml")
                    return
                status, headers, answer = _forward(proxy._upstream, self.command, self.path, self.headers, body)
                if kind is not None and 200 <= status < 300:
                    proxy._record(kind, body)
                    if kind == "email" and proxy._after_email is not None:
                        proxy._after_email(body, answer)
                self._answer(status, answer, headers, None)

            def _answer(self, status: int, body: bytes, headers: dict[str, str], content_type: Optional[str]) -> None:
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    if content_type is not None:
                        self.send_header("content-type", content_type)
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    # The caller went away before the answer (a worker container cut off mid-send): what moto
                    # accepted stays counted, as the provider's would; nothing to report but that.
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _relay  # noqa: N815 - http.server's naming

        return Handler


class _Server(ThreadingHTTPServer):
    """A caller that went away mid-request (a worker container cut off, its kept-alive connections reset) is no
    error of the proxy's: nothing to print for it."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}


def _forward(
    upstream: tuple[str, int], method: str, path: str, headers: Any, body: bytes
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(*upstream, timeout=30)
    try:
        sent = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP | {"host"}}
        sent["Host"] = f"{upstream[0]}:{upstream[1]}"
        conn.request(method, path, body=body or None, headers=sent)
        resp = conn.getresponse()
        data = resp.read()
        kept = {k: v for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP}
        return resp.status, kept, data
    finally:
        conn.close()


def _send_kind(method: str, path: str, body: bytes) -> Optional[str]:
    if method == "POST" and urlparse(path).path == SES_SEND_PATH:
        return "email"
    if method == "POST" and b"Action=Publish" in body:
        return "push"
    return None


def _email_job(body: bytes) -> Optional[str]:
    try:
        tags = json.loads(body).get("EmailTags") or []
    except (ValueError, AttributeError):
        return None
    return next((str(t.get("Value")) for t in tags if isinstance(t, dict) and t.get("Name") == "job_id"), None)


def _push_job(body: bytes) -> tuple[Optional[str], str]:
    form = parse_qs(body.decode("utf-8", "replace"))
    endpoint = (form.get("TargetArn") or [""])[0]
    try:
        message = json.loads((form.get("Message") or ["{}"])[0])
        data = json.loads(message.get("GCM", "{}")).get("data", {})
    except (ValueError, AttributeError):
        return None, endpoint
    job = data.get("job_id") if isinstance(data, dict) else None
    return (str(job) if job else None), endpoint
