"""CORS as a browser meets it: pages on two other local origins call the API with X-API-Key from Debian's Chromium.

The stack allows one of them (``CorsAllowedOrigins``, passed as ``sam deploy`` would pass it); the local gateway
applies the CORS object of SAM's translation of the template, the one API Gateway imports. The allowed page reads
the answer; the other's preflight gets no ``access-control-allow-origin``, so the browser blocks the call.

The shared stack keeps the local stack's own value, its own origins only: a page on another origin gets no token
from the dev token route, neither reading the answer nor firing the request blind, while the demo inbox page does.
"""

from __future__ import annotations

import json
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


# Run in a page on another origin: what a site a developer visits could try against the dev token route.
TOKEN_FETCHES = """async (url) => {
  const attempts = {
    simple: {method: "POST"},
    json: {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"},
  };
  const results = {};
  for (const [name, init] of Object.entries(attempts)) {
    try {
      const response = await fetch(url, init);
      results[name] = {status: response.status, body: await response.text()};
    } catch (error) {
      results[name] = {error: `${error.name}: ${error.message}`};
    }
  }
  return results;
}"""
# Blind: the page cannot read the answer, so only what the API answered the browser tells whether it minted a token.
NO_CORS_FETCH = """(url) => fetch(url, {method: "POST", mode: "no-cors"}).then(() => "sent", (e) => String(e))"""
FORM_POST = """(url) => {
  const form = document.createElement("form");
  form.method = "POST";
  form.action = url;
  document.body.append(form);
  form.submit();
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


@pytest.mark.timeout(420)  # Chromium's start (120 s), a handful of requests
def test_a_page_on_another_origin_gets_no_dev_token_while_the_demo_inbox_page_does(
    live_stack: StackProcess, origins: tuple[str, str]
) -> None:
    _, other = origins
    url = f"{live_stack.api}/dev/users/demo-user-9/tokens"
    with chromium() as browser:
        context = new_context(browser)
        page = context.new_page()
        page.goto(f"{other}/")
        read = page.evaluate(TOKEN_FETCHES, url)
        # A no-cors fetch and a form POST need no CORS: the browser sends them and shows the page nothing, but
        # Playwright sees what the API answered.
        with page.expect_response(lambda r: r.url == url) as blind:
            assert page.evaluate(NO_CORS_FETCH, url) == "sent"
        with page.expect_navigation() as navigation:
            page.evaluate(FORM_POST, url)
        # Chromium keeps no body of an opaque answer: its status, and the form's page, tell what the API did.
        answers = {"no-cors": blind.value.status, "form": navigation.value.status}
        form_page = navigation.value.text()

        demo = new_context(browser).new_page()
        demo.goto(f"{live_stack.api}/demo/inbox.html?ws={live_stack.ws}/")
        demo.get_by_label("User id").fill("demo-user-9")
        with demo.expect_response(lambda r: r.url == url) as own:
            demo.get_by_role("button", name="Connect").click()
        own_answer = (own.value.status, own.value.json())

    assert read == {
        "simple": {"error": "TypeError: Failed to fetch"},
        "json": {"error": "TypeError: Failed to fetch"},
    }, read
    assert answers == {"no-cors": 403, "form": 403}, (answers, form_page)
    assert "token" not in json.loads(form_page), form_page
    assert own_answer[0] == 201 and own_answer[1]["user_id"] == "demo-user-9", own_answer
