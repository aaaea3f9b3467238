"""Status webhooks' delivery service (issue 24) on in-memory fakes: retries with one webhook-id until a 2xx, a 410
and 24 h of failures disable the endpoint, a spent schedule dead-letters the task and its redrive delivers, the
signatures verify with the standardwebhooks library (two during a rotation), and a destination that now resolves
somewhere private is a failed attempt without a POST."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Optional

import pytest
from notify.clock import iso
from notify.models import Message, WebhookTask
from notify.ports import DeadLetterQueue, DelayQueue, WebhookSender, WebhookStore
from notify.records import DeadLetter, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookOutcome
from notify.retry import MAX_SQS_DELAY
from notify.services.webhook_delivery import (
    DEAD_LETTERED,
    DELIVERED,
    DISABLED,
    DROPPED,
    RETRYING,
    UNDELIVERABLE,
    WAITING,
    WebhookDeliveryService,
    replayed,
)
from notify.webhooks import Target, message_id, new_secret
from standardwebhooks import Webhook

START = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _fresh_start() -> None:
    """Each test starts at the time it runs: the library's verifier refuses timestamps 5 minutes from its own clock,
    and a time taken when the module was imported would be stale by the time a full suite reaches these tests."""
    global START
    START = datetime.now(UTC).replace(microsecond=0)


PUBLIC = "93.184.215.14"


@dataclass
class StubStore:
    endpoints: dict[str, WebhookEndpoint] = field(default_factory=dict)
    logged: list[WebhookDelivery] = field(default_factory=list)
    puts: int = 0

    def put(self, endpoint: WebhookEndpoint) -> None:
        self.puts += 1
        self.endpoints[endpoint.webhook_id] = endpoint

    def get(self, webhook_id: str) -> Optional[WebhookEndpoint]:
        return self.endpoints.get(webhook_id)

    def all(self) -> list[WebhookEndpoint]:
        return list(self.endpoints.values())

    def delete(self, webhook_id: str) -> bool:
        return self.endpoints.pop(webhook_id, None) is not None

    def change(self, webhook_id: str, expected_updated_at: str, fields: Mapping[str, Any]) -> None:
        self.put(replace(self.endpoints[webhook_id], **fields))

    # The health writes touch their fields alone (DynamoWebhookStore's conditional UpdateItems); each counts as a put.
    def mark_failing(self, webhook_id: str, since: str) -> None:
        endpoint = self.endpoints.get(webhook_id)
        if endpoint is not None and endpoint.failing_since is None:
            self.put(replace(endpoint, failing_since=since))

    def mark_recovered(self, webhook_id: str) -> None:
        endpoint = self.endpoints.get(webhook_id)
        if endpoint is not None:
            self.put(replace(endpoint, failing_since=None))

    def disable(self, webhook_id: str, reason: str, at: str) -> None:
        endpoint = self.endpoints.get(webhook_id)
        if endpoint is not None and endpoint.enabled:
            self.put(replace(endpoint, enabled=False, disabled_reason=reason, updated_at=at))

    def record(self, delivery: WebhookDelivery) -> None:
        self.logged.append(delivery)

    def deliveries(
        self, webhook_id: str, limit: int, cursor: Optional[str]
    ) -> tuple[list[WebhookDelivery], Optional[str]]:
        return [d for d in reversed(self.logged) if d.webhook_id == webhook_id][:limit], None


@dataclass
class Receiver:
    """Answers the scripted statuses in turn (then 200), keeping every request."""

    statuses: list[int] = field(default_factory=list)
    posts: list[tuple[Target, str, dict[str, str], bytes]] = field(default_factory=list)

    def post(self, target: Target, address: str, headers: dict[str, str], body: bytes) -> WebhookAttempt:
        self.posts.append((target, address, headers, body))
        status = self.statuses.pop(0) if self.statuses else 200
        if 200 <= status < 300:
            return WebhookAttempt(WebhookOutcome.DELIVERED, status, 12)
        outcome = WebhookOutcome.GONE if status == 410 else WebhookOutcome.RETRY
        return WebhookAttempt(outcome, status, 12, f"HTTP {status}")


@dataclass
class Queue:
    sent: list[tuple[Message, int]] = field(default_factory=list)

    def enqueue(self, jobs: Any, delay_seconds: int = 0) -> None:
        self.sent += [(job, delay_seconds) for job in jobs]


@dataclass
class Dlq:
    letters: list[DeadLetter] = field(default_factory=list)

    def send(self, letter: DeadLetter) -> None:
        self.letters.append(letter)


class World:
    def __init__(self, endpoint: WebhookEndpoint, statuses: tuple[int, ...] = (), resolves_to: str = PUBLIC) -> None:
        self.now = START
        self.addresses = [resolves_to]
        self.store = StubStore({endpoint.webhook_id: endpoint})
        self.receiver = Receiver(list(statuses))
        self.queue = Queue()
        self.dlq = Dlq()
        store: WebhookStore = self.store
        sender: WebhookSender = self.receiver
        queue: DelayQueue = self.queue
        dlq: DeadLetterQueue = self.dlq
        self.service = WebhookDeliveryService(
            store,
            sender,
            queue,
            dlq,
            lambda: self.now,
            resolver=lambda host, port: list(self.addresses),
            allow_loopback=False,
        )

    def next_task(self) -> WebhookTask:
        """The task queued last, the clock moved to when it is due."""
        task, _ = self.queue.sent[-1]
        assert isinstance(task, WebhookTask) and task.not_before is not None
        self.now = task.not_before
        return task

    @property
    def endpoint(self) -> WebhookEndpoint:
        return self.store.endpoints["wh_1"]


def _endpoint(**changes: Any) -> WebhookEndpoint:
    made = WebhookEndpoint(
        webhook_id="wh_1",
        url="https://hooks.example.com/in?team=1",
        events=("notification.sent", "notification.delivered"),
        secrets=(new_secret(),),
        created_at=iso(START - timedelta(days=3)),
        updated_at=iso(START - timedelta(days=3)),
    )
    return replace(made, **changes)


def _task(message_type: str = "notification.sent", **changes: Any) -> WebhookTask:
    fields: dict[str, Any] = {
        "webhook_id": "wh_1",
        "message_id": message_id("wh_1", message_type, "j-1:SENT"),
        "message_type": message_type,
        "subject": "j-1:SENT",
        "created_at": START - timedelta(seconds=2),
        "data": {"job_id": "j-1", "status": "SENT", "channel": "email", "payload": {"code": "123"}},
    }
    return WebhookTask(**{**fields, **changes})


def test_a_receiver_failing_three_times_then_answering_200_gets_four_posts_with_one_id_and_one_delivery() -> None:
    world = World(_endpoint(), statuses=(500, 503, 429))
    assert world.service.handle(_task()) == RETRYING
    assert world.endpoint.failing_since == iso(START)
    assert world.service.handle(world.next_task()) == RETRYING
    third = world.next_task()
    assert world.service.handle(third) == RETRYING
    posted, hop = world.queue.sent[-1]
    assert isinstance(posted, WebhookTask) and posted.not_before == world.now + timedelta(minutes=30)
    assert hop == MAX_SQS_DELAY  # 30 minutes wait in hops of 15: the first hop writes and posts nothing
    world.now += timedelta(seconds=MAX_SQS_DELAY)
    before = (len(world.receiver.posts), len(world.store.logged), world.store.puts)
    assert world.service.handle(posted) == WAITING
    assert (len(world.receiver.posts), len(world.store.logged), world.store.puts) == before
    assert world.service.handle(world.next_task()) == DELIVERED

    assert len(world.receiver.posts) == 4
    assert {headers["webhook-id"] for _, _, headers, _ in world.receiver.posts} == {_task().message_id}
    assert all(address == PUBLIC for _, address, _, _ in world.receiver.posts)
    assert [(d.attempt, d.outcome, d.status_code) for d in world.store.logged] == [
        (0, WebhookOutcome.RETRY, 500),
        (1, WebhookOutcome.RETRY, 503),
        (2, WebhookOutcome.RETRY, 429),
        (3, WebhookOutcome.DELIVERED, 200),
    ]
    assert [d.outcome for d in world.store.logged].count(WebhookOutcome.DELIVERED) == 1
    assert world.endpoint.failing_since is None and world.endpoint.enabled
    assert world.store.puts == 2  # failing_since set once, cleared once
    last, _ = world.queue.sent[-1]
    assert isinstance(last, WebhookTask) and last.first_attempt_at == START  # kept across retries


def test_a_410_disables_the_endpoint_as_gone_without_a_retry() -> None:
    world = World(_endpoint(), statuses=(410,))
    assert world.service.handle(_task()) == DISABLED
    assert not world.endpoint.enabled and world.endpoint.disabled_reason == "gone"
    assert world.store.puts == 1 and not world.queue.sent and not world.dlq.letters
    assert world.store.logged[0].outcome is WebhookOutcome.GONE
    assert world.service.handle(_task()) == DROPPED  # the endpoint's other messages are not tried
    assert len(world.receiver.posts) == 1


def test_an_endpoint_failing_for_24_hours_is_disabled_as_failing_and_its_messages_kept_in_the_dlq() -> None:
    world = World(_endpoint(failing_since=iso(START - timedelta(hours=24) + timedelta(seconds=3))), statuses=(500, 500))
    assert world.service.handle(_task()) == RETRYING
    assert world.endpoint.enabled and world.store.puts == 0
    assert world.service.handle(world.next_task()) == DISABLED
    assert not world.endpoint.enabled and world.endpoint.disabled_reason == "failing"
    assert len(world.queue.sent) == 1
    # The message that found it failing is kept, and so is another queued for it, when its turn comes: a redrive
    # after the receiver is mended and the endpoint enabled again delivers them.
    other = _task(message_id="msg_other", subject="j-2:SENT")
    assert world.service.handle(other) == DEAD_LETTERED
    first, second = world.dlq.letters
    assert first.reason == second.reason == UNDELIVERABLE
    assert "failing for 24 h" in first.error and "HTTP 500" in first.error and "disabled" in second.error
    assert second.job is not None and second.job["message_id"] == other.message_id
    assert len(world.receiver.posts) == 2  # the disabled endpoint was not called again


def test_messages_of_an_endpoint_its_owner_disabled_or_that_answered_410_are_dropped() -> None:
    for reason in ("by_user", "gone"):
        world = World(_endpoint(enabled=False, disabled_reason=reason))
        assert world.service.handle(_task()) == DROPPED
        assert not world.dlq.letters and not world.receiver.posts


def test_a_spent_schedule_dead_letters_the_task_and_its_redrive_delivers() -> None:
    first = START - timedelta(hours=17, minutes=35)
    world = World(_endpoint(failing_since=iso(first)), statuses=(502,))
    spent = _task(attempt=6, first_attempt_at=first)
    assert world.service.handle(spent) == DEAD_LETTERED
    assert not world.queue.sent
    [letter] = world.dlq.letters
    assert letter.reason == UNDELIVERABLE and letter.attempt == 6 and letter.source == "webhook"
    assert "7 attempts" in letter.error and "HTTP 502" in letter.error
    assert letter.job is not None and WebhookTask.model_validate(letter.job) == spent

    again = replayed(letter.job)
    assert (again.attempt, again.first_attempt_at, again.not_before) == (0, None, None)
    assert again.message_id == spent.message_id
    assert world.service.handle(again) == DELIVERED
    assert world.receiver.posts[-1][2]["webhook-id"] == spent.message_id
    assert world.endpoint.failing_since is None


def test_the_headers_verify_with_the_library_and_carry_two_signatures_during_a_rotation() -> None:
    new, old = new_secret(), new_secret()
    rotating = _endpoint(secrets=(new, old), previous_until=iso(START + timedelta(hours=1)))
    world = World(rotating, statuses=(500,))
    world.service.handle(_task())
    _, _, headers, payload = world.receiver.posts[0]
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        assert Webhook(secret).verify(payload, headers) == {
            "type": "notification.sent",
            "timestamp": iso(START - timedelta(seconds=2)),
            "data": {"job_id": "j-1", "channel": "email", "status": "SENT"},  # never the payload
        }
    retry = world.next_task()
    world.now = START + timedelta(hours=1)  # the rotation has ended: the old secret signs no more
    world.service.handle(retry)
    _, _, headers, payload = world.receiver.posts[1]
    assert len(headers["webhook-signature"].split(" ")) == 1
    assert headers["webhook-timestamp"] == str(int(world.now.timestamp()))


def test_a_name_now_resolving_to_a_private_address_is_a_failed_attempt_and_never_a_post() -> None:
    world = World(_endpoint(), resolves_to="169.254.169.254")
    assert world.service.handle(_task()) == RETRYING
    assert not world.receiver.posts
    [logged] = world.store.logged
    assert logged.outcome is WebhookOutcome.RETRY and logged.status_code is None
    assert logged.error is not None and "not a public address" in logged.error and "169.254" not in logged.error
    world.addresses = [PUBLIC]
    assert world.service.handle(world.next_task()) == DELIVERED
    assert world.receiver.posts[0][1] == PUBLIC


@pytest.mark.parametrize(
    ("endpoint", "message_type"),
    [
        (_endpoint(enabled=False, disabled_reason="by_user"), "notification.sent"),
        (_endpoint(events=("notification.delivered",)), "notification.sent"),
        (_endpoint(webhook_id="wh_other"), "notification.sent"),
    ],
    ids=["disabled", "unsubscribed", "deleted"],
)
def test_a_disabled_deleted_or_unsubscribed_endpoint_drops_the_message(
    endpoint: WebhookEndpoint, message_type: str
) -> None:
    world = World(endpoint)
    assert world.service.handle(_task(message_type)) == DROPPED
    assert not world.receiver.posts and not world.store.logged and not world.queue.sent and not world.dlq.letters


def test_a_test_message_goes_whatever_the_subscription() -> None:
    world = World(_endpoint(events=("notification.delivered",)))
    assert world.service.handle(_task("webhook.test")) == DELIVERED
    assert len(world.receiver.posts) == 1
