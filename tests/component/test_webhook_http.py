"""The status webhooks' HTTP sender (issue 24) against real servers over TCP: how each answer is classified, the
deadline (one for the whole attempt, however the receiver trickles), redirects never followed, and TLS to the
checked address with the URL's host name as SNI, Host and the name the certificate is verified against."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

import pytest
from notify.adapters.webhook_http import HttpWebhookSender
from notify.records import WebhookOutcome
from notify.webhooks import Target, body, check_url, headers

from tests.certificates import TestCa

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


@dataclass
class Seen:
    """What a test server received: (path, headers, body) per request, and the TLS server names asked for."""

    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    server_names: list[Optional[str]] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.requests]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: Seen

    def log_message(self, fmt: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        data = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.seen.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, data))
        path = self.path.split("?")[0]
        if path == "/slow":
            time.sleep(1.0)
        if path == "/trickle":  # a status line, then a header a byte at a time: never a whole answer
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            for _ in range(40):
                self.wfile.write(b"a")
                self.wfile.flush()
                time.sleep(0.05)
            return
        status = {"/gone": 410, "/fail": 500, "/busy": 429, "/moved": 302, "/teapot": 418}.get(path, 204)
        answer = b"" if status == 204 else b"broken\r\n\x00" + b"x" * 100_000
        self.send_response(status)
        if status == 302:
            self.send_header("location", "/target")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


class _Server6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _serve(seen: Seen, context: Optional[ssl.SSLContext] = None, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    handler = type("Handler", (_Handler,), {"seen": seen})
    server = (_Server6 if ":" in host else ThreadingHTTPServer)((host, 0), handler)
    server.daemon_threads = True  # a request still sleeping does not hold the test up
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def plain() -> Iterator[tuple[ThreadingHTTPServer, Seen]]:
    seen = Seen()
    server = _serve(seen)
    yield server, seen
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def sender() -> Iterator[HttpWebhookSender]:
    built = HttpWebhookSender.build(timeout_seconds=0.5)
    yield built
    built.close()


def _message() -> tuple[dict[str, str], bytes]:
    payload = body("notification.sent", AT, {"job_id": "j-1", "status": "SENT"})
    return headers([SECRET], "msg_1", AT, payload), payload


def _target(port: int, path: str) -> Target:
    return check_url(f"http://127.0.0.1:{port}{path}", allow_http_loopback=True)


def test_a_2xx_is_delivered_with_the_message_as_signed(
    plain: tuple[ThreadingHTTPServer, Seen], sender: HttpWebhookSender
) -> None:
    server, seen = plain
    port = server.server_address[1]
    sent_headers, payload = _message()
    attempt = sender.post(_target(port, "/hooks?team=a b"), "127.0.0.1", sent_headers, payload)
    assert (attempt.outcome, attempt.status_code, attempt.error) == (WebhookOutcome.DELIVERED, 204, None)
    assert 0 <= attempt.latency_ms < 500
    path, received, data = seen.requests[-1]
    assert (path, data) == ("/hooks?team=a%20b", payload)
    assert received["host"] == f"127.0.0.1:{port}"
    assert {k: received[k] for k in sent_headers} == sent_headers


@pytest.mark.parametrize(
    ("path", "outcome", "status", "error"),
    [
        ("/gone", WebhookOutcome.GONE, 410, "HTTP 410 Gone: the endpoint asks to be disabled"),
        ("/fail", WebhookOutcome.RETRY, 500, "HTTP 500: broken x"),
        ("/busy", WebhookOutcome.RETRY, 429, "HTTP 429: broken x"),
        ("/teapot", WebhookOutcome.RETRY, 418, "HTTP 418: broken x"),
    ],
)
def test_a_410_is_gone_and_any_other_failure_is_retried_with_a_short_error(
    plain: tuple[ThreadingHTTPServer, Seen],
    sender: HttpWebhookSender,
    path: str,
    outcome: WebhookOutcome,
    status: int,
    error: str,
) -> None:
    attempt = sender.post(_target(plain[0].server_address[1], path), "127.0.0.1", *_message())
    assert (attempt.outcome, attempt.status_code) == (outcome, status)
    assert attempt.error is not None and attempt.error.startswith(error) and len(attempt.error) <= 200


def test_a_redirect_is_retried_and_never_followed(
    plain: tuple[ThreadingHTTPServer, Seen], sender: HttpWebhookSender
) -> None:
    server, seen = plain
    attempt = sender.post(_target(server.server_address[1], "/moved"), "127.0.0.1", *_message())
    assert (attempt.outcome, attempt.status_code) == (WebhookOutcome.RETRY, 302)
    assert attempt.error == "HTTP 302: redirects are not followed"
    assert "/target" not in seen.paths()


@pytest.mark.parametrize("path", ["/slow", "/trickle"])
def test_the_whole_attempt_has_one_deadline(
    plain: tuple[ThreadingHTTPServer, Seen], sender: HttpWebhookSender, path: str
) -> None:
    """0.5 s here (10 s by default): a silent receiver and one answering a byte every 50 ms both run out of it."""
    started = time.monotonic()
    attempt = sender.post(_target(plain[0].server_address[1], path), "127.0.0.1", *_message())
    assert time.monotonic() - started < 0.9
    assert (attempt.outcome, attempt.status_code, attempt.error) == (
        WebhookOutcome.RETRY,
        None,
        "no answer within 0.5 s",
    )
    assert 450 <= attempt.latency_ms < 900


def test_a_refused_connection_is_retried(sender: HttpWebhookSender) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    attempt = sender.post(_target(port, "/"), "127.0.0.1", *_message())
    assert (attempt.outcome, attempt.status_code) == (WebhookOutcome.RETRY, None)
    assert attempt.error is not None and attempt.error.startswith("connection failed: ")


def test_ipv6_addresses_are_bracketed(sender: HttpWebhookSender) -> None:
    seen = Seen()
    try:
        server = _serve(seen, host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        port = server.server_address[1]
        target = check_url(f"http://[::1]:{port}/v6", allow_http_loopback=True)
        attempt = sender.post(target, "::1", *_message())
        assert attempt.outcome == WebhookOutcome.DELIVERED
        assert seen.requests[-1][1]["host"] == f"[::1]:{port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Seen, ssl.SSLContext]]:
    """A TLS receiver whose certificate names hooks.test only (not its address), and a client trusting its CA."""
    ca = TestCa()
    issued = ca.issue("hooks.test", server=True, names=["hooks.test"])
    directory: Path = tmp_path_factory.mktemp("hooks-tls")
    (directory / "cert.pem").write_text(issued.certificate)
    (directory / "key.pem").write_text(issued.private_key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    seen = Seen()
    context.sni_callback = lambda _socket, name, _context: seen.server_names.append(name)  # type: ignore[assignment,func-returns-value]
    server = _serve(seen, context)
    yield server.server_address[1], seen, ssl.create_default_context(cadata=ca.pem)
    server.shutdown()
    server.server_close()


def test_https_goes_to_the_checked_address_with_the_urls_host_for_sni_host_and_verification(
    tls: tuple[int, Seen, ssl.SSLContext],
) -> None:
    port, seen, trusted = tls
    sender = HttpWebhookSender.build(timeout_seconds=2, ssl_context=trusted)
    try:
        attempt = sender.post(check_url(f"https://hooks.test:{port}/in"), "127.0.0.1", *_message())
        assert (attempt.outcome, attempt.status_code) == (WebhookOutcome.DELIVERED, 204)
        assert seen.server_names[-1] == "hooks.test"
        assert seen.requests[-1][1]["host"] == f"hooks.test:{port}"

        # The same address under a name the certificate does not hold: refused by the client, nothing sent.
        wrong = sender.post(check_url(f"https://other.test:{port}/in"), "127.0.0.1", *_message())
        assert (wrong.outcome, wrong.status_code) == (WebhookOutcome.RETRY, None)
        assert wrong.error is not None and wrong.error.startswith("TLS failed: CERTIFICATE_VERIFY_FAILED")
        assert "other.test" in wrong.error
        assert len(seen.requests) == 1
    finally:
        sender.close()
