"""What the operator console needs from ApiFunction, against moto server and Tansu: drafts previewed with their
errors' lines, a cron's next fire times, the overview, a job's message as rendered, the event types, and the
console's own files with their security headers."""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from api.routes.console import CSP, FRAME_CSP, FRAME_IMAGES_CSP
from notify.adapters.dynamodb.api_keys import DynamoApiKeyStore
from notify.adapters.dynamodb.segments import DynamoSegmentStore
from notify.clock import iso, utc_now
from notify.services.access import hash_key

from local.events import http_api_event
from local.invoke import LambdaContext

from .helpers import JobsTransport, call_api, emails_to

pytestmark = pytest.mark.usefixtures("stack_env")


def _directives(policy: str) -> dict[str, set[str]]:
    """A Content-Security-Policy's directives and the sources each allows."""
    parsed = [part.split() for part in policy.split(";") if part.strip()]
    return {name: set(sources) for name, *sources in parsed}


# What each policy of api.routes.console must allow, directive by directive, and nothing more (the tests compare the
# served headers with the module's constants, and these with the directives).
# The console's files: everything from this origin only, no inline script or style, framed by nobody.
CONSOLE_DIRECTIVES = {
    "default-src": {"'none'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "img-src": {"'self'", "data:"},
    "connect-src": {"'self'"},
    "frame-src": {"'self'"},
    "base-uri": {"'none'"},
    "form-action": {"'self'"},
    "frame-ancestors": {"'none'"},
}
# The email preview's frame: the email's inline styles, data: images only, no script but this origin's, nothing
# submitted, framed by the console only.
FRAME_DIRECTIVES = {
    "default-src": {"'none'"},
    "script-src": {"'self'"},
    "style-src": {"'unsafe-inline'"},
    "img-src": {"data:"},
    "base-uri": {"'none'"},
    "form-action": {"'none'"},
    "frame-ancestors": {"'self'"},
}
# ... and once the operator asks for remote images (frame-images.html): HTTPS images too, nothing else.
FRAME_IMAGES_DIRECTIVES = {**FRAME_DIRECTIVES, "img-src": {"data:", "https:"}}


def _key(*scopes: str) -> str:
    key = f"console-test-{uuid.uuid4().hex}"
    DynamoApiKeyStore(boto3.client("dynamodb"), os.environ["API_KEYS_TABLE"]).put(
        hash_key(key), "console test", list(scopes), iso(utc_now())
    )
    return key


def _raw(path: str, **headers: str) -> dict[str, Any]:
    """The handler's raw answer to a GET without an API key (the console's files are public)."""
    from api.app import lambda_handler

    event = http_api_event("GET", path, "", headers)
    return lambda_handler(event, LambdaContext("ApiFunction"))


def _fields(error: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["loc"]: f for f in error["error"]["fields"]}


# -- POST /api/v1/templates:preview ----------------------------------------------------------


def test_a_draft_renders_with_the_sample_payload_and_nothing_is_stored() -> None:
    locale = f"zz-{uuid.uuid4().hex[:6]}"
    draft = {
        "event_type": "new_film",
        "channel": "email",
        "locale": locale,
        "subject": "{{ title }} is out",
        "body_text": "Hi {{ user.first_name }}\n{{ watch_url }}",
        "body_html": "<p>{{ title }} & {{ user.last_name }}</p>",
        "user": {"last_name": "<b>Lovelace</b>"},
    }
    status, rendered = call_api("POST", "/api/v1/templates:preview", draft)
    assert status == 200, rendered
    assert rendered == {
        "template_id": f"new_film.email.{locale}",
        "template_version": 0,
        "locale": locale,
        "subject": "Dune is out",
        "text": "Hi Ada\nhttps://example.com/watch/f-1",
        "html": "<p>Dune & &lt;b&gt;Lovelace&lt;/b&gt;</p>",  # values escaped in HTML, the template's own text not
    }
    assert call_api("GET", f"/api/v1/templates/new_film.email.{locale}")[0] == 404


def test_a_draft_renders_with_the_payload_and_user_given() -> None:
    draft = {
        "event_type": "new_film",
        "channel": "push",
        "title": "{{ title }} for {{ user.first_name }}",
        "body": "{{ release_date }}",
        "payload": {"film_id": "f-9", "title": "Alien", "release_date": "1979-05-25", "watch_url": "https://e.x/w"},
        "user": {"first_name": "Ellen"},
    }
    status, rendered = call_api("POST", "/api/v1/templates:preview", draft)
    assert status == 200, rendered
    assert (rendered["title"], rendered["body"]) == ("Alien for Ellen", "1979-05-25")


def test_every_problem_of_a_draft_comes_back_at_once_on_its_part_and_line() -> None:
    draft = {
        "event_type": "new_film",
        "channel": "email",
        "body_text": "Hello\n{{ title }}\n{% if title %}unclosed",
        "body_html": "<p>\n\n{{ nope }}</p>",
        "payload": {"film_id": "f-1"},
    }
    status, error = call_api("POST", "/api/v1/templates:preview", draft)
    assert status == 422, error
    assert error["error"]["message"] == "The template is not valid"
    fields = _fields(error)
    assert fields["subject"]["type"] == "missing" and "line" not in fields["subject"]
    assert (fields["body_text"]["type"], fields["body_text"]["line"]) == ("template_syntax", 3)
    assert fields["body_text"]["msg"].startswith("line 3: ")
    assert (fields["body_html"]["type"], fields["body_html"]["line"]) == ("template_variable", 3)
    assert "'nope' is not provided by new_film" in fields["body_html"]["msg"]
    assert {"payload.title", "payload.release_date", "payload.watch_url"} <= set(fields)


def test_a_part_that_fails_while_rendering_names_its_line() -> None:
    draft = {"event_type": "new_film", "channel": "push", "title": "ok", "body": "one\ntwo\n{{ 1 / 0 }}"}
    status, error = call_api("POST", "/api/v1/templates:preview", draft)
    assert status == 422, error
    (field,) = error["error"]["fields"]
    assert (field["loc"], field["type"], field["line"]) == ("body", "template_render", 3)
    assert "ZeroDivisionError" in field["msg"]


def test_a_draft_of_an_unknown_event_type_or_a_part_of_another_channel_is_a_field_error() -> None:
    status, error = call_api("POST", "/api/v1/templates:preview", {"event_type": "nope", "channel": "push"})
    assert status == 422 and set(_fields(error)) == {"event_type"}
    draft = {"event_type": "new_film", "channel": "push", "title": "t", "body": "b", "subject": "s"}
    status, error = call_api("POST", "/api/v1/templates:preview", draft)
    assert status == 422 and _fields(error)["subject"]["type"] == "part_unused"


def test_saving_a_template_names_the_line_of_its_error_too() -> None:
    body = {"event_type": "new_film", "channel": "push", "title": "t", "body": "a\n{{ title }\nc"}
    status, error = call_api("POST", "/api/v1/templates", body)
    assert status == 422, error
    (field,) = error["error"]["fields"]
    assert (field["loc"], field["type"], field["line"]) == ("body", "template_syntax", 2)


def test_previewing_a_draft_needs_templates_read() -> None:
    draft = {"event_type": "new_film", "channel": "push", "title": "t", "body": "b"}
    assert call_api("POST", "/api/v1/templates:preview", draft, key=_key("campaigns:read"))[0] == 403
    assert call_api("POST", "/api/v1/templates:preview", draft, key=_key("templates:read"))[0] == 200
    assert call_api("POST", "/api/v1/templates:preview", draft, key="wrong")[0] == 401


# -- GET /api/v1/campaigns:schedule ----------------------------------------------------------


def test_the_next_five_fire_times_of_a_cron_in_its_time_zone() -> None:
    status, schedule = call_api("GET", "/api/v1/campaigns:schedule?cron=0+9+*+*+1&timezone=Europe/Berlin")
    assert status == 200, schedule
    assert (schedule["cron"], schedule["timezone"]) == ("0 9 * * 1", "Europe/Berlin")
    assert len(schedule["next_runs"]) == len(schedule["local_times"]) == 5
    local = [datetime.fromisoformat(t) for t in schedule["local_times"]]
    utc = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in schedule["next_runs"]]
    assert all((t.weekday(), t.hour, t.minute) == (0, 9, 0) for t in local)  # Mondays at 09:00 in Berlin
    assert utc == local and utc == sorted(utc) and utc[0] > datetime.now(UTC)
    gaps = {later - earlier for earlier, later in zip(utc, utc[1:], strict=False)}
    assert gaps <= {timedelta(days=7), timedelta(days=7, hours=1), timedelta(days=7, hours=-1)}  # DST moves UTC


def test_a_bad_cron_and_a_bad_zone_are_both_field_errors() -> None:
    status, error = call_api("GET", "/api/v1/campaigns:schedule?cron=61+*+*+*+*&timezone=Mars/Olympus")
    assert status == 422, error
    fields = _fields(error)
    assert set(fields) == {"cron", "timezone"}
    assert "not a valid cron expression" in fields["cron"]["msg"]
    assert "not an IANA time zone" in fields["timezone"]["msg"]
    status, error = call_api("GET", "/api/v1/campaigns:schedule?count=3")
    assert status == 422 and _fields(error)["query.cron"]["type"] == "missing"


def test_a_cron_that_never_fires_is_a_field_error_not_a_crash() -> None:
    status, error = call_api("GET", "/api/v1/campaigns:schedule?cron=0+0+31+2+*")
    assert status == 422, error
    assert "never fires" in _fields(error)["cron"]["msg"]
    campaign = {
        "name": "never",
        "cron": "0 0 31 2 *",
        "segment_id": "all",
        "event_type": "new_film",
        "payload": {"film_id": "f", "title": "t", "release_date": "2026-01-01", "watch_url": "https://e.x/w"},
    }
    status, error = call_api("POST", "/api/v1/campaigns", campaign)
    assert status == 422 and "never fires" in _fields(error)["cron"]["msg"]


# -- GET /api/v1/overview --------------------------------------------------------------------


def _campaign(cron: str) -> str:
    body = {
        "name": f"overview {uuid.uuid4().hex[:6]}",
        "cron": cron,
        "timezone": "UTC",
        "segment_id": "all",
        "event_type": "new_film",
        "payload": {"film_id": "f", "title": "t", "release_date": "2026-01-01", "watch_url": "https://e.x/w"},
    }
    status, created = call_api("POST", "/api/v1/campaigns", body)
    assert status == 201, created
    return str(created["campaign_id"])


@pytest.mark.usefixtures("purge_queues")
def test_the_overview_counts_both_queues_lists_due_campaigns_and_the_latest_failures(stack_env: dict) -> None:
    sqs = boto3.client("sqs")
    job_id = str(uuid.uuid4())
    letter = {
        "reason": "permanent_error",
        "error": "the address was rejected",
        "attempt": 2,
        "job": {
            "job_id": job_id,
            "event_id": str(uuid.uuid4()),
            "event_type": "new_film",
            "user_id": "u",
            "channel": "email",
        },
    }
    # Messages of earlier tests that purge_queues cannot receive (delayed ones, letters a listing hid) stay, and
    # may turn visible meanwhile: count from here, a letter in flight or visible alike.
    before = call_api("GET", "/api/v1/overview")[1]
    delayed_before = before["delay_queue"]["delayed"]
    letters_before = before["dlq"]["visible"] + before["dlq"]["in_flight"]
    sqs.send_message(QueueUrl=stack_env["DLQ_URL"], MessageBody=json.dumps(letter))
    sqs.send_message(QueueUrl=stack_env["DELAY_QUEUE_URL"], MessageBody="{}", DelaySeconds=900)
    soon, later = _campaign("* * * * *"), _campaign("0 0 1 1 *")

    status, overview = call_api("GET", "/api/v1/overview")
    assert status == 200, overview
    assert overview["problems"] == []
    assert overview["dlq"]["visible"] + overview["dlq"]["in_flight"] == letters_before + 1
    assert overview["dlq"]["delayed"] == 0
    assert overview["delay_queue"]["delayed"] == delayed_before + 1
    due = [c["campaign_id"] for c in overview["campaigns_due"]]
    assert soon in due and later not in due
    (failure,) = [f for f in overview["latest_failures"] if f["job_id"] == job_id]
    assert (failure["reason"], failure["error"]) == ("permanent_error", "the address was rejected")
    # A peek hides nothing: the letter can be listed (and redriven) at once.
    status, listed = call_api("GET", "/api/v1/dlq")
    assert [item["job_id"] for item in listed["items"] if item["job_id"] == job_id] == [job_id]
    for campaign in (soon, later):
        call_api("DELETE", f"/api/v1/campaigns/{campaign}")


def test_the_overview_needs_the_admin_scope() -> None:
    assert call_api("GET", "/api/v1/overview", key=_key("notifications:read", "campaigns:read"))[0] == 403
    status, error = call_api("GET", "/api/v1/overview", key=None)
    assert status == 401 and error["error"]["code"] == "unauthorized"


# -- GET /api/v1/notifications/{job_id}/rendered -------------------------------------------


@pytest.mark.usefixtures("purge_queues", "fresh_services")
def test_a_sent_email_renders_again_as_it_was_sent(transport: JobsTransport, moto_endpoint: str) -> None:
    locale = f"zz-{uuid.uuid4().hex[:6]}"
    template = {
        "event_type": "password_reset",
        "channel": "email",
        "locale": locale,
        "subject": "Reset in {{ expires_in_minutes }} min: {{ reset_url }}",
        "body_text": "{{ reset_url }}",
    }
    assert call_api("POST", "/api/v1/templates", template)[0] == 201
    user = "demo-user-77"
    reset_url = f"https://example.com/reset/{uuid.uuid4().hex}"
    event = {
        "event_type": "password_reset",
        "payload": {"reset_url": reset_url, "expires_in_minutes": 15},
        "recipients": {"user_ids": [user]},
        "locale": locale,
    }
    status, accepted = call_api("POST", "/api/v1/events", event)
    assert status == 202, accepted
    (job_id,) = accepted["job_ids"]
    status, error = call_api("GET", f"/api/v1/notifications/{job_id}/rendered")
    assert status == 404 and "has not been rendered" in error["error"]["message"]

    assert transport.deliver([job_id]) == {"sent": 1}
    assert call_api("GET", f"/api/v1/notifications/{job_id}")[1]["status"] == "SENT"

    # The message holds what the payload holds (here a password-reset link): a key that may read notifications
    # sees the timeline, but only an admin key the message.
    reader = _key("notifications:read")
    assert call_api("GET", f"/api/v1/notifications/{job_id}", key=reader)[0] == 200
    status, error = call_api("GET", f"/api/v1/notifications/{job_id}/rendered", key=reader)
    assert status == 403 and error["error"]["code"] == "forbidden" and "'admin'" in error["error"]["message"]
    assert reset_url not in json.dumps(error)
    status, rendered = call_api("GET", f"/api/v1/notifications/{job_id}/rendered", key=_key("admin"))
    assert status == 200, rendered
    assert (rendered["template_id"], rendered["template_version"]) == (f"password_reset.email.{locale}", 1)
    assert rendered["payload"] == {"reset_url": reset_url, "expires_in_minutes": 15}
    (sent,) = [m for m in emails_to(moto_endpoint, f"{user}@example.com") if reset_url in m["subject"]]
    assert rendered["rendered"]["subject"] == sent["subject"] == f"Reset in 15 min: {reset_url}"


def test_an_unknown_job_is_a_404() -> None:
    status, error = call_api("GET", f"/api/v1/notifications/{uuid.uuid4()}/rendered")
    assert status == 404 and error["error"]["code"] == "not_found"


# -- GET /api/v1/event-types ---------------------------------------------------------------


def test_the_event_types_list_their_fields_and_a_sample_that_previews() -> None:
    status, types = call_api("GET", "/api/v1/event-types")
    assert status == 200, types
    by_name = {t["event_type"]: t for t in types["items"]}
    film = by_name["new_film"]
    assert film["required"] == ["film_id", "title", "release_date", "watch_url"] and film["optional"] == []
    assert (film["category"], film["channels"]) == ("content", ["email", "push"])
    assert by_name["new_episode"]["optional"] == ["episode_title"]
    draft = {"event_type": "new_film", "channel": "push", "title": "{{ title }}", "body": "b"}
    payload = {**film["sample_payload"], "title": "Sample"}
    assert call_api("POST", "/api/v1/templates:preview", {**draft, "payload": payload})[1]["title"] == "Sample"


def test_the_event_types_are_the_catalog_any_valid_key_may_read_whatever_its_scopes() -> None:
    # The console's campaign editor lists them for a key that may write campaigns but not read templates.
    for scopes in (("campaigns:write",), ("events:write",), ()):
        status, types = call_api("GET", "/api/v1/event-types", key=_key(*scopes))
        assert status == 200 and any(t["event_type"] == "new_film" for t in types["items"]), scopes
    status, error = call_api("GET", "/api/v1/event-types", key=None)
    assert status == 401 and error["error"]["message"] == "missing X-API-Key header"
    status, error = call_api("GET", "/api/v1/event-types", key="not-a-key")
    assert status == 401 and error["error"]["message"] == "invalid API key"


# -- segment ids ---------------------------------------------------------------------------


@pytest.mark.parametrize("segment_id", [".", ".."])
def test_a_segment_id_no_url_can_address_is_refused_on_its_field(segment_id: str) -> None:
    # A URL parser reads `.` and `..` (even as %2E) as path steps: /segments/.. would be /api/v1/, never the segment.
    status, error = call_api("POST", "/api/v1/segments", {"segment_id": segment_id, "name": "dots"})
    assert status == 422, error
    (field,) = error["error"]["fields"]
    assert field["loc"] == "segment_id" and "." in field["msg"], field
    assert DynamoSegmentStore(boto3.client("dynamodb"), os.environ["CAMPAIGNS_TABLE"]).meta(segment_id) is None
    from api.routes.segments import NEW_SEGMENT_ID_PATTERN  # what the OpenAPI document says: the same

    assert not re.fullmatch(NEW_SEGMENT_ID_PATTERN, segment_id)
    assert all(re.fullmatch(NEW_SEGMENT_ID_PATTERN, ok) for ok in ("...", ".a", "a..", "vip:2026", "-"))
    dots = f"v...{uuid.uuid4().hex[:6]}"  # dots among other characters address a path segment as any id does
    assert call_api("POST", "/api/v1/segments", {"segment_id": dots, "name": "dots"})[0] == 201
    assert call_api("GET", f"/api/v1/segments/{dots}")[0] == 200


# -- the console's files -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "directives"),
    [(CSP, CONSOLE_DIRECTIVES), (FRAME_CSP, FRAME_DIRECTIVES), (FRAME_IMAGES_CSP, FRAME_IMAGES_DIRECTIVES)],
)
def test_each_console_policy_allows_what_its_files_need_and_nothing_more(
    policy: str, directives: dict[str, set[str]]
) -> None:
    assert _directives(policy) == directives
    assert len(policy.split(";")) == len(directives)  # no directive given twice


def test_the_console_page_is_served_with_a_strict_policy_and_no_key() -> None:
    answer = _raw("/admin/")
    assert answer["statusCode"] == 200
    headers = answer["headers"]
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Content-Security-Policy"] == CSP
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-cache" and headers["ETag"].startswith('"')
    body = answer["body"]
    assert '<label for="api-key">API key</label>' in body
    assert "<script" not in body.replace('<script type="module" src="app.js"></script>', "")  # no inline script
    assert " style=" not in body and "<style" not in body


def test_the_email_preview_frame_has_its_own_policy_styles_without_scripts_framed_by_the_console_only() -> None:
    answer = _raw("/admin/frame.html")
    assert answer["statusCode"] == 200
    headers = answer["headers"]
    assert headers["Content-Security-Policy"] == FRAME_CSP
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "no-referrer"
    assert "<script" not in answer["body"].replace('<script src="frame.js"></script>', "")  # no inline script
    assert _raw("/admin/frame.js")["headers"]["Content-Security-Policy"] == CSP
    # The same frame once the operator asks for remote images: HTTPS images too, nothing else.
    images = _raw("/admin/frame-images.html")
    assert images["statusCode"] == 200 and images["body"] == answer["body"]
    assert images["headers"]["Content-Security-Policy"] == FRAME_IMAGES_CSP


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("app.js", "text/javascript; charset=utf-8"), ("console.css", "text/css; charset=utf-8")],
)
def test_each_file_has_its_type_and_is_gzipped_for_a_browser(name: str, content_type: str) -> None:
    answer = _raw(f"/admin/{name}", **{"accept-encoding": "gzip, deflate"})
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"] == content_type
    assert answer["headers"]["Content-Security-Policy"] == CSP
    assert answer["headers"]["Content-Encoding"] == "gzip" and answer["isBase64Encoded"] is True
    assert gzip.decompress(base64.b64decode(answer["body"])).decode()


def test_an_unchanged_file_is_a_304() -> None:
    etag = _raw("/admin/app.js")["headers"]["ETag"]
    answer = _raw("/admin/app.js", **{"if-none-match": etag})
    assert answer["statusCode"] == 304 and not answer.get("body")
    assert _raw("/admin/app.js", **{"if-none-match": '"stale"'})["statusCode"] == 200


@pytest.mark.parametrize(
    "path",
    [
        "/admin/nope.js",
        "/admin/..%2Froutes%2Fconsole.py",
        "/admin/%2E%2E",
        "/admin/console.py",
        "/admin/.hidden",
        "/admin/..",
        "/admin/index.html%00.js",
    ],
)
def test_nothing_but_the_consoles_files_is_served(path: str) -> None:
    answer = _raw(path)
    assert answer["statusCode"] == 404, path
    assert "Not found" in answer["body"] and "def " not in answer["body"]


def test_admin_without_its_slash_redirects_to_the_page() -> None:
    answer = _raw("/admin")
    assert answer["statusCode"] == 308 and answer["headers"]["Location"] == "admin/"
