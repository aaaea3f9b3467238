"""A demo Auth service implementing DESIGN.md's contract, with knobs to make it slow, failing or down.

Users ``demo-user-1`` … ``demo-user-N`` (email ``demo-user-K@example.com``), all in the segment ``all``.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import parse_qs, unquote, urlparse

from local.quiet_http import QuietHandler


@dataclass
class Faults:
    """Set these to simulate trouble: every request waits ``latency`` seconds, then answers ``status`` if set.

    For a flaky peer rather than a broken one: a share ``error_rate`` of requests answers 500 and a share
    ``slow_rate`` waits ``slow_seconds`` first, drawn from ``rng`` (seed it to repeat a run).
    """

    latency: float = 0.0
    status: Optional[int] = None
    error_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    injected_errors: int = 0
    injected_delays: int = 0
    requests: int = 0
    user_requests: dict[str, int] = field(default_factory=dict)
    # A peer that answers nonsense: the profile of these users is answered 200 with these exact bytes.
    raw_answers: dict[str, bytes] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)  # every request's path, as sent (still percent-encoded)


class AuthService:
    def __init__(
        self, port: int = 0, users: int = 100, token: str = "local-auth-token", host: str = "127.0.0.1"
    ) -> None:
        self.faults = Faults()
        self.token = token
        self.users: dict[str, dict[str, Any]] = {}
        self.segments: dict[str, list[str]] = {"all": []}
        for n in range(1, users + 1):
            self.add_user(
                f"demo-user-{n}", email=f"demo-user-{n}@example.com", first_name="Demo", last_name=f"User {n}"
            )
        # SES's mailbox simulator (docs/PREFERENCES.md): their mail bounces or draws a complaint.
        for kind in ("bounce", "complaint"):
            self.add_user(f"demo-{kind}", segments=(), email=f"{kind}@simulator.amazonses.com", first_name="Demo")
        self._host = host
        self._port = port
        self._server: Optional[ThreadingHTTPServer] = None
        self._lock = threading.Lock()
        self._draw = threading.Lock()  # the fault draws, from any request thread

    def add_user(self, user_id: str, segments: tuple[str, ...] = ("all",), **profile: Any) -> None:
        self.users[user_id] = {"id": user_id, "locale": "en", "timezone": "UTC", **profile}
        for segment in segments:
            self.segments.setdefault(segment, []).append(user_id)

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def start(self) -> None:
        """Serve (again) on the same port."""
        with self._lock:
            if self._server is not None:
                return
            self._server = _QuietServer((self._host, self._port), self._handler())
            self._server.daemon_threads = True
            self._port = int(self._server.server_address[1])
            threading.Thread(target=self._server.serve_forever, name="auth-service", daemon=True).start()

    def stop(self) -> None:
        """Go down: connections are refused until ``start``."""
        with self._lock:
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
                self._server = None

    def _answer(self, path: str, query: dict[str, list[str]], authorization: str) -> tuple[int, Any]:
        self.faults.requests += 1
        if self.faults.latency:
            time.sleep(self.faults.latency)
        if self.faults.status is not None:
            return self.faults.status, {"error": "injected fault"}
        if self.faults.slow_rate or self.faults.error_rate:
            with self._draw:
                slow = self.faults.rng.random() < self.faults.slow_rate
                error = self.faults.rng.random() < self.faults.error_rate
                self.faults.injected_delays += slow
                self.faults.injected_errors += error
            if slow:
                time.sleep(self.faults.slow_seconds)
            if error:
                return 500, {"error": "injected fault"}
        if self.token and authorization != f"Bearer {self.token}":
            return 401, {"error": "missing or invalid service token"}
        if path.startswith("/api/v1/users/") and "/" not in path.removeprefix("/api/v1/users/"):
            user_id = unquote(path.removeprefix("/api/v1/users/"))
            self.faults.user_requests[user_id] = self.faults.user_requests.get(user_id, 0) + 1
            if user_id in self.faults.raw_answers:
                return 200, self.faults.raw_answers[user_id]
            user = self.users.get(user_id)
            return (200, user) if user else (404, {"error": f"user {user_id} not found"})
        if path == "/api/v1/users":
            segment = query.get("segment", [""])[0]
            if segment not in self.segments:
                return 404, {"error": f"segment {segment} not found"}
            start = int(query.get("cursor", ["0"])[0] or 0)
            limit = max(1, min(1000, int(query.get("limit", ["100"])[0])))
            ids = self.segments[segment][start : start + limit]
            more = start + limit < len(self.segments[segment])
            return 200, {"items": [self.users[i] for i in ids], "next_cursor": str(start + limit) if more else None}
        return 404, {"error": "not found"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                url = urlparse(self.path)
                service.faults.paths.append(self.path)
                status, body = service._answer(url.path, parse_qs(url.query), self.headers.get("authorization", ""))
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up waiting (its read timeout, against a delay this service injected) is no news."""
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)
