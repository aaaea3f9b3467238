"""Status webhook endpoints in TemplatesTable and their deliveries in NotificationsTable (DynamoWebhookStore), against
moto (issue 24)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from notify.adapters.dynamodb.cursors import CursorCodec
from notify.adapters.dynamodb.items import to_item
from notify.adapters.dynamodb.webhooks import DynamoWebhookStore
from notify.clock import iso
from notify.errors import Conflict, NotFound, ValidationFailed
from notify.records import WebhookDelivery, WebhookEndpoint, WebhookOutcome

pytestmark = pytest.mark.usefixtures("local_stack")
START = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SECRET = "whsec_" + "A" * 32
PREVIOUS = "whsec_" + "B" * 32
CURSORS = CursorCodec(lambda: "webhook test key" * 3)


def _endpoint(webhook_id: str, created: datetime = START, **changes: Any) -> WebhookEndpoint:
    fields: dict[str, Any] = {
        "webhook_id": webhook_id,
        "url": "https://hooks.example.com/notify",
        "events": ("notification.sent", "inbox.read"),
        "secrets": (SECRET,),
        "created_at": iso(created),
        "updated_at": iso(created),
    }
    return WebhookEndpoint(**{**fields, **changes})


def _store(stack_env: dict[str, str], cache_seconds: float = 0) -> DynamoWebhookStore:
    client = boto3.client("dynamodb")
    return DynamoWebhookStore(
        client, stack_env["TEMPLATES_TABLE"], stack_env["NOTIFICATIONS_TABLE"], CURSORS, cache_seconds
    )


@pytest.fixture
def store(stack_env: dict[str, str]) -> Iterator[DynamoWebhookStore]:
    """The API's view (no cache); no endpoint (nor a row written by hand) outlives its test."""
    yield _store(stack_env)
    client, table = boto3.client("dynamodb"), stack_env["TEMPLATES_TABLE"]
    left = client.query(
        TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "WEBHOOK"}}
    )
    for item in left["Items"]:
        client.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})


def test_an_endpoint_is_put_replaced_read_listed_oldest_first_and_deleted(
    store: DynamoWebhookStore, stack_env: dict[str, str]
) -> None:
    rotating = _endpoint(
        "wh_b",
        description="CRM",
        secrets=(SECRET, PREVIOUS),
        previous_until=iso(START + timedelta(hours=24)),
        enabled=False,
        disabled_reason="failing",
        failing_since=iso(START),
    )
    store.put(_endpoint("wh_b", url="https://old.example.com/"))
    store.put(rotating)  # replaces it
    store.put(_endpoint("wh_a", START + timedelta(seconds=1), events=("*",)))
    assert store.get("wh_b") == rotating
    assert store.get("wh_missing") is None
    assert [e.webhook_id for e in store.all()] == ["wh_b", "wh_a"]
    assert store.all()[1] == _endpoint("wh_a", START + timedelta(seconds=1), events=("*",))
    item = boto3.client("dynamodb").get_item(
        TableName=stack_env["TEMPLATES_TABLE"], Key={"pk": {"S": "WEBHOOK"}, "sk": {"S": "wh_b"}}
    )["Item"]
    assert (item["kind"], item["secrets"]) == ({"S": "webhook_endpoint"}, {"L": [{"S": SECRET}, {"S": PREVIOUS}]})
    assert store.delete("wh_b") is True
    assert store.delete("wh_b") is False
    assert [e.webhook_id for e in store.all()] == ["wh_a"]


def test_the_emitters_read_is_cached(store: DynamoWebhookStore, stack_env: dict[str, str]) -> None:
    worker = _store(stack_env, cache_seconds=30)
    assert worker.all() == []  # read (and cached) before any endpoint
    store.put(_endpoint("wh_a"))
    assert worker.all() == []  # within the cache period: the read before the put
    assert worker.get("wh_a") == _endpoint("wh_a")  # one endpoint is always read afresh
    assert [e.webhook_id for e in _store(stack_env, cache_seconds=30).all()] == ["wh_a"]


def test_a_row_this_version_cannot_read_is_skipped_and_its_secret_never_logged(
    store: DynamoWebhookStore, stack_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    store.put(_endpoint("wh_a"))
    bad = to_item({"pk": "WEBHOOK", "sk": "wh_bad", "url": 7, "events": ["*"], "secrets": [SECRET]})
    bad["created_at"] = bad["updated_at"] = {"S": iso(START)}
    boto3.client("dynamodb").put_item(TableName=stack_env["TEMPLATES_TABLE"], Item=bad)
    assert [e.webhook_id for e in store.all()] == ["wh_a"]
    assert store.get("wh_bad") is None
    assert "webhook endpoint 'wh_bad' cannot be read and is ignored: url is not a string" in caplog.text
    assert SECRET not in caplog.text


def test_deliveries_come_newest_first_in_signed_pages_of_one_endpoint_and_expire_after_30_days(
    store: DynamoWebhookStore, stack_env: dict[str, str]
) -> None:
    webhook_id, other = f"wh_{uuid.uuid4().hex[:24]}", f"wh_{uuid.uuid4().hex[:24]}"
    attempts = [
        WebhookDelivery(
            webhook_id,
            iso(START + timedelta(minutes=n)),
            "msg_1",
            "notification.sent",
            n,
            WebhookOutcome.RETRY if n < 2 else WebhookOutcome.DELIVERED,
            503 if n < 2 else 204,
            40 + n,
            "HTTP 503" if n < 2 else None,
        )
        for n in range(3)
    ]
    for delivery in attempts:
        store.record(delivery)
    store.record(WebhookDelivery(other, iso(START), "msg_2", "inbox.read", 0, WebhookOutcome.GONE, 410, 5, "HTTP 410"))
    page, cursor = store.deliveries(webhook_id, 2, None)
    assert page == [attempts[2], attempts[1]] and cursor is not None
    rest, end = store.deliveries(webhook_id, 2, cursor)
    assert rest == [attempts[0]]
    assert end is None or store.deliveries(webhook_id, 2, end) == ([], None)
    with pytest.raises(ValidationFailed) as refused:
        store.deliveries(other, 2, cursor)  # signed, but another endpoint's
    assert refused.value.errors[0].loc == "cursor"
    with pytest.raises(ValidationFailed):
        store.deliveries(webhook_id, 2, cursor[:-2] + "xx")
    item = boto3.client("dynamodb").get_item(
        TableName=stack_env["NOTIFICATIONS_TABLE"],
        Key=to_item({"pk": f"WHD#{webhook_id}", "sk": f"{attempts[0].at}#msg_1#0"}),
    )["Item"]
    assert item["ttl"] == {"N": str(int((START + timedelta(days=30)).timestamp()))}
    assert "error" in item and "status_code" in item


def test_health_writes_change_their_fields_alone_and_only_when_their_condition_holds(
    store: DynamoWebhookStore,
) -> None:
    store.put(_endpoint("wh_health"))
    store.mark_failing("wh_health", "2026-12-07T12:00:00.000Z")
    # The owner rotates the secret while deliveries fail: the worker's writes never put the old secret back.
    rotated = store.get("wh_health")
    assert rotated is not None
    store.put(replace(rotated, secrets=(PREVIOUS, SECRET), updated_at="2026-12-07T12:00:01.000Z"))
    store.mark_failing("wh_health", "2026-12-07T13:00:00.000Z")  # set already: kept as it was
    stored = store.get("wh_health")
    assert stored is not None and stored.failing_since == "2026-12-07T12:00:00.000Z"
    assert stored.secrets == (PREVIOUS, SECRET) and stored.updated_at == "2026-12-07T12:00:01.000Z"
    store.mark_recovered("wh_health")
    stored = store.get("wh_health")
    assert stored is not None and stored.failing_since is None and stored.secrets == (PREVIOUS, SECRET)

    store.disable("wh_health", "gone", "2026-12-07T14:00:00.000Z")
    store.disable("wh_health", "failing", "2026-12-07T15:00:00.000Z")  # disabled already: the first reason stays
    stored = store.get("wh_health")
    assert stored is not None and (stored.enabled, stored.disabled_reason) == (False, "gone")
    assert stored.updated_at == "2026-12-07T14:00:00.000Z" and stored.secrets == (PREVIOUS, SECRET)

    assert store.delete("wh_health")
    for write in (
        lambda: store.mark_failing("wh_health", "2026-12-07T16:00:00.000Z"),
        lambda: store.mark_recovered("wh_health"),
        lambda: store.disable("wh_health", "gone", "2026-12-07T16:00:00.000Z"),
    ):
        write()  # a deleted endpoint: nothing is made again
    assert store.get("wh_health") is None


def test_a_change_writes_its_fields_alone_over_the_endpoint_as_read(store: DynamoWebhookStore) -> None:
    store.put(_endpoint("wh_change", description="first", failing_since="2026-12-07T12:00:00.000Z"))
    read = store.get("wh_change")
    assert read is not None
    store.change(
        "wh_change",
        read.updated_at,
        {"secrets": (PREVIOUS, SECRET), "description": None, "updated_at": "2026-12-07T12:05:00.000Z"},
    )
    changed = store.get("wh_change")
    assert changed is not None
    assert (changed.secrets, changed.description, changed.updated_at) == (
        (PREVIOUS, SECRET),
        None,
        "2026-12-07T12:05:00.000Z",
    )
    assert changed.failing_since == "2026-12-07T12:00:00.000Z" and changed.url == read.url  # untouched
    with pytest.raises(Conflict):  # written over a read from before that change
        store.change("wh_change", read.updated_at, {"description": "late", "updated_at": "2026-12-07T12:06:00.000Z"})
    assert store.delete("wh_change")
    with pytest.raises(NotFound):
        store.change("wh_change", changed.updated_at, {"description": "gone"})
    assert store.get("wh_change") is None
