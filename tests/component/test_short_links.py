"""Short links through the real handlers against moto (issue 21, item 1): the worker renders a push and an in-app
notification with short links and stores each link once; ``GET /l/{code}`` on the API's handler redirects and counts
on the job (CLICKED once, then a counter); HEAD and scanners are redirected uncounted; ``/api/v1/links`` makes and
reads links under its scopes."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Optional

import boto3
import pytest
from notify.adapters.dynamodb.api_keys import DynamoApiKeyStore
from notify.catalog import EVENT_TYPES
from notify.clock import iso, utc_now
from notify.jobs import EventPlan, new_event_id
from notify.models import Channel, Contact, NotificationJob
from notify.services.access import hash_key

from local.events import http_api_event
from local.invoke import LambdaContext

from .helpers import call_api, job_status, kafka_batch, push_endpoints, worker_outcomes

pytestmark = pytest.mark.usefixtures("fresh_services")
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
SHORT = re.compile(r"(https?://[^\s/]+(?::\d+)?)/l/([A-Za-z0-9_-]{16})")


def _raw(method: str, path: str, *, agent: Optional[str] = CHROME, **headers: str) -> dict[str, Any]:
    """ApiFunction's answer as API Gateway gets it (status, headers, body as text)."""
    from api.app import lambda_handler

    sent = {**({"user-agent": agent} if agent is not None else {}), **headers}
    return dict(lambda_handler(http_api_event(method, path, "", sent, None), LambdaContext("ApiFunction")))


@contextmanager
def sns_publishes() -> Iterator[list[dict[str, Any]]]:
    """The Publish requests SNS clients built inside the block send (moto keeps them in its own process)."""
    sent: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(dict(params))

    session = boto3._get_default_session()
    unique = f"sns-publishes-{uuid.uuid4().hex}"
    session.events.register("before-parameter-build.sns.Publish", record, unique_id=unique)
    try:
        yield sent
    finally:
        session.events.unregister("before-parameter-build.sns.Publish", unique_id=unique)


def _job(channel: Channel, endpoints: list[str]) -> NotificationJob:
    """A new_episode job with a watch_url of its own, to an inline recipient (no Auth lookup)."""
    spec = EVENT_TYPES["new_episode"]
    now = datetime.now(UTC)
    payload = {**spec.sample_payload(), "watch_url": f"https://example.com/watch/{uuid.uuid4().hex}?t=1"}
    user = f"link-user-{uuid.uuid4().hex[:6]}"
    plan = EventPlan(new_event_id(), spec, payload, [user], [channel], spec.priority, now, now + timedelta(days=1))
    return plan.jobs()[0].model_copy(update={"contact": Contact(push_endpoints=endpoints)})


def _link_item(stack_env: dict[str, str], code: str) -> dict[str, Any]:
    item = boto3.client("dynamodb").get_item(TableName=stack_env["LINKS_TABLE"], Key={"code": {"S": code}})
    return {k: next(iter(v.values())) for k, v in item.get("Item", {}).items()}


def _key(*scopes: str) -> str:
    key = f"nk_test_{uuid.uuid4().hex}"
    DynamoApiKeyStore(boto3.client("dynamodb"), os.environ["API_KEYS_TABLE"]).put(
        hash_key(key), "links test", list(scopes), iso(utc_now())
    )
    return key


def test_a_push_carries_a_short_link_that_redirects_and_counts_clicked_once_then_a_counter(
    stack_env: dict[str, str],
) -> None:
    job = _job(Channel.PUSH, push_endpoints(1))
    with sns_publishes() as published:
        assert worker_outcomes(kafka_batch(job)) == {"sent": 1}
    (publish,) = published
    message = json.loads(publish["Message"])
    body = json.loads(message["GCM"])["notification"]["body"]
    found = SHORT.search(body)
    assert found is not None, body
    assert job.payload["watch_url"] not in message["default"]  # the link, not the URL, goes out
    code = found.group(2)
    item = _link_item(stack_env, code)
    assert (item["url"], item["job_id"], item["user_id"]) == (job.payload["watch_url"], job.job_id, job.user_id)
    assert item["expires_at"] == iso(job.created_at + timedelta(days=90))
    assert int(item["ttl"]) == int((job.created_at + timedelta(days=90)).timestamp())  # DynamoDB's TTL deletes it

    head = _raw("HEAD", f"/l/{code}")
    assert (head["statusCode"], head["headers"]["Location"]) == (302, job.payload["watch_url"])
    scanner = _raw("GET", f"/l/{code}", agent="Mozilla/5.0 (compatible; Googlebot/2.1)")
    assert scanner["statusCode"] == 302
    assert job_status(job.job_id)["clicks"] == 0  # HEAD and scanners are redirected, not counted

    for _ in range(3):
        answer = _raw("GET", f"/l/{code}")
        assert answer["statusCode"] == 302 and answer["headers"]["Location"] == job.payload["watch_url"]
        assert answer["headers"]["Referrer-Policy"] == "no-referrer"
        assert answer["headers"]["Cache-Control"] == "no-store"
    status = job_status(job.job_id)
    clicked = [h for h in status["history"] if (h.get("detail") or {}).get("feedback") == "CLICKED"]
    assert len(clicked) == 1 and status["clicks"] == 3, status
    assert (
        clicked[0]["status"] == "SENT"
        and clicked[0]["detail"]["link"]
        == "https://example.com/watch/" + (job.payload["watch_url"].rsplit("/", 1)[1].split("?")[0])
    )  # scheme, host and path: never the query
    assert status["history"][-1] == clicked[0]  # in its place in time, after SENT
    assert status["history"][-2]["detail"]["short_links"] == 1
    reader = _key("notifications:read")
    code_view, link = call_api("GET", f"/api/v1/links/{code}", key=reader)
    assert code_view == 200 and (link["clicks"], link["job_id"]) == (3, job.job_id), link


def test_an_in_app_notification_carries_a_short_link_in_the_inbox_item(stack_env: dict[str, str]) -> None:
    job = _job(Channel.WEBSOCKET, [])
    assert worker_outcomes(kafka_batch(job)) == {"sent": 1}
    status = job_status(job.job_id)
    item_id = status["history"][-1]["detail"]["inbox_item_id"]
    stored = boto3.client("dynamodb").get_item(
        TableName=stack_env["INBOX_TABLE"], Key={"user_id": {"S": job.user_id}, "item_id": {"S": item_id}}
    )["Item"]
    found = SHORT.search(stored["body"]["S"])
    assert found is not None, stored
    assert _link_item(stack_env, found.group(2))["job_id"] == job.job_id
    assert _raw("GET", f"/l/{found.group(2)}")["headers"]["Location"] == job.payload["watch_url"]


def test_a_redelivered_job_renders_the_same_code_and_stores_no_second_link(stack_env: dict[str, str]) -> None:
    job = _job(Channel.PUSH, push_endpoints(1))
    with sns_publishes() as published:
        assert worker_outcomes(kafka_batch(job)) == {"sent": 1}
        assert worker_outcomes(kafka_batch(job)) == {"duplicate": 1}
    (publish,) = published
    found = SHORT.search(json.loads(publish["Message"])["default"])
    assert found is not None
    scan = boto3.client("dynamodb").scan(
        TableName=stack_env["LINKS_TABLE"],
        FilterExpression="job_id = :j",
        ExpressionAttributeValues={":j": {"S": job.job_id}},
    )
    assert [i["code"]["S"] for i in scan["Items"]] == [found.group(2)]


def test_unknown_malformed_and_expired_codes_are_a_404_page_with_the_strict_policy(stack_env: dict[str, str]) -> None:
    expired = "E" + uuid.uuid4().hex[:15]
    boto3.client("dynamodb").put_item(
        TableName=stack_env["LINKS_TABLE"],
        Item={
            "code": {"S": expired},
            "url": {"S": "https://example.com/old"},
            "expires_at": {"S": iso(utc_now() - timedelta(seconds=1))},
            "ttl": {"N": str(int(utc_now().timestamp()) + 3600)},  # TTL deletes lazily: the expiry is checked
        },
    )
    for code in ("Z" + uuid.uuid4().hex[:15], "short", expired, "%2E%2E"):
        answer = _raw("GET", f"/l/{code}")
        assert answer["statusCode"] == 404, (code, answer)
        headers = answer["headers"]
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert (headers["Referrer-Policy"], headers["Cache-Control"]) == ("no-referrer", "no-store")
        assert headers["Content-Type"].startswith("text/html") and "does not work" in answer["body"]


def test_post_makes_a_link_for_a_callers_own_messages_that_counts_its_own_clicks() -> None:
    maker = _key("links:write")
    status, made = call_api("POST", "/api/v1/links", {"url": "https://example.com/sale?c=1", "ttl_days": 7}, key=maker)
    assert status == 201, made
    assert set(made) >= {"code", "short_url", "url", "expires_at"} and made["short_url"].endswith(f"/l/{made['code']}")
    expires = datetime.fromisoformat(made["expires_at"])
    assert timedelta(days=6, hours=23) < expires - utc_now() <= timedelta(days=7)
    for _ in range(2):
        assert _raw("GET", f"/l/{made['code']}")["headers"]["Location"] == "https://example.com/sale?c=1"
    assert _raw("HEAD", f"/l/{made['code']}")["statusCode"] == 302
    status, link = call_api("GET", f"/api/v1/links/{made['code']}", key=maker)
    assert status == 200 and link["clicks"] == 2 and link["first_click_at"], link
    # Another key that makes links does not see this one; a key that reads notifications does.
    assert call_api("GET", f"/api/v1/links/{made['code']}", key=_key("links:write"))[0] == 404
    assert call_api("GET", f"/api/v1/links/{made['code']}", key=_key("notifications:read"))[1]["clicks"] == 2
    assert call_api("GET", f"/api/v1/links/{made['code']}", key=_key("events:write"))[0] == 403
    assert call_api("POST", "/api/v1/links", {"url": "https://example.com/"}, key=_key("notifications:read"))[0] == 403


@pytest.mark.parametrize(
    "body",
    [
        {"url": "javascript:alert(1)"},
        {"url": "ftp://example.com/file"},
        {"url": "//example.com/"},
        {"url": "https://user:pw@example.com/"},
        {"url": "https://example.com/", "ttl_days": 0},
        {"url": "https://example.com/", "ttl_days": 366},
        {"url": "https://example.com/", "extra": 1},
        # 1,020 characters, 6,020 once percent-encoded for its Location header: this was a 500.
        {"url": "https://example.com/" + "é" * 1000},
    ],
)
def test_post_refuses_anything_but_an_http_or_https_url_with_a_422_on_the_field(body: dict[str, Any]) -> None:
    status, answer = call_api("POST", "/api/v1/links", body, key=_key("links:write"))
    assert status == 422, answer
    field = next(k for k in body if k != "url") if len(body) > 1 else "url"
    assert [f["loc"] for f in answer["error"]["fields"]] == [field], answer


def test_clicks_racing_on_one_job_count_each_and_leave_one_clicked_entry(stack_env: dict[str, str]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from notify.adapters.dynamodb.jobs import DynamoJobLedger

    job = _job(Channel.WEBSOCKET, [])
    assert worker_outcomes(kafka_batch(job)) == {"sent": 1}
    store = DynamoJobLedger(boto3.client("dynamodb"), stack_env["NOTIFICATIONS_TABLE"])
    code = "R" + uuid.uuid4().hex[:15]
    with ThreadPoolExecutor(8) as pool:
        done = list(pool.map(lambda n: store.record_click(job.job_id, code, iso(utc_now()), None), range(16)))
    # Exactly one write found no first click, and answers the job's identifiers for its notification.clicked.
    ids = {"job_id": job.job_id, "event_id": job.event_id, "event_type": job.event_type, "user_id": job.user_id}
    assert [d for d in done if d is not None] == [{**ids, "channel": "websocket"}]
    status = job_status(job.job_id)
    assert status["clicks"] == 16 and store.link_clicks(job.job_id, code) == 16
    assert [h["detail"]["feedback"] for h in status["history"] if h.get("detail", {}).get("feedback")] == ["CLICKED"]
    assert store.record_click(str(uuid.uuid4()), code, iso(utc_now()), None) is None  # no such job: nothing made
