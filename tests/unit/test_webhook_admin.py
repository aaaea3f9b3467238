"""Managing status webhook endpoints (issue 24): WebhookAdmin over the in-memory store, and the secrets to sign with."""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Optional

import pytest
from notify.clock import iso
from notify.errors import Conflict, NotFound, StoreUnavailable, ValidationFailed
from notify.models import WebhookTask
from notify.records import WebhookDelivery, WebhookEndpoint, WebhookOutcome
from notify.services.webhooks import MAX_ENDPOINTS, WebhookAdmin
from notify.webhooks import TEST_TYPE, message_id, signing_secrets, subscribed, system_resolver

from .fakes import MemoryQueue, MemoryWebhookStore

START = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
ADDRESSES = {
    "hooks.example.com": ["93.184.215.14"],
    "other.example.com": ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "internal.example.com": ["93.184.215.14", "10.0.0.7"],
    "metadata.example.com": ["169.254.169.254"],
    "localhost": ["127.0.0.1"],
}
URL = "https://hooks.example.com/notify"
VIEW_KEYS = {"webhook_id", "url", "events", "description", "status", "disabled_reason", "created_at", "updated_at"}


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def resolver(host: str, port: int) -> list[str]:
    """The addresses above; an address written as one resolves to itself, as getaddrinfo answers."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    if host not in ADDRESSES:
        raise OSError("Name or service not known")
    return ADDRESSES[host]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> MemoryWebhookStore:
    return MemoryWebhookStore()


@pytest.fixture
def admin(store: MemoryWebhookStore, clock: Clock) -> WebhookAdmin:
    return WebhookAdmin(store, clock, allow_http_loopback=False, resolver=resolver)


def _refusal(call: Any) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as failed:
        call()
    return {e.loc: e.msg for e in failed.value.errors}


def _no_secret_in(view: Any, *secrets: str) -> None:
    text = json.dumps(view)
    assert "whsec_" not in text and not any(s in text for s in secrets)


def test_create_shows_the_secret_once_and_the_views_never(admin: WebhookAdmin, store: MemoryWebhookStore) -> None:
    created = admin.create(URL, ["notification.sent", "notification.delivered", "notification.sent"], "CRM")
    secret = created.pop("secret")
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{32}", secret)
    assert re.fullmatch(r"wh_[0-9a-f]{24}", created["webhook_id"])
    assert created == {
        "webhook_id": created["webhook_id"],
        "url": URL,
        "events": ["notification.delivered", "notification.sent"],
        "description": "CRM",
        "status": "enabled",
        "disabled_reason": None,
        "created_at": iso(START),
        "updated_at": iso(START),
    }
    assert store.endpoints[created["webhook_id"]].secrets == (secret,)
    assert admin.get(created["webhook_id"]) == created
    assert admin.list() == [created]
    _no_secret_in([admin.get(created["webhook_id"]), admin.list()], secret)


def test_an_account_has_at_most_max_endpoints(admin: WebhookAdmin) -> None:
    for n in range(MAX_ENDPOINTS):
        admin.create(f"https://hooks.example.com/{n}", ["*"])
    with pytest.raises(Conflict, match=f"at most {MAX_ENDPOINTS}"):
        admin.create("https://hooks.example.com/one-more", ["*"])
    admin.delete(admin.list()[0]["webhook_id"])
    assert admin.create("https://hooks.example.com/one-more", ["*"])["status"] == "enabled"


def test_endpoints_are_listed_oldest_first_and_deleted(admin: WebhookAdmin, clock: Clock) -> None:
    first = admin.create(URL, ["*"])
    clock.now += timedelta(seconds=1)
    second = admin.create("https://other.example.com/", ["inbox.read"])
    assert first["webhook_id"] != second["webhook_id"] and first["secret"] != second["secret"]
    assert [v["webhook_id"] for v in admin.list()] == [first["webhook_id"], second["webhook_id"]]
    assert admin.list()[0]["events"] == ["*"]
    admin.delete(first["webhook_id"])
    assert [v["webhook_id"] for v in admin.list()] == [second["webhook_id"]]
    for missing in (first["webhook_id"], "wh_000000000000000000000000", "not-an-id"):
        with pytest.raises(NotFound):
            admin.get(missing)
    with pytest.raises(NotFound):
        admin.delete(first["webhook_id"])
    with pytest.raises(NotFound):
        admin.update(first["webhook_id"], enabled=False)
    with pytest.raises(NotFound):
        admin.rotate(first["webhook_id"])


def test_update_changes_what_is_given_and_re_enabling_clears_why_it_was_disabled(
    admin: WebhookAdmin, store: MemoryWebhookStore, clock: Clock
) -> None:
    webhook_id = admin.create(URL, ["*"], "CRM")["webhook_id"]
    clock.now += timedelta(minutes=1)
    changed = admin.update(webhook_id, events=["notification.bounced"], description="")
    assert (changed["events"], changed["description"], changed["url"]) == (["notification.bounced"], None, URL)
    assert (changed["created_at"], changed["updated_at"]) == (iso(START), iso(clock.now))
    assert admin.update(webhook_id, enabled=False)["disabled_reason"] == "by_user"
    store.put(replace(store.endpoints[webhook_id], disabled_reason="failing", failing_since=iso(START)))
    assert admin.update(webhook_id, enabled=False)["disabled_reason"] == "failing"  # already disabled: kept
    enabled = admin.update(webhook_id, enabled=True)
    assert (enabled["status"], enabled["disabled_reason"]) == ("enabled", None)
    assert store.endpoints[webhook_id].failing_since is None
    # Enabling an enabled endpoint does not reset its failures (the 24 h before it is disabled); a new URL does.
    store.put(replace(store.endpoints[webhook_id], failing_since=iso(START)))
    admin.update(webhook_id, enabled=True)
    assert store.endpoints[webhook_id].failing_since == iso(START)
    admin.update(webhook_id, url="https://other.example.com/hooks")
    assert store.endpoints[webhook_id].failing_since is None
    assert admin.get(webhook_id)["url"] == "https://other.example.com/hooks"


def test_rotation_signs_with_both_secrets_for_24_hours(
    admin: WebhookAdmin, store: MemoryWebhookStore, clock: Clock
) -> None:
    created = admin.create(URL, ["*"])
    webhook_id, first = created["webhook_id"], created["secret"]
    assert signing_secrets(store.endpoints[webhook_id], clock.now) == [first]
    clock.now += timedelta(hours=1)
    rotated = admin.rotate(webhook_id)
    second = rotated.pop("secret")
    assert second != first and rotated == admin.get(webhook_id) and rotated["updated_at"] == iso(clock.now)
    _no_secret_in(admin.get(webhook_id), first, second)
    endpoint = store.endpoints[webhook_id]
    assert signing_secrets(endpoint, clock.now + timedelta(hours=23, minutes=59)) == [second, first]
    assert signing_secrets(endpoint, clock.now + timedelta(hours=24)) == [second]
    # A rotation during the overlap drops the oldest: two secrets sign at most, and the overlap starts again.
    clock.now += timedelta(hours=2)
    third = admin.rotate(webhook_id)["secret"]
    assert store.endpoints[webhook_id].secrets == (third, second)
    assert signing_secrets(store.endpoints[webhook_id], clock.now + timedelta(hours=23)) == [third, second]
    # Once the overlap has passed, the next write forgets the old secret.
    clock.now += timedelta(hours=25)
    admin.update(webhook_id, description="after")
    assert store.endpoints[webhook_id].secrets == (third,)
    assert store.endpoints[webhook_id].previous_until is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example.com/", "https://"),
        ("http://127.0.0.1:3003/", "https://"),  # plain http to the demo receiver: the local stack only
        ("https://localhost/", "not a public address"),
        ("https://internal.example.com/", "not a public address"),  # one private address is enough
        ("https://metadata.example.com/latest", "not a public address"),
        ("https://[::ffff:127.0.0.1]/", "not a public address"),
        ("https://nowhere.example.com/", "does not resolve"),
        ("https://user:pw@hooks.example.com/", "no user or password"),
        ("ftp://hooks.example.com/", "https://"),
    ],
)
def test_a_destination_the_service_may_not_call_is_refused_on_url(admin: WebhookAdmin, url: str, message: str) -> None:
    assert message in _refusal(lambda: admin.create(url, ["*"]))["url"]


def test_the_local_stack_may_register_its_loopback_receiver(store: MemoryWebhookStore, clock: Clock) -> None:
    local = WebhookAdmin(store, clock, allow_http_loopback=True, resolver=resolver)
    assert local.create("http://127.0.0.1:3003/hooks", ["*"])["url"] == "http://127.0.0.1:3003/hooks"
    assert "https://" in _refusal(lambda: local.create("http://hooks.example.com/", ["*"]))["url"]
    assert "not a public address" in _refusal(lambda: local.create("https://metadata.example.com/", ["*"]))["url"]


def test_events_and_description_are_checked_and_every_problem_reported_at_once(
    admin: WebhookAdmin, store: MemoryWebhookStore
) -> None:
    errors = _refusal(lambda: admin.create("http://hooks.example.com/", ["notification.sent", "sms.sent"], "x" * 201))
    assert set(errors) == {"url", "events", "description"}
    assert "unknown event types: sms.sent" in errors["events"]
    assert "at most 200" in errors["description"]
    assert "at least one" in _refusal(lambda: admin.create(URL, []))["events"]
    assert store.endpoints == {}
    webhook_id = admin.create(URL, ["*"], "x" * 200)["webhook_id"]
    before = store.endpoints[webhook_id]
    assert set(_refusal(lambda: admin.update(webhook_id, url="https://localhost/", events=["nope"]))) == {
        "url",
        "events",
    }
    assert store.endpoints[webhook_id] == before  # nothing of a refused change is stored


def test_deliveries_are_listed_newest_first_a_page_at_a_time(admin: WebhookAdmin, store: MemoryWebhookStore) -> None:
    webhook_id = admin.create(URL, ["*"])["webhook_id"]
    other = admin.create(URL, ["*"])["webhook_id"]
    for attempt in range(3):
        at = iso(START + timedelta(minutes=attempt))
        store.record(
            WebhookDelivery(
                webhook_id, at, "msg_1", "notification.sent", attempt, WebhookOutcome.RETRY, 503, 12, "HTTP 503"
            )
        )
    store.record(WebhookDelivery(other, iso(START), "msg_2", "inbox.read", 0, WebhookOutcome.DELIVERED, 204, 3))
    page = admin.deliveries(webhook_id, 2)
    assert [d["attempt"] for d in page["items"]] == [2, 1]
    assert page["items"][0] == {
        "at": iso(START + timedelta(minutes=2)),
        "message_id": "msg_1",
        "message_type": "notification.sent",
        "attempt": 2,
        "outcome": "retry",
        "status_code": 503,
        "latency_ms": 12,
        "error": "HTTP 503",
    }
    rest = admin.deliveries(webhook_id, 2, page["next_cursor"])
    assert ([d["attempt"] for d in rest["items"]], rest["next_cursor"]) == ([0], None)
    assert "cursor" in _refusal(lambda: admin.deliveries(other, 2, page["next_cursor"]))
    with pytest.raises(NotFound):
        admin.deliveries("wh_000000000000000000000000", 2)


def test_a_url_that_cannot_even_be_parsed_or_encoded_is_a_422_on_url_not_an_error(
    store: MemoryWebhookStore, clock: Clock
) -> None:
    # urlsplit raises ValueError for the first; IDNA encoding, inside getaddrinfo, UnicodeError for the others: no
    # lookup is made for any of them.
    admin = WebhookAdmin(store, clock, allow_http_loopback=False, resolver=system_resolver)
    for url in ("https://[::1/", "https://a..b/", f"https://{'a' * 64}.example.com/"):
        assert "valid host name" in _refusal(functools.partial(admin.create, url, ["*"]))["url"], url
    assert store.endpoints == {}


def test_a_test_message_is_queued_for_that_endpoint_alone_whatever_it_subscribes_to(
    store: MemoryWebhookStore, clock: Clock
) -> None:
    queue = MemoryQueue()
    admin = WebhookAdmin(store, clock, allow_http_loopback=False, resolver=resolver, delay_queue=queue)
    webhook_id = admin.create(URL, ["notification.bounced"])["webhook_id"]
    admin.create(URL, ["*"])
    first, second = admin.send_test(webhook_id), admin.send_test(webhook_id)
    assert first["webhook_id"] == webhook_id and first["message_type"] == TEST_TYPE
    assert first["message_id"] != second["message_id"]  # each test is a message of its own
    tasks = [task for task, _ in queue.sent if isinstance(task, WebhookTask)]
    assert [(t.webhook_id, t.message_type, t.data, t.created_at) for t in tasks] == [
        (webhook_id, TEST_TYPE, {}, START)
    ] * 2
    assert [t.message_id for t in tasks] == [first["message_id"], second["message_id"]]
    assert all(t.message_id == message_id(webhook_id, TEST_TYPE, t.subject) for t in tasks)
    assert subscribed(store.endpoints[webhook_id].events, TEST_TYPE)  # so the delivery does not drop it


def test_a_test_message_needs_an_enabled_endpoint_and_a_queue_that_takes_it(
    store: MemoryWebhookStore, clock: Clock
) -> None:
    queue = MemoryQueue()
    admin = WebhookAdmin(store, clock, allow_http_loopback=False, resolver=resolver, delay_queue=queue)
    webhook_id = admin.create(URL, ["*"])["webhook_id"]
    with pytest.raises(NotFound):
        admin.send_test("wh_000000000000000000000000")
    admin.update(webhook_id, enabled=False)
    with pytest.raises(Conflict, match="disabled"):  # the worker would drop it
        admin.send_test(webhook_id)
    admin.update(webhook_id, enabled=True)
    queue.fail = True
    with pytest.raises(StoreUnavailable):
        admin.send_test(webhook_id)
    assert queue.sent == []


class ReadBeforeTheOtherWrite(MemoryWebhookStore):
    """A store whose next read answers the endpoint as it was before another writer's change: two requests that
    read it at once."""

    def __init__(self) -> None:
        super().__init__()
        self.stale: Optional[WebhookEndpoint] = None

    def get(self, webhook_id: str) -> Optional[WebhookEndpoint]:
        stale, self.stale = self.stale, None
        return stale or super().get(webhook_id)


def test_a_change_over_an_endpoint_another_request_changed_meanwhile_is_a_conflict_and_writes_nothing(
    clock: Clock,
) -> None:
    store = ReadBeforeTheOtherWrite()
    admin = WebhookAdmin(store, clock, allow_http_loopback=False, resolver=resolver)
    hook = admin.create("https://hooks.example.com/a", ["*"])
    before = store.endpoints[hook["webhook_id"]]
    clock.now += timedelta(seconds=1)
    first = admin.rotate(hook["webhook_id"])  # the rotation that wins
    clock.now += timedelta(seconds=1)
    for late in (
        lambda: admin.rotate(hook["webhook_id"]),
        lambda: admin.update(hook["webhook_id"], description="read before the rotation"),
    ):
        store.stale = before  # read before the first rotation was written
        with pytest.raises(Conflict):
            late()
    after = store.endpoints[hook["webhook_id"]]
    assert after.secrets[0] == first["secret"] and after.description is None  # the winner's secret still signs
