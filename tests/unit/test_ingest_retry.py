"""A retried event under the same id publishes the same job ids (the worker's claim drops the copies)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from notify.errors import Conflict, KeyReused, ValidationFailed
from notify.jobs import keyed_event_id
from notify.models import EventRequest
from notify.ports import RunOnce
from notify.records import EventRecord
from notify.services.ingest import IngestIncomplete, IngestService

from .fakes import MemoryPublisher, MemoryQueue, MemoryStore

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
BODY = {
    "event_type": "user_registered",
    "payload": {"confirmation_url": "https://example.com/c/1"},
    "recipients": {"user_ids": ["u1", "u2"]},
}


class RecordOnce(MemoryStore):
    """A store whose put_event is conditional, as DynamoDB's is."""

    def put_event(self, record: EventRecord) -> None:
        if record.event_id in self.events:
            raise Conflict(f"event {record.event_id} already exists")
        super().put_event(record)


def _service() -> tuple[IngestService, MemoryStore, MemoryPublisher, MemoryQueue]:
    store, publisher, queue = RecordOnce(), MemoryPublisher(), MemoryQueue()
    return IngestService(store, publisher, queue, lambda: T0), store, publisher, queue


def test_a_failed_attempt_names_its_event_and_the_retry_publishes_the_same_job_ids() -> None:
    service, store, publisher, queue = _service()
    event_id = str(uuid.uuid4())
    request = EventRequest.model_validate({**BODY, "event_id": event_id})
    publisher.fail = queue.fail = True
    with pytest.raises(IngestIncomplete) as info:
        service.accept(request)
    assert info.value.event_ids == [event_id]
    assert store.events == {}  # not accepted until a retry completes it
    publisher.fail = queue.fail = False
    accepted = service.accept(request)
    again = service.accept(request)  # a retry of a timed-out answer
    assert accepted == again and accepted.event_id == event_id
    assert [j.job_id for j in publisher.published] == accepted.job_ids * 2


def test_an_existing_event_id_with_other_recipients_is_a_conflict() -> None:
    service = _service()[0]
    event_id = str(uuid.uuid4())
    service.accept(EventRequest.model_validate({**BODY, "event_id": event_id}))
    with pytest.raises(Conflict):
        service.accept(EventRequest.model_validate({**BODY, "event_id": event_id, "recipients": {"user_ids": ["u3"]}}))


def test_a_batch_honours_event_ids_and_refuses_one_twice() -> None:
    service = _service()[0]
    event_id = str(uuid.uuid4())
    first, second = service.accept_many([{**BODY, "event_id": event_id}, {**BODY, "event_id": event_id}])
    assert not isinstance(first, ValidationFailed) and first.event_id == event_id
    assert isinstance(second, ValidationFailed) and second.errors[0].loc == "event_id"


def test_keyed_event_ids_are_deterministic_uuids() -> None:
    assert keyed_event_id("caller", "key", "body") == keyed_event_id("caller", "key", "body")
    assert keyed_event_id("caller", "key", "body") != keyed_event_id("other", "key", "body")
    assert uuid.UUID(keyed_event_id("caller", "key", "body")).version == 5


class MemoryOnce:
    """RunOnce as Powertools idempotency behaves: one answer per key, the body checked."""

    def __init__(self) -> None:
        self.records: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}

    def __call__(self, key: str, body: dict[str, Any], action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        if key in self.records:
            stored_body, answer = self.records[key]
            if stored_body != body:
                raise KeyReused(key)
            return answer
        answer = action()
        self.records[key] = (body, answer)
        return answer


def _submitting() -> tuple[IngestService, MemoryPublisher, MemoryOnce]:
    once: RunOnce = MemoryOnce()
    store, publisher, queue = RecordOnce(), MemoryPublisher(), MemoryQueue()
    assert isinstance(once, MemoryOnce)
    return IngestService(store, publisher, queue, lambda: T0, once=once), publisher, once


def test_submit_with_an_idempotency_key_derives_the_event_id_and_answers_a_repeat_from_the_record() -> None:
    service, publisher, once = _submitting()
    request = EventRequest.model_validate(BODY)
    first = service.submit(request, "caller", "key-1")
    again = service.submit(request, "caller", "key-1")
    assert first == again and len(publisher.published) == 2  # published once, answered twice
    assert uuid.UUID(first.event_id) == uuid.UUID(service.submit(request, "caller", "key-1").event_id)
    assert list(once.records) == ["caller:key-1"]
    assert service.submit(request, "other-caller", "key-1").event_id != first.event_id


def test_submit_refuses_a_reused_key_with_another_body_and_a_reused_event_id_as_a_conflict() -> None:
    service = _submitting()[0]
    service.submit(EventRequest.model_validate(BODY), "caller", "key-1")
    other = EventRequest.model_validate({**BODY, "recipients": {"user_ids": ["u3"]}})
    with pytest.raises(KeyReused):
        service.submit(other, "caller", "key-1")
    event_id = str(uuid.uuid4())
    service.submit(EventRequest.model_validate({**BODY, "event_id": event_id}), "caller")
    with pytest.raises(Conflict):
        service.submit(EventRequest.model_validate({**BODY, "event_id": event_id, "priority": "low"}), "caller")


def test_submit_without_a_key_or_event_id_accepts_a_new_event_every_time() -> None:
    service, _, once = _submitting()
    request = EventRequest.model_validate(BODY)
    assert service.submit(request, "caller").event_id != service.submit(request, "caller").event_id
    assert once.records == {}
