"""API Gateway HTTP API, locally: each request that matches a route becomes a payload v2.0 event for ApiFunction."""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

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


class Gateway:
    def __init__(
        self, function: Function, port: int, routes: Sequence[tuple[str, str]] = (), host: str = "127.0.0.1"
    ) -> None:
        self._function = function
        self._routes = [Route(method, path) for method, path in routes]  # none: a $default route takes all
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
        self._respond(request, result)

    def _too_large(self, request: BaseHTTPRequestHandler) -> None:
        """API Gateway refuses the request before the function sees it; answered in the API's error shape."""
        message = f"The request line and headers are larger than the {MAX_LINE_AND_HEADERS:,} bytes API Gateway accepts"
        body = {"error": {"code": "request_too_large", "message": message}}
        self._respond(
            request, {"statusCode": 413, "body": json.dumps(body), "headers": {"content-type": "application/json"}}
        )

    @staticmethod
    def _respond(request: BaseHTTPRequestHandler, result: Any) -> None:
        if not isinstance(result, dict) or "statusCode" not in result:
            result = {"statusCode": 200, "body": json.dumps(result), "headers": {"content-type": "application/json"}}
        raw = result.get("body") or ""
        payload = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
        request.send_response(int(result["statusCode"]))
        headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
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
