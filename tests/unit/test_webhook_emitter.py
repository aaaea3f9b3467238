"""Status webhooks' emitting side (issue 24): a status change becomes one message per subscribed, enabled endpoint
on the delay queue, with an id stable across copies of the change, and data that holds no payload or token."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from notify.errors import StoreUnavailable
from notify.models import Status, WebhookTask
from notify.records import WebhookEndpoint
from notify.services.webhook_emitter import WebhookEmitter, for_engagement, for_inbox_read, for_status

from .fakes import MemoryQueue, MemoryWebhookStore

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
JOB = {
    "job_id": "j-1",
    "event_id": "e-1",
    "event_type": "review_liked",
    "user_id": "u-1",
    "channel": "email",
    "payload": {"liked_by": "Ann"},
}


def _endpoint(webhook_id: str, events: tuple[str, ...], enabled: bool = True) -> WebhookEndpoint:
    return WebhookEndpoint(webhook_id, "https://hooks.example.com/", events, ("whsec_x",), "t", "t", enabled=enabled)


def _world(*endpoints: WebhookEndpoint) -> tuple[WebhookEmitter, MemoryQueue]:
    store, queue = MemoryWebhookStore(), MemoryQueue()
    for endpoint in endpoints:
        store.put(endpoint)
    return WebhookEmitter(store, queue, lambda: T0), queue


def _tasks(queue: MemoryQueue) -> list[WebhookTask]:
    return [task for task, _ in queue.sent if isinstance(task, WebhookTask)]


def test_a_status_change_makes_one_message_per_subscribed_enabled_endpoint() -> None:
    emitter, queue = _world(
        _endpoint("wh_all", ("*",)),
        _endpoint("wh_sent", ("notification.sent",)),
        _endpoint("wh_bounced", ("notification.bounced",)),
        _endpoint("wh_off", ("*",), enabled=False),
    )
    assert emitter.emit(for_status(JOB, Status.SENT, {"provider_message_id": "ses-1"})) == 2
    tasks = _tasks(queue)
    assert sorted(t.webhook_id for t in tasks) == ["wh_all", "wh_sent"]
    assert all(t.message_type == "notification.sent" and t.created_at == T0 for t in tasks)
    assert tasks[0].data == {
        "job_id": "j-1",
        "event_id": "e-1",
        "event_type": "review_liked",
        "user_id": "u-1",
        "channel": "email",
        "status": "SENT",
        "provider_message_id": "ses-1",
    }


def test_the_same_change_emitted_again_carries_the_same_message_ids() -> None:
    emitter, queue = _world(_endpoint("wh_all", ("*",)))
    emitter.emit(for_status(JOB, Status.FAILED, {"reason": "permanent_error"}))
    emitter.emit(for_status(JOB, Status.FAILED, {"reason": "permanent_error"}))
    first, again = _tasks(queue)
    assert first.message_id == again.message_id and first.data["reason"] == "permanent_error"


def test_steps_on_the_way_send_nothing_and_a_sent_digest_is_also_digest_sent() -> None:
    for status in (Status.ACCEPTED, Status.PROCESSING, Status.SENDING, Status.SCHEDULED, Status.RETRYING):
        assert for_status(JOB, status) == []
    digest = for_status({**JOB, "digest_bucket": "b-1"}, Status.SENT)
    assert [c.message_type for c in digest] == ["notification.sent", "digest.sent"]
    member = for_status(JOB, Status.DIGESTED, {"digest_job_id": "d-1", "bucket_id": "b-1"})
    assert member[0].message_type == "notification.digested" and member[0].data["digest_job_id"] == "d-1"


def test_opens_clicks_and_reads_have_their_own_types_and_subjects() -> None:
    assert [c.message_type for c in for_engagement(JOB, "opened") + for_engagement(JOB, "clicked")] == [
        "notification.opened",
        "notification.clicked",
    ]
    assert for_inbox_read(JOB)[0].subject == "j-1#read"
    with pytest.raises(ValueError):
        for_engagement(JOB, "forwarded")


def test_no_subscribed_endpoint_means_no_queue_request_and_a_refusing_queue_is_store_unavailable() -> None:
    emitter, queue = _world(_endpoint("wh_bounced", ("notification.bounced",)))
    assert emitter.emit(for_status(JOB, Status.SENT)) == 0 and queue.sent == []
    emitter, queue = _world(_endpoint("wh_all", ("*",)))
    queue.fail = True
    with pytest.raises(StoreUnavailable):
        emitter.emit(for_status(JOB, Status.SENT))
