from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from notify.errors import IngestUnavailable, ValidationFailed
from notify.models import Channel, EventRequest
from notify.services.ingest import IngestService

from .fakes import MemoryPublisher, MemoryQueue, MemoryStore

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _request(**changes: object) -> EventRequest:
    body = {
        "event_type": "new_episode",
        "payload": {"series_id": "s", "series_title": "Dark", "season": 1, "episode": 2, "watch_url": "https://x.io/w"},
        "recipients": {"user_ids": ["u1", "u2", "u1"]},
        **changes,
    }
    return EventRequest.model_validate(body)


@pytest.fixture
def parts() -> tuple[IngestService, MemoryStore, MemoryPublisher, MemoryQueue]:
    store, publisher, queue = MemoryStore(), MemoryPublisher(), MemoryQueue()
    return IngestService(store, publisher, queue, lambda: T0), store, publisher, queue


def test_accept_publishes_one_job_per_unique_user_and_default_channel(parts) -> None:
    service, store, publisher, _ = parts
    accepted = service.accept(_request())
    assert len(accepted.job_ids) == 4
    assert [(j.user_id, j.channel) for j in publisher.published] == [
        ("u1", Channel.PUSH),
        ("u1", Channel.WEBSOCKET),
        ("u2", Channel.PUSH),
        ("u2", Channel.WEBSOCKET),
    ]
    record = store.events[accepted.event_id]
    assert record.user_ids == ["u1", "u2"]
    assert record.expires_at == "2026-11-27T12:00:00.000Z"  # the type's 3-day TTL


def test_kafka_down_falls_back_to_the_delay_queue(parts) -> None:
    service, store, publisher, queue = parts
    publisher.fail = True
    accepted = service.accept(_request(channels=["email"]))
    assert [j.job_id for j, _ in queue.sent] == accepted.job_ids
    assert accepted.event_id in store.events


def test_nothing_is_accepted_when_no_store_takes_the_jobs(parts) -> None:
    service, store, publisher, queue = parts
    publisher.fail = queue.fail = True
    with pytest.raises(IngestUnavailable):
        service.accept(_request())
    assert store.events == {}


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"expires_at": (T0 - timedelta(seconds=1)).isoformat()}, "expires_at"),
        ({"send_after": (T0 + timedelta(days=5)).isoformat()}, "send_after"),
        ({"event_type": "unknown"}, "event_type"),
        ({"payload": {}}, "payload.series_id"),
    ],
)
def test_time_and_type_rules_are_field_errors(parts, changes: dict, loc: str) -> None:
    service = parts[0]
    with pytest.raises(ValidationFailed) as info:
        service.accept(_request(**changes))
    assert loc in [e.loc for e in info.value.errors]
