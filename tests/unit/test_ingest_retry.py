"""A retried event under the same id publishes the same job ids (the worker's claim drops the copies)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from notify.errors import Conflict, ValidationFailed
from notify.ingest import IngestIncomplete, IngestService
from notify.jobs import keyed_event_id
from notify.models import EventRequest
from notify.records import EventRecord

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
