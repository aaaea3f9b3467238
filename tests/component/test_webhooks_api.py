"""Status webhook endpoints through ApiFunction's real handler against moto (issue 24, docs/API.md#status-webhooks):
the secret shown once, changes, rotation, a test message on the delay queue, the deliveries a page at a time, refused
destinations, scopes; and an inbox read through the API emitting inbox.read.

Destinations are IP literals (a public one, https://93.184.215.14/), so no test needs DNS."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from notify.adapters.dynamodb.api_keys import DynamoApiKeyStore
from notify.adapters.dynamodb.inbox import DynamoInboxStore
from notify.adapters.dynamodb.webhooks import DynamoWebhookStore
from notify.clock import iso, utc_now
from notify.records import InboxItem, WebhookDelivery, WebhookOutcome
from notify.services.access import hash_key
from notify.webhooks import message_id

from .helpers import call_api

pytestmark = pytest.mark.usefixtures("local_stack", "fresh_services", "endpoints")
HOOKS = "/api/v1/webhooks"
URL = "https://93.184.215.14/notify"
VIEW_KEYS = {"webhook_id", "url", "events", "description", "status", "disabled_reason", "created_at", "updated_at"}


@pytest.fixture
def endpoints(stack_env: dict[str, str]) -> Iterator[DynamoWebhookStore]:
    """The store as the worker uses it; no endpoint outlives its test, so no other test's changes are emitted."""
    client = boto3.client("dynamodb")
    yield DynamoWebhookStore(client, stack_env["TEMPLATES_TABLE"], stack_env["NOTIFICATIONS_TABLE"], cache_seconds=0)
    left = client.query(
        TableName=stack_env["TEMPLATES_TABLE"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "WEBHOOK"}},
    )
    for item in left["Items"]:
        client.delete_item(TableName=stack_env["TEMPLATES_TABLE"], Key={"pk": item["pk"], "sk": item["sk"]})


def _key(*scopes: str) -> str:
    key = f"webhooks-{uuid.uuid4().hex}"
    DynamoApiKeyStore(boto3.client("dynamodb"), os.environ["API_KEYS_TABLE"]).put(
        hash_key(key), "t", list(scopes), "now"
    )
    return key


def _create(events: list[str], url: str = URL, **more: Any) -> dict[str, Any]:
    status, created = call_api("POST", HOOKS, {"url": url, "events": events, **more})
    assert status == 201, created
    return created


def _webhook_tasks(stack_env: dict[str, str]) -> list[dict[str, Any]]:
    """The webhook messages on the delay queue (read and deleted)."""
    sqs, url = boto3.client("sqs"), stack_env["DELAY_QUEUE_URL"]
    found: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            body = json.loads(message["Body"])
            if body.get("kind") == "webhook":
                found.append(body)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def test_an_endpoint_shows_its_secret_once_changes_rotates_and_is_deleted() -> None:
    created = _create(["notification.delivered", "notification.bounced"], description="CRM")
    secret = created.pop("secret")
    assert secret.startswith("whsec_") and set(created) == VIEW_KEYS
    assert (created["status"], created["events"]) == ("enabled", ["notification.bounced", "notification.delivered"])
    webhook_id = created["webhook_id"]
    path = f"{HOOKS}/{webhook_id}"
    assert call_api("GET", path) == (200, created)
    status, listed = call_api("GET", HOOKS)
    assert status == 200 and listed == {"items": [created]}

    status, disabled = call_api("PATCH", path, {"enabled": False})
    assert status == 200 and (disabled["status"], disabled["disabled_reason"]) == ("disabled", "by_user")
    status, enabled = call_api("PATCH", path, {"enabled": True, "events": ["*"], "description": ""})
    assert status == 200 and (enabled["status"], enabled["disabled_reason"]) == ("enabled", None)
    assert (enabled["events"], enabled["description"]) == (["*"], None)

    status, rotated = call_api("POST", f"{path}/rotate-secret")
    assert status == 200 and rotated["secret"].startswith("whsec_") and rotated["secret"] != secret
    for answer in (call_api("GET", path)[1], call_api("GET", HOOKS)[1], disabled, enabled):
        assert "whsec_" not in json.dumps(answer)

    assert call_api("DELETE", path) == (204, None)
    assert call_api("GET", path)[0] == 404
    assert call_api("GET", HOOKS)[1] == {"items": []}


@pytest.mark.usefixtures("purge_queues")
def test_a_test_message_goes_onto_the_delay_queue_for_that_endpoint_alone(stack_env: dict[str, str]) -> None:
    webhook_id = _create(["notification.bounced"])["webhook_id"]
    _create(["*"])  # another endpoint: not sent the test
    status, queued = call_api("POST", f"{HOOKS}/{webhook_id}/test")
    assert status == 202 and queued["webhook_id"] == webhook_id and queued["message_type"] == "webhook.test"
    (task,) = _webhook_tasks(stack_env)
    assert (task["webhook_id"], task["message_id"], task["message_type"], task["data"]) == (
        webhook_id,
        queued["message_id"],
        "webhook.test",
        {},
    )
    assert call_api("PATCH", f"{HOOKS}/{webhook_id}", {"enabled": False})[0] == 200
    status, refused = call_api("POST", f"{HOOKS}/{webhook_id}/test")
    assert status == 409 and "disabled" in refused["error"]["message"]
    assert _webhook_tasks(stack_env) == []


def test_the_deliveries_are_read_newest_first_a_page_at_a_time(endpoints: DynamoWebhookStore) -> None:
    webhook_id = _create(["*"])["webhook_id"]
    other = _create(["*"])["webhook_id"]
    start = utc_now()
    for attempt in range(3):
        at = iso(start + timedelta(seconds=attempt))
        endpoints.record(
            WebhookDelivery(
                webhook_id, at, "msg_a", "notification.sent", attempt, WebhookOutcome.RETRY, 503, 40, "HTTP 503"
            )
        )
    endpoints.record(WebhookDelivery(other, iso(start), "msg_b", "inbox.read", 0, WebhookOutcome.DELIVERED, 204, 9))
    status, page = call_api("GET", f"{HOOKS}/{webhook_id}/deliveries?limit=2")
    assert status == 200 and [d["attempt"] for d in page["items"]] == [2, 1] and page["next_cursor"]
    assert page["items"][0] == {
        "at": iso(start + timedelta(seconds=2)),
        "message_id": "msg_a",
        "message_type": "notification.sent",
        "attempt": 2,
        "outcome": "retry",
        "status_code": 503,
        "latency_ms": 40,
        "error": "HTTP 503",
    }
    status, rest = call_api("GET", f"{HOOKS}/{webhook_id}/deliveries?limit=2&cursor={page['next_cursor']}")
    assert status == 200 and ([d["attempt"] for d in rest["items"]], rest["next_cursor"]) == ([0], None)
    status, error = call_api("GET", f"{HOOKS}/{other}/deliveries?cursor={page['next_cursor']}")
    assert status == 422 and [f["loc"] for f in error["error"]["fields"]] == ["cursor"], error
    assert call_api("GET", f"{HOOKS}/{webhook_id}/deliveries?limit=0")[0] == 422


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"url": "http://169.254.169.254/latest/meta-data/", "events": ["*"]}, "url"),
        ({"url": "https://169.254.169.254/", "events": ["*"]}, "url"),
        ({"url": "https://10.0.0.1/", "events": ["*"]}, "url"),
        ({"url": "https://[fd00:ec2::254]/", "events": ["*"]}, "url"),  # the metadata service on IPv6
        ({"url": "https://[::1/", "events": ["*"]}, "url"),
        ({"url": URL, "events": ["notification.read"]}, "events"),
        ({"url": URL, "events": []}, "events"),
        ({"url": URL, "events": ["*"], "description": "x" * 201}, "description"),
        ({"url": URL, "events": ["*"], "secret": "whsec_mine"}, "secret"),
        ({"events": ["*"]}, "url"),
    ],
)
def test_a_destination_or_subscription_that_cannot_be_is_a_field_level_422(body: dict[str, Any], loc: str) -> None:
    status, error = call_api("POST", HOOKS, body)
    assert status == 422, error
    assert [f["loc"] for f in error["error"]["fields"]] == [loc], error
    assert call_api("GET", HOOKS)[1] == {"items": []}


def test_a_change_to_a_private_destination_is_refused_and_nothing_changes() -> None:
    created = _create(["*"])
    created.pop("secret")
    status, error = call_api("PATCH", f"{HOOKS}/{created['webhook_id']}", {"url": "https://10.0.0.1/", "events": []})
    assert status == 422 and {f["loc"] for f in error["error"]["fields"]} == {"url", "events"}
    assert call_api("GET", f"{HOOKS}/{created['webhook_id']}") == (200, created)


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/rotate-secret"),
        ("POST", "/test"),
        ("GET", "/deliveries"),
    ],
)
@pytest.mark.parametrize("webhook_id", ["wh_000000000000000000000000", "nope", "%2E%2E"])
def test_an_unknown_endpoint_is_a_404_in_the_error_shape(method: str, suffix: str, webhook_id: str) -> None:
    status, error = call_api(method, f"{HOOKS}/{webhook_id}{suffix}", {} if method == "PATCH" else None)
    assert status == 404 and error["error"]["code"] == "not_found", error


def test_endpoints_are_read_with_webhooks_read_and_changed_with_webhooks_write() -> None:
    reader, writer = _key("webhooks:read"), _key("webhooks:write")
    body = {"url": URL, "events": ["*"]}
    assert call_api("POST", HOOKS, body, key=reader)[0] == 403
    status, created = call_api("POST", HOOKS, body, key=writer)
    assert status == 201
    path = f"{HOOKS}/{created['webhook_id']}"
    for method, suffix in (("GET", ""), ("GET", "/deliveries")):
        assert call_api(method, f"{path}{suffix}", key=reader)[0] == 200
        assert call_api(method, f"{path}{suffix}", key=writer)[0] == 403
    for method, suffix in (("PATCH", ""), ("POST", "/rotate-secret"), ("POST", "/test"), ("DELETE", "")):
        assert call_api(method, f"{path}{suffix}", {} if method == "PATCH" else None, key=reader)[0] == 403
    assert call_api("GET", HOOKS, key=_key("templates:write"))[0] == 403
    assert call_api("GET", HOOKS, key=None)[0] == 401


@pytest.mark.usefixtures("purge_queues")
def test_an_inbox_item_read_through_the_api_emits_inbox_read_once(stack_env: dict[str, str]) -> None:
    webhook_id = _create(["inbox.read"])["webhook_id"]
    user, job_id = f"hooks-{uuid.uuid4().hex[:8]}", f"job-{uuid.uuid4().hex}"
    now = utc_now()
    item = InboxItem(
        f"{int(now.timestamp() * 1000):012x}{uuid.uuid4().hex[:20]}",
        user,
        job_id,
        "review_liked",
        iso(now),
        iso(now + timedelta(days=1)),
        title="Liked",
    )
    assert DynamoInboxStore(boto3.client("dynamodb"), os.environ["INBOX_TABLE"]).put(item)
    status, issued = call_api("POST", f"/api/v1/users/{user}/tokens")
    assert status == 201, issued
    bearer = f"Bearer {issued['token']}"
    for _ in range(2):  # the second read changes nothing and emits nothing
        assert call_api("POST", f"/api/v1/inbox/{item.id}/read", key=None, authorization=bearer)[0] == 200
    (task,) = _webhook_tasks(stack_env)
    assert (task["webhook_id"], task["message_type"], task["message_id"]) == (
        webhook_id,
        "inbox.read",
        message_id(webhook_id, "inbox.read", f"{job_id}#read"),
    )
    assert task["data"] == {"job_id": job_id, "event_type": "review_liked", "user_id": user, "channel": "websocket"}
