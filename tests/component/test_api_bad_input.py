"""Hostile requests through ApiFunction's real handler, shaped as API Gateway HTTP API (payload v2.0) delivers them.

API Gateway passes any bytes on, base64-encoded when they are not text. Each must be answered with a
4xx in the one error shape; only a bug in the code may be a 500, and that one is logged.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Optional

import pytest

from local.events import http_api_event
from local.invoke import LambdaContext

from .helpers import KEY

pytestmark = pytest.mark.usefixtures("local_stack")

EVENT = {
    "event_type": "user_registered",
    "payload": {"confirmation_url": "https://example.com/confirm/abc"},
    "recipients": {"user_ids": ["demo-user-1"]},
}
MULTIPART = b'--XyZ\r\nContent-Disposition: form-data; name="event_type"\r\n\r\nuser_registered\r\n--XyZ--\r\n'


def send(
    method: str,
    path: str,
    body: Optional[bytes] = None,
    content_type: Optional[str] = "application/json",
    as_base64: bool = False,
) -> tuple[int, dict[str, str], Any]:
    """The handler's answer to one request: (status, headers, parsed body)."""
    from api.app import lambda_handler

    headers = {"x-api-key": KEY, **({"content-type": content_type} if content_type else {})}
    event = http_api_event(method, path, "", headers, body)
    if as_base64 and body is not None:  # how API Gateway delivers a body it does not treat as text
        event.update(body=base64.b64encode(body).decode(), isBase64Encoded=True)
    result = lambda_handler(event, LambdaContext("ApiFunction"))
    text = result.get("body")
    return int(result["statusCode"]), dict(result.get("headers") or {}), json.loads(text) if text else None


def assert_error(answer: tuple[int, dict[str, str], Any], status: int, code: str) -> dict[str, Any]:
    got_status, _, body = answer
    assert (got_status, body["error"]["code"]) == (status, code), body
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]) <= {"code", "message", "fields"}
    assert body["error"]["message"]
    return dict(body["error"])


def nested(depth: int) -> bytes:
    return json.dumps(
        {**EVENT, "payload": {"confirmation_url": "https://x.io", "deep": json.loads("[" * depth + "]" * depth)}}
    ).encode()


@pytest.mark.parametrize(
    ("body", "content_type", "as_base64", "status", "code"),
    [
        pytest.param(
            b'{"event_type": "\xff\xfe"}', "application/json", True, 400, "invalid_body", id="non-utf8-base64"
        ),
        pytest.param("héllo".encode("latin-1"), "application/json", True, 400, "invalid_body", id="latin1-base64"),
        pytest.param(b"[" * 5000 + b"]" * 5000, "application/json", False, 400, "invalid_json", id="5000-deep-array"),
        pytest.param(
            b'{"a":' * 5000 + b"1" + b"}" * 5000, "application/json", False, 400, "invalid_json", id="5000-deep-object"
        ),
        pytest.param(nested(40), "application/json", False, 400, "invalid_json", id="40-deep-payload"),
        pytest.param(b"[" * 5000 + b"]" * 5000, "application/json", True, 400, "invalid_json", id="5000-deep-base64"),
        pytest.param(b"{not json", "application/json", False, 400, "invalid_json", id="malformed"),
        pytest.param(b"", "application/json", False, 422, "validation_error", id="empty"),
        pytest.param(b"[1, 2]", "application/json", False, 422, "validation_error", id="json-array"),
        # The Event Handler validated a list's first element against the route's model: this was a 202.
        pytest.param(
            json.dumps([EVENT]).encode(), "application/json", False, 422, "validation_error", id="event-in-an-array"
        ),
        pytest.param(b'"an event"', "application/json", False, 422, "validation_error", id="json-string"),
        pytest.param(b"null", "application/json", False, 422, "validation_error", id="json-null"),
        pytest.param(
            MULTIPART, "multipart/form-data; boundary=XyZ", True, 415, "unsupported_media_type", id="multipart"
        ),
        pytest.param(MULTIPART, "multipart/form-data", True, 415, "unsupported_media_type", id="multipart-no-boundary"),
        pytest.param(
            b"event_type=x", "application/x-www-form-urlencoded", False, 415, "unsupported_media_type", id="form"
        ),
        pytest.param(b"hello", "text/plain", False, 415, "unsupported_media_type", id="text-plain"),
        pytest.param(
            b"\x00\x01\xff", "application/octet-stream", True, 415, "unsupported_media_type", id="octet-stream"
        ),
        pytest.param(json.dumps(EVENT).encode(), "text/plain", False, 415, "unsupported_media_type", id="json-as-text"),
    ],
)
def test_a_body_the_api_cannot_read_is_a_4xx_with_the_error_shape(
    body: bytes, content_type: str, as_base64: bool, status: int, code: str
) -> None:
    assert_error(send("POST", "/api/v1/events", body, content_type, as_base64), status, code)


def test_a_body_marked_base64_that_is_not_is_400() -> None:
    from api.app import lambda_handler

    event = http_api_event("POST", "/api/v1/events", "", {"x-api-key": KEY, "content-type": "application/json"})
    event.update(body="@@not base64@@", isBase64Encoded=True)
    result = lambda_handler(event, LambdaContext("ApiFunction"))
    assert_error((int(result["statusCode"]), {}, json.loads(result["body"])), 400, "invalid_body")


def test_a_body_over_one_mib_is_413_whatever_its_type() -> None:
    big = json.dumps({**EVENT, "payload": {"confirmation_url": "https://x.io", "pad": "x" * 2_000_000}}).encode()
    assert len(big) > 2_000_000
    error = assert_error(send("POST", "/api/v1/events", big), 413, "payload_too_large")
    assert "1048576" in error["message"]
    assert_error(send("POST", "/api/v1/events", big, as_base64=True), 413, "payload_too_large")
    assert_error(send("POST", "/api/v1/events", b"x" * 2_000_000, "text/plain"), 413, "payload_too_large")
    assert_error(send("POST", "/api/v1/templates/new_film.email.en/preview", big), 413, "payload_too_large")


def test_a_form_body_that_would_validate_is_still_415() -> None:
    # Powertools parses forms itself; an empty form satisfies PreviewInput, yet the API only takes JSON.
    answer = send("POST", "/api/v1/templates/new_film.email.en/preview", b"", "application/x-www-form-urlencoded")
    assert answer[0] == 200  # no body at all: nothing to refuse
    answer = send("POST", "/api/v1/templates/new_film.email.en/preview", b"a=", "application/x-www-form-urlencoded")
    assert_error(answer, 415, "unsupported_media_type")


def test_a_wrongly_typed_body_names_the_problem() -> None:
    error = assert_error(send("POST", "/api/v1/events", b"[]"), 422, "validation_error")
    assert error["fields"][0]["loc"] == "body"
    error = assert_error(send("POST", "/api/v1/events:batch", b'{"events": "all"}'), 422, "validation_error")
    assert [f["loc"] for f in error["fields"]] == ["events"]


def test_json_is_accepted_without_content_type_with_a_charset_and_in_base64() -> None:
    status, _, accepted = send("POST", "/api/v1/events", json.dumps(EVENT).encode(), content_type=None)
    assert (status, accepted["status"]) == (202, "accepted")
    status, _, _ = send("POST", "/api/v1/events", json.dumps(EVENT).encode(), "application/json; charset=utf-8")
    assert status == 202
    status, _, _ = send("POST", "/api/v1/events", json.dumps(EVENT).encode(), as_base64=True)  # base64 of UTF-8 JSON
    assert status == 202


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/v1/events", "POST"),
        ("GET", "/api/v1/events:batch", "POST"),
        ("PATCH", "/api/v1/templates/new_film.email.en", "GET, PUT, DELETE"),
        ("OPTIONS", "/api/v1/templates", "GET, POST"),
        ("HEAD", "/api/v1/campaigns/some-id/pause", "POST"),
        ("POST", "/health", "GET"),
    ],
)
def test_an_unknown_method_on_a_known_path_is_405_with_allow(method: str, path: str, allow: str) -> None:
    answer = send(method, path, b"{}")
    assert_error(answer, 405, "method_not_allowed")
    assert answer[1]["Allow"] == allow


@pytest.mark.parametrize("path", ["/nope", "/api/v1", "/api/v1/events/a/b", "/api/v2/events"])
def test_an_unknown_path_is_404_in_the_error_shape(path: str) -> None:
    assert_error(send("GET", path), 404, "not_found")


def test_a_bug_is_a_logged_500_not_a_4xx(monkeypatch: pytest.MonkeyPatch) -> None:
    from api import errors
    from api.context import services

    logged: list[dict[str, Any]] = []
    monkeypatch.setattr(errors.logger, "exception", lambda msg, extra: logged.append({"message": msg, **extra}))
    queries = services().status

    def broken(*args: Any) -> Any:
        raise ValueError("a bug in the code, not in the request")

    monkeypatch.setattr(queries, "notification", broken)
    assert_error(send("GET", "/api/v1/notifications/some-job"), 500, "internal_error")
    monkeypatch.setattr(queries, "notification", lambda job_id: {"job_id": job_id})  # off its own schema
    assert_error(send("GET", "/api/v1/notifications/some-job"), 500, "internal_error")
    monkeypatch.setattr(queries, "user_notifications", lambda *a: 1 / 0)
    assert_error(send("GET", "/api/v1/users/u/notifications"), 500, "internal_error")
    assert [e["error_type"] for e in logged] == ["ValueError", "ValidationError", "ZeroDivisionError"]


def test_path_parameters_are_percent_decoded_before_validation() -> None:
    # API Gateway passes the path as sent; an encoded id names the same resource as the plain one.
    status, _, template = send("GET", "/api/v1/templates/%6Eew_film.email.en")
    assert (status, template["template_id"]) == (200, "new_film.email.en")
    status, _, page = send("GET", "/api/v1/users/" + "%C3%A9" * 64 + "/notifications")  # 64 characters, 384 bytes
    assert (status, page["items"]) == (200, [])
    error = assert_error(send("GET", "/api/v1/notifications/%FF"), 422, "validation_error")
    assert error["fields"][0]["loc"] == "path.job_id"


# --- sizes: nothing accepted can outgrow a DynamoDB item or a Kafka message ------------------------------------


def _event(**changes: Any) -> bytes:
    return json.dumps({**EVENT, **changes}).encode()


@pytest.mark.parametrize(
    ("user_id", "why"),
    [("demo\tuser", "control characters"), ("é" * 65, "128 bytes"), ("../x\n", "control characters")],
    ids=["tab", "130-bytes", "newline"],
)
def test_user_ids_are_refused_by_byte_size_and_control_characters(user_id: str, why: str) -> None:
    for path, body in (
        ("/api/v1/events", _event(recipients={"user_ids": [user_id]})),
        ("/api/v1/segments", json.dumps({"segment_id": "s-bad-id", "name": "n", "user_ids": [user_id]}).encode()),
    ):
        status, _, answer = send("POST", path, body)
        assert status == 422, (path, answer)
        assert why in json.dumps(answer), answer


def test_a_batch_may_not_make_more_than_ten_thousand_jobs() -> None:
    users = [f"u-{n}" for n in range(1000)]
    event = {**EVENT, "recipients": {"user_ids": users}}
    status, _, answer = send("POST", "/api/v1/events:batch", json.dumps({"events": [event] * 11}).encode())
    assert status == 422 and answer["error"]["fields"][0]["loc"] == "events", answer
    assert "11000 jobs" in answer["error"]["message"]


@pytest.mark.parametrize("field", ["send_after", "expires_at"])
def test_send_after_and_expires_at_lie_within_sixty_days(field: str) -> None:
    status, _, answer = send("POST", "/api/v1/events", _event(**{field: "2099-01-01T00:00:00Z"}))
    assert status == 422 and any(f["loc"] == field for f in answer["error"]["fields"]), answer
