"""CORS as a browser meets it: pages on two other local origins call the API with X-API-Key from Debian's Chromium.

The stack allows one of them (``CorsAllowedOrigins``, passed as ``sam deploy`` would pass it); the local gateway
applies the CORS object of SAM's translation of the template, the one API Gateway imports. The allowed page reads
the answer; the other's preflight gets no ``access-control-allow-origin``, so the browser blocks the call.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from local.launch import KEY, StackProcess, start

from .browser import chromium, new_context

pytestmark = pytest.mark.e2e
PAGE = b"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Another origin</title></head></html>"
# Run in the page: a GET with X-API-Key, a header that makes the browser ask the API first (a preflight).
FETCH = """async ([api, key]) => {
  try {
    const response = await fetch(api + "/api/v1/event-types", {headers: {"X-API-Key": key}});
    const body = await response.json();
    return {status: response.status, types: body.items.map((t) => t.event_type)};
  } catch (error) {
    return {error: `${error.name}: ${error.message}`};
  }
}"""


class Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, fmt: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def origins() -> Iterator[tuple[str, str]]:
    """Two page servers on free ports: (allowed origin, other origin)."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), Page) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield tuple(f"http://127.0.0.1:{s.server_address[1]}" for s in servers)  # type: ignore[misc]
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def cors_stack(tmp_path_factory: pytest.TempPathFactory, origins: tuple[str, str]) -> Iterator[StackProcess]:
    allowed, _ = origins
    stack = start(tmp_path_factory.mktemp("cors"), timeout=240, PARAMETER_OVERRIDES=f"CorsAllowedOrigins={allowed}")
    yield stack
    stack.stop()


@pytest.mark.timeout(420)  # the stack's start (240 s), Chromium's (120 s), two fetches
def test_a_page_on_an_allowed_origin_calls_the_api_and_another_origin_is_blocked_by_the_browser(
    cors_stack: StackProcess, origins: tuple[str, str]
) -> None:
    allowed, other = origins
    # What the browser will be told: the allowed origin's preflight is answered with it, the other's with nothing.
    preflight = {"access-control-request-method": "GET", "access-control-request-headers": "x-api-key"}
    yes = httpx.options(f"{cors_stack.api}/api/v1/event-types", headers={"origin": allowed, **preflight})
    no = httpx.options(f"{cors_stack.api}/api/v1/event-types", headers={"origin": other, **preflight})
    assert yes.headers.get("access-control-allow-origin") == allowed
    assert "x-api-key" in yes.headers.get("access-control-allow-headers", "").split(",")
    assert "access-control-allow-origin" not in no.headers

    with chromium() as browser:
        results: dict[str, Any] = {}
        messages: dict[str, list[str]] = {}
        for origin in (allowed, other):
            context = new_context(browser)
            page = context.new_page()
            messages[origin] = []
            page.on("console", lambda message, into=messages[origin]: into.append(message.text))
            page.goto(f"{origin}/")
            results[origin] = page.evaluate(FETCH, [cors_stack.api, KEY])
            context.close()

    assert results[allowed]["status"] == 200, results[allowed]
    assert "user_registered" in results[allowed]["types"]
    assert results[other] == {"error": "TypeError: Failed to fetch"}, results[other]
    assert any("CORS policy" in text for text in messages[other]), messages[other]
    assert not any("CORS policy" in text for text in messages[allowed]), messages[allowed]
