"""Status webhooks in the worker (issue 24): each recorded status an endpoint subscribes to becomes a message on the
delay queue, after the status is recorded; a message that could not be queued makes the record come again, and
that copy (a duplicate of a finished job) queues it again under the same id, without sending the job twice; the
triage hands a webhook task from the delay queue to its POST."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from notify.digests import DigestRule, StoredDigestRule
from notify.errors import StoreUnavailable, TransientError
from notify.models import Status, WebhookTask
from notify.records import WebhookAttempt, WebhookEndpoint, WebhookOutcome
from notify.services.delivery import Outcome
from notify.services.webhook_delivery import WebhookDeliveryService
from notify.services.webhook_emitter import WebhookEmitter
from notify.webhooks import Target, message_id, new_secret

from .fakes import MemoryDigestRules, MemoryQueue, MemoryWebhookStore, World


@dataclass
class Receiver:
    posts: list[bytes] = field(default_factory=list)

    def post(self, target: Target, address: str, headers: dict[str, str], body: bytes) -> WebhookAttempt:
        self.posts.append(body)
        return WebhookAttempt(WebhookOutcome.DELIVERED, 200, 3)


def _world(*events: str) -> tuple[World, MemoryQueue]:
    """u1's email pipeline with one endpoint subscribed to ``events``; its messages go to their own queue."""
    world = World()
    store = MemoryWebhookStore()
    store.put(WebhookEndpoint("wh_1", "https://hooks.example.com/", tuple(events), (new_secret(),), "t", "t"))
    queue = MemoryQueue()
    world.webhooks = WebhookEmitter(store, queue, lambda: world.now)
    world.wire()
    return world, queue


def _messages(queue: MemoryQueue) -> list[WebhookTask]:
    return [task for task, _ in queue.sent if isinstance(task, WebhookTask)]


def test_a_sent_job_queues_notification_sent_with_its_identifiers_and_provider_id_only() -> None:
    world, queue = _world("*")
    job = world.job()
    assert world.service.handle(job) is Outcome.SENT
    (message,) = _messages(queue)
    assert message.message_type == "notification.sent"
    assert message.message_id == message_id("wh_1", "notification.sent", f"{job.job_id}#SENT")
    assert message.data == {
        "job_id": job.job_id,
        "event_id": job.event_id,
        "event_type": "user_registered",
        "user_id": "u1",
        "channel": "email",
        "status": "SENT",
        "provider_message_id": "msg-1",
    }


def test_statuses_the_endpoint_does_not_subscribe_to_queue_nothing() -> None:
    world, queue = _world("notification.failed")
    assert world.service.handle(world.job()) is Outcome.SENT
    assert _messages(queue) == []
    world.users.users.clear()  # the next job's user does not exist: it fails
    assert world.service.handle(world.job()) is Outcome.FAILED
    (message,) = _messages(queue)
    assert message.message_type == "notification.failed" and message.data["reason"] == "permanent_error"


def test_a_message_not_queued_makes_the_record_come_again_and_the_copy_queues_it_with_the_same_id() -> None:
    world, queue = _world("*")
    job = world.job()
    queue.fail = True
    with pytest.raises(StoreUnavailable):
        world.service.handle(job)  # the send is recorded (SENT), its webhook is not queued
    assert world.store.statuses(job.job_id)[-1] is Status.SENT
    queue.fail = False
    assert world.service.handle(job) is Outcome.DUPLICATE  # the trigger's next delivery of the record
    assert len(world.email.sent) == 1  # never sent twice
    (message,) = _messages(queue)
    assert message.message_id == message_id("wh_1", "notification.sent", f"{job.job_id}#SENT")
    assert message.data["provider_message_id"] == "msg-1"  # the recorded entry's detail, as the first time


def test_the_copy_queues_every_status_the_worker_recorded_even_after_feedback_moved_the_job_on() -> None:
    world, queue = _world("*")
    job = world.job()
    queue.fail = True
    with pytest.raises(StoreUnavailable):
        world.service.handle(job)
    world.store.jobs[job.job_id]["status"] = Status.DELIVERED  # SES's feedback came before the record came back
    queue.fail = False
    assert world.service.handle(job) is Outcome.DUPLICATE
    assert [(m.message_type, m.data.get("provider_message_id")) for m in _messages(queue)] == [
        ("notification.sent", "msg-1")
    ]


def test_a_stale_copy_of_an_earlier_attempt_tells_nothing() -> None:
    world, queue = _world("*")
    job = world.job()
    world.email.errors.append(TransientError("SES throttled"))
    assert world.service.handle(job) is Outcome.RETRYING  # attempt 0 failed; attempt 1 waits on the delay queue
    assert world.service.handle(job) is Outcome.DUPLICATE  # attempt 0's record delivered again
    assert _messages(queue) == []  # never a notification.sent for a job not sent


def test_a_digested_member_queues_notification_digested_naming_its_digest() -> None:
    world, queue = _world("notification.digested")
    rules = MemoryDigestRules()
    spec = {"event_type": "review_liked", "channels": ["email"], "window": {"seconds": 20}, "key": ["review_id"]}
    rules.put(StoredDigestRule(DigestRule.model_validate(spec), "2026-11-24T00:00:00Z"))
    world.digest_rules = rules
    world.wire()
    job = world.job("review_liked")
    assert world.service.handle(job) is Outcome.DIGESTED
    (message,) = _messages(queue)
    assert message.message_type == "notification.digested"
    entry = world.store.jobs[job.job_id]["history"][-1]
    assert message.data["status"] == "DIGESTED" and message.data["digest_job_id"] == entry.detail["digest_job_id"]


def test_the_triage_hands_a_webhook_task_from_the_delay_queue_to_its_post() -> None:
    world, queue = _world("*")
    receiver = Receiver()
    assert world.webhooks is not None
    store = MemoryWebhookStore()
    store.put(WebhookEndpoint("wh_1", "https://hooks.example.com/", ("*",), (new_secret(),), "t", "t"))
    world.webhook_delivery = WebhookDeliveryService(
        store,
        receiver,
        world.queue,
        world.dlq,
        lambda: world.now,
        resolver=lambda host, port: ["93.184.215.14"],
        allow_loopback=False,
    )
    world.wire()
    world.service.handle(world.job())
    (message,) = _messages(queue)
    result = world.triage.handle_raw(message.model_dump_json(), "sqs")
    assert result.outcome is Outcome.WEBHOOK_DELIVERED and result.job is None
    assert len(receiver.posts) == 1 and b'"notification.sent"' in receiver.posts[0]
