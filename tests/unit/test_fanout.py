from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from notify.errors import StoreUnavailable, TransientError
from notify.models import EventRequest, FanoutTask, NotificationJob
from notify.services.delivery import Outcome
from notify.services.fanout import FanoutService
from notify.services.ingest import IngestService

from .fakes import MemoryDlq, MemoryPublisher, MemoryQueue, MemorySegments, MemoryStore

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
USERS = [f"user-{i}" for i in range(1, 1002)]


class Pipeline:
    def __init__(self) -> None:
        self.now = T0
        self.store = MemoryStore()
        self.kafka = MemoryPublisher()
        self.queue = MemoryQueue()
        self.dlq = MemoryDlq()
        self.segments = MemorySegments({"all": USERS})
        self.ingest = IngestService(self.store, self.kafka, self.queue, lambda: self.now)
        self.fanout = FanoutService(
            self.store,
            self.segments,
            self.kafka,
            self.queue,
            self.dlq,
            lambda: self.now,
            page_size=400,
            rand=lambda: 0.5,
        )

    def run(self) -> list[NotificationJob]:
        """Process fan-out tasks as the worker would, until none are left; return every job published."""
        while tasks := [m for m in self.kafka.published if isinstance(m, FanoutTask)]:
            self.kafka.published = [m for m in self.kafka.published if not isinstance(m, FanoutTask)]
            for task in tasks:
                self.fanout.handle(task)
        return [m for m in self.kafka.published if isinstance(m, NotificationJob)]


def _campaign(segment: str = "all") -> EventRequest:
    return EventRequest.model_validate(
        {
            "event_type": "campaign_triggered",
            "payload": {
                "campaign_id": "c1",
                "run_id": "c1:2026-11-24T12:00:00Z",
                "event_type": "new_film",
                "payload": {"film_id": "f", "title": "Dune", "release_date": "2026-12-01", "watch_url": "https://x.io"},
            },
            "recipients": {"segment_id": segment},
        }
    )


def test_a_segment_is_expanded_page_by_page_into_one_job_per_user() -> None:
    p = Pipeline()
    accepted = p.ingest.accept(_campaign())
    assert accepted.job_ids == [] and accepted.segment_id == "all"
    jobs = p.run()
    assert len(jobs) == 2 * len(USERS)  # new_film's default channels: email and push
    assert {j.user_id for j in jobs} == set(USERS)
    assert p.segments.calls == 3  # 400 + 400 + 201: never the whole segment at once
    job = jobs[0]
    assert (job.event_type, job.template_key, job.campaign_id) == ("campaign_triggered", "new_film", "c1")
    assert job.payload["title"] == "Dune"
    assert [r.page for r in p.store.event_pages(accepted.event_id)] == [0, 1, 2]


def test_a_redelivered_page_neither_skips_nor_duplicates() -> None:
    p = Pipeline()
    p.ingest.accept(_campaign())
    (first,) = [m for m in p.kafka.published if isinstance(m, FanoutTask)]
    p.run()
    before = len(p.kafka.published)
    assert p.fanout.handle(first).outcome == "duplicate"
    assert len(p.kafka.published) == before


def test_a_crash_before_the_page_is_recorded_only_repeats_job_ids() -> None:
    p = Pipeline()
    p.ingest.accept(_campaign())
    (first,) = [m for m in p.kafka.published if isinstance(m, FanoutTask)]
    p.store.put_page = lambda record: (_ for _ in ()).throw(StoreUnavailable("crash"))  # type: ignore[method-assign]
    with pytest.raises(StoreUnavailable):
        p.fanout.handle(first)
    p.store = MemoryStore()
    p.fanout._store = p.store
    jobs = p.run()
    assert len({j.job_id for j in jobs}) == 2 * len(USERS)  # ids repeat; the worker's claim drops the repeats
    assert len(jobs) == 2 * len(USERS) + 2 * 400  # the first page was published twice


def test_auth_down_retries_the_page_later() -> None:
    p = Pipeline()
    p.segments.errors.append(TransientError("auth down"))
    p.ingest.accept(_campaign())
    (task,) = [m for m in p.kafka.published if isinstance(m, FanoutTask)]
    assert p.fanout.handle(task).outcome == "retrying"
    (retry, delay) = p.queue.sent[-1]
    assert (retry.attempt, delay) == (1, 2)  # full jitter: 0.5 × 5 s
    assert p.fanout.handle(retry).outcome == "scheduled"
    p.now += timedelta(seconds=2)
    assert p.fanout.handle(retry).outcome == "expanded"


def test_an_unknown_segment_is_dead_lettered() -> None:
    p = Pipeline()
    p.ingest.accept(_campaign("nope"))
    (task,) = [m for m in p.kafka.published if isinstance(m, FanoutTask)]
    assert p.fanout.handle(task).outcome == "failed"
    assert p.dlq.letters[0].reason == "unknown_segment"


def test_kafka_down_sends_pages_through_the_delay_queue() -> None:
    p = Pipeline()
    p.ingest.accept(_campaign())
    p.kafka.fail = True
    (task, _) = p.queue.sent[-1] if p.queue.sent else (None, 0)
    assert task is None  # the first task went to Kafka before it failed
    first = p.kafka.published[0]
    assert p.fanout.handle(first).outcome == "expanded"
    assert len([m for m, _ in p.queue.sent if isinstance(m, NotificationJob)]) == 2 * 400
    assert [m.page for m, _ in p.queue.sent if isinstance(m, FanoutTask)] == [1]


def test_outcome_values_cover_page_outcomes() -> None:
    assert {Outcome(v) for v in ("duplicate", "scheduled", "retrying", "expired", "failed")}


def test_later_pages_come_from_the_source_the_segment_was_found_in() -> None:
    from notify.services.segments import CompositeSegmentSource

    static = MemorySegments({"vip": ["a", "b", "c"]})
    dynamic = MemorySegments({"all": [f"u{i}" for i in range(5)]})
    source = CompositeSegmentSource(static, dynamic)
    pages, cursor = [], None
    while True:
        page = source.page("all", cursor, 2)
        pages.append(page.user_ids)
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert pages == [["u0", "u1"], ["u2", "u3"], ["u4"]]
    assert source.page("vip", None, 2).next_cursor == "s:2"
    assert source.page("vip", "s:2", 2).user_ids == ["c"]
