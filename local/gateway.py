"""API Gateway HTTP API, locally: each request that matches a route becomes a payload v2.0 event for ApiFunction.

As the HTTP API does, the gateway answers browsers' CORS preflight requests itself and adds the CORS headers to
the function's answers. Its routes and CORS configuration are those of SAM's translation of the template, the
OpenAPI body API Gateway imports (``local/http_api.py``). Beyond AWS, it serves the local stack's static demo
pages (``local/demo/``) at ``/demo/<file>``.
"""

from __future__ import annotations

import base64
import json
import logging
import mimetypes
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote

from local.events import http_api_event
from local.invoke import Function

log = logging.getLogger("local.gateway")


# HTTP API's quota: "Total combined size of request line and header values: 10240 bytes" (not adjustable).
MAX_LINE_AND_HEADERS = 10_240


class Route:
    """One route of an HTTP API, e.g. ``ANY /{proxy+}``, matched the way API Gateway matches it."""

    def __init__(self, method: str, path: str) -> None:
        self.method = method.upper()
        self.path = path
        self.key = f"{self.method} {path}"
        pattern = ""
        for segment in path.strip("/").split("/") if path != "/" else []:
            if segment.startswith("{") and segment.endswith("+}"):
                pattern += f"/(?P<{segment[1:-2]}>.+)"  # greedy: the rest of the path
            elif segment.startswith("{") and segment.endswith("}"):
                pattern += f"/(?P<{segment[1:-1]}>[^/]+)"
            else:
                pattern += "/" + re.escape(segment)
        self._regex = re.compile(f"^{pattern or '/'}$")
        self.greedy = path.endswith("+}")
        self.variables = path.count("{")

    def match(self, method: str, path: str) -> Optional[dict[str, str]]:
        if self.method not in ("ANY", method.upper()):
            return None
        found = self._regex.match(path)
        return None if found is None else found.groupdict()


def choose(routes: Sequence[Route], method: str, path: str) -> Optional[tuple[Route, dict[str, str]]]:
    """The most specific matching route: no variables before variables, greedy last, a method before ANY."""
    candidates = [(r, params) for r in routes if (params := r.match(method, path)) is not None]
    candidates.sort(key=lambda c: (c[0].greedy, c[0].variables, c[0].method == "ANY"))
    return candidates[0] if candidates else None


@dataclass(frozen=True)
class Cors:
    """An HTTP API's ``CorsConfiguration``, applied the way API Gateway applies it."""

    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: Optional[int] = None
    allow_credentials: bool = False

    @classmethod
    def from_template(cls, config: Any) -> Optional[Cors]:
        """The configuration of SAM's ``CorsConfiguration`` (already evaluated), or None without one.

        ``true`` allows every origin, method and header, as SAM documents it.
        """
        if config is True:
            return cls(("*",), ("*",), ("*",))
        if not isinstance(config, Mapping):
            return None

        def listed(key: str) -> tuple[str, ...]:
            value = config.get(key) or ()
            return tuple(str(v) for v in ([value] if isinstance(value, str) else value))

        max_age = config.get("MaxAge")
        return cls(
            listed("AllowOrigins"),
            tuple(m.upper() for m in listed("AllowMethods")),
            tuple(h.lower() for h in listed("AllowHeaders")),
            tuple(h.lower() for h in listed("ExposeHeaders")),
            int(max_age) if max_age is not None else None,
            bool(config.get("AllowCredentials", False)),
        )

    def allowed_origin(self, origin: Optional[str]) -> Optional[str]:
        """The ``access-control-allow-origin`` for a request from ``origin`` (None: not allowed, no header)."""
        if not origin:
            return None
        if "*" in self.allow_origins:
            return origin if self.allow_credentials else "*"
        return origin if origin.lower() in (o.lower() for o in self.allow_origins) else None

    def response_headers(self, origin: Optional[str]) -> dict[str, str]:
        """The headers added to an answer to a request from ``origin``."""
        allowed = self.allowed_origin(origin)
        if allowed is None:
            return {}
        headers = {"access-control-allow-origin": allowed}
        if self.allow_credentials:
            headers["access-control-allow-credentials"] = "true"
        if self.expose_headers:
            headers["access-control-expose-headers"] = ",".join(self.expose_headers)
        if allowed != "*":
            headers["vary"] = "origin"
        return headers

    def preflight_headers(self, origin: Optional[str], requested_headers: str) -> dict[str, str]:
        """The headers of API Gateway's own answer to a preflight ``OPTIONS`` (none for an origin not allowed)."""
        allowed = self.allowed_origin(origin)
        if allowed is None:
            return {}
        requested = requested_headers.strip()
        headers = {
            "access-control-allow-origin": allowed,
            "access-control-allow-methods": ",".join(self.allow_methods),
            # "*" allows whatever the browser asks for.
            "access-control-allow-headers": requested
            if "*" in self.allow_headers and requested
            else ",".join(self.allow_headers),
        }
        if self.max_age is not None:
            headers["access-control-max-age"] = str(self.max_age)
        if self.allow_credentials:
            headers["access-control-allow-credentials"] = "true"
        if allowed != "*":
            headers["vary"] = "origin"
        return headers


STATIC_PREFIX = "/demo"
_TEXT_TYPES = ("text/", "application/javascript", "application/json", "image/svg+xml")


class Gateway:
    def __init__(
        self,
        function: Function,
        port: int,
        routes: Sequence[tuple[str, str]] = (),
        host: str = "127.0.0.1",
        *,
        cors: Optional[Cors] = None,
        static: Optional[Path] = None,
    ) -> None:
        self._function = function
        self._routes = [Route(method, path) for method, path in routes]  # none: a $default route takes all
        self._cors = cors
        self._static = static.resolve() if static is not None else None  # served at /demo/ (not an AWS feature)
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug(fmt, *args)

            def _any(self) -> None:
                gateway.handle(self)

            def send_error(self, code: int, message: Optional[str] = None, explain: Optional[str] = None) -> None:
                """http.server's own refusals of a request line or headers over 64 KiB: API Gateway's quota."""
                if code in (414, 431):
                    self.close_connection = True
                    gateway._too_large(self)
                    return
                super().send_error(code, message, explain)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _any

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, name="gateway", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        if len(request.requestline) + sum(len(k) + len(v) for k, v in request.headers.items()) > MAX_LINE_AND_HEADERS:
            self._too_large(request)
            return
        path, _, query = request.path.partition("?")
        length = int(request.headers.get("content-length") or 0)
        body = request.rfile.read(length) if length else None
        if self._static is not None and (path == STATIC_PREFIX or path.startswith(STATIC_PREFIX + "/")):
            self._serve_static(request, path.removeprefix(STATIC_PREFIX))
            return
        origin = request.headers.get("origin")
        if (
            self._cors is not None
            and request.command == "OPTIONS"
            and request.headers.get("access-control-request-method")
        ):
            # A browser's preflight: API Gateway answers it without invoking the function.
            preflight = self._cors.preflight_headers(origin, request.headers.get("access-control-request-headers", ""))
            self._respond(request, {"statusCode": 204, "headers": preflight})
            return
        route_key, parameters = "$default", None
        if self._routes:
            chosen = choose(self._routes, request.command, path)
            if chosen is None:  # API Gateway answers without invoking the function
                self._respond(request, {"statusCode": 404, "body": json.dumps({"message": "Not Found"})})
                return
            route_key, parameters = chosen[0].key, chosen[1] or None
        client = request.client_address[0]
        headers: dict[str, str] = {}
        for name, value in request.headers.items():  # API Gateway joins repeated headers
            name = name.lower()
            separator = "; " if name == "cookie" else ","
            headers[name] = f"{headers[name]}{separator}{value}" if name in headers else value
        headers.setdefault("x-forwarded-for", client)
        headers.setdefault("x-forwarded-proto", "http")
        headers.setdefault("x-forwarded-port", str(self.port))
        event = http_api_event(request.command, path, query, headers, body, client, route_key, parameters)
        try:
            result = self._function.invoke(event)
        except Exception:  # the handler crashed: API Gateway answers 500
            log.exception("ApiFunction raised")
            result = {"statusCode": 500, "body": json.dumps({"message": "Internal Server Error"})}
        self._respond(request, result, self._cors.response_headers(origin) if self._cors else None)

    def _serve_static(self, request: BaseHTTPRequestHandler, name: str) -> None:
        """A file of the demo directory: GET (and HEAD) only, nothing outside it, no hidden files."""
        assert self._static is not None
        if name == "":  # /demo -> /demo/, so that the page's relative links resolve
            self._respond(request, {"statusCode": 301, "headers": {"location": STATIC_PREFIX + "/"}})
            return
        if request.command not in ("GET", "HEAD"):
            self._respond(request, _plain(405, "Method Not Allowed", {"allow": "GET, HEAD"}))
            return
        parts = [p for p in unquote(name).split("/") if p]
        target = self._static.joinpath(*parts) if parts else self._static
        if target.is_dir():
            target = target / "index.html"
        hidden = any(p.startswith(".") or "\\" in p for p in parts)
        if hidden or not target.resolve().is_relative_to(self._static) or not target.is_file():
            self._respond(request, _plain(404, "Not Found"))
            return
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if kind.startswith(_TEXT_TYPES):
            kind += "; charset=utf-8"
        data = target.read_bytes()
        headers = {"content-type": kind, "cache-control": "no-cache", "x-content-type-options": "nosniff"}
        self._respond(
            request,
            {"statusCode": 200, "headers": headers, "body": base64.b64encode(data).decode(), "isBase64Encoded": True},
        )

    def _too_large(self, request: BaseHTTPRequestHandler) -> None:
        """API Gateway refuses the request before the function sees it; answered in the API's error shape."""
        message = f"The request line and headers are larger than the {MAX_LINE_AND_HEADERS:,} bytes API Gateway accepts"
        body = {"error": {"code": "request_too_large", "message": message}}
        self._respond(
            request, {"statusCode": 413, "body": json.dumps(body), "headers": {"content-type": "application/json"}}
        )

    @staticmethod
    def _respond(request: BaseHTTPRequestHandler, result: Any, cors: Optional[dict[str, str]] = None) -> None:
        if not isinstance(result, dict) or "statusCode" not in result:
            result = {"statusCode": 200, "body": json.dumps(result), "headers": {"content-type": "application/json"}}
        raw = result.get("body") or ""
        payload = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
        request.send_response(int(result["statusCode"]))
        headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        if cors is not None:  # API Gateway's CORS headers replace any the function set
            headers = {k: v for k, v in headers.items() if not k.startswith("access-control-")} | cors
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers.pop(name.lower(), None)
            for value in values:
                request.send_header(name, str(value))
        for name, value in headers.items():
            if name != "content-length":
                request.send_header(name, value)
        for cookie in result.get("cookies") or []:
            request.send_header("set-cookie", cookie)
        request.send_header("content-length", str(len(payload)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(payload)


def _plain(status: int, text: str, headers: Optional[dict[str, str]] = None) -> dict[str, Any]:
    return {"statusCode": status, "body": text + "\n", "headers": {"content-type": "text/plain", **(headers or {})}}
