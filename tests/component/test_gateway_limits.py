"""The local gateway keeps API Gateway's quota on the request line and headers (10,240 bytes, HTTP API)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from local.gateway import MAX_LINE_AND_HEADERS, Gateway
from local.invoke import Function


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Test handler: answers 200 with the query string it got."""
    return {"statusCode": 200, "body": json.dumps({"query": event.get("rawQueryString", "")})}


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    gw = Gateway(Function("Echo", "tests.component.test_gateway_limits.echo"), 0)
    gw.start()
    yield gw
    gw.stop()


def _get(gateway: Gateway, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=60)
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    status, body = resp.status, resp.read()
    conn.close()
    return status, json.loads(body)


@pytest.mark.parametrize("size", [MAX_LINE_AND_HEADERS, 70_000])  # over the quota; over http.server's 64 KiB
def test_a_request_line_over_the_quota_is_refused_before_the_function_in_the_api_error_shape(
    gateway: Gateway, size: int
) -> None:
    status, body = _get(gateway, "/x?q=" + "a" * size)
    assert status == 413
    assert body["error"]["code"] == "request_too_large" and "10,240" in body["error"]["message"]


def test_headers_count_toward_the_quota_and_a_request_within_it_reaches_the_function(gateway: Gateway) -> None:
    assert _get(gateway, "/x?q=1", {"x-big": "b" * (MAX_LINE_AND_HEADERS - 500)})[0] == 200
    status, body = _get(gateway, "/x?q=1", {"x-big": "b" * MAX_LINE_AND_HEADERS})
    assert status == 413
    assert _get(gateway, "/x?q=fine") == (200, {"query": "q=fine"})
