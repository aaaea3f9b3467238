"""Segment fan-out: one task expands one page of users into jobs and hands on the next page.

No invocation ever holds a whole segment: a page is at most ``page_size`` users.
Each page is idempotent — its jobs have deterministic ids, and a page record
marks it done — so a crash or a redelivery neither skips nor duplicates users.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from notify.catalog import get_event_type
from notify.clock import Clock, iso
from notify.errors import DeliveryError, IngestUnavailable, NotFound, PermanentError, StoreUnavailable, TransientError
from notify.jobs import EventPlan
from notify.models import FanoutTask
from notify.ports import DeadLetterQueue, DelayQueue, FanoutPages, JobPublisher, SegmentSource
from notify.records import DeadLetter, EventRecord
from notify.retry import MAX_SQS_DELAY, RetryPolicy
from notify.services.ingest import publish_durably

DEFAULT_PAGE_SIZE = 500
FANOUT_RETRY = RetryPolicy(base_seconds=5, cap_seconds=300, max_attempts=10)


@dataclass(frozen=True)
class PageOutcome:
    """What handling one fan-out task did, and for an expanded page how many users and jobs and whether more follow."""

    outcome: str  # "expanded", "duplicate", "scheduled", "retrying", "expired", "failed"
    users: int = 0
    jobs: int = 0
    more: bool = False


class FanoutService:
    """Expands a segment event one page per task: reads the page, publishes its jobs and the next task, records it.

    Expired tasks are dropped, tasks not yet due re-queued, a source that is down retried with backoff, and an
    unknown segment, an unusable answer or spent retries dead-lettered; see :meth:`handle`.
    """

    def __init__(
        self,
        store: FanoutPages,
        segments: SegmentSource,
        publisher: JobPublisher,
        delay_queue: DelayQueue,
        dlq: DeadLetterQueue,
        clock: Clock,
        page_size: int = DEFAULT_PAGE_SIZE,
        policy: RetryPolicy = FANOUT_RETRY,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._store = store
        self._segments = segments
        self._publisher = publisher
        self._delay = delay_queue
        self._dlq = dlq
        self._clock = clock
        self._page_size = page_size
        self._policy = policy
        self._rand = rand

    def handle(self, task: FanoutTask) -> PageOutcome:
        """Expand one page. Raises StoreUnavailable when neither Kafka nor SQS takes its jobs."""
        now = self._clock()
        if now >= task.expires_at:
            return PageOutcome("expired")
        if task.not_before is not None and task.not_before > now:
            self._requeue(task, math.ceil((task.not_before - now).total_seconds()))
            return PageOutcome("scheduled")
        if self._store.page_done(task.event_id, task.page):
            return PageOutcome("duplicate")
        try:
            page = self._segments.page(task.segment_id, task.cursor, self._page_size)
        except NotFound as exc:
            self._dead_letter(task, "unknown_segment", str(exc))
            return PageOutcome("failed")
        except TransientError as exc:
            return self._retry(task, str(exc))
        except PermanentError as exc:  # the segment's source answered something unusable
            self._dead_letter(task, "permanent_error", str(exc))
            return PageOutcome("failed")
        plan = EventPlan(
            event_id=task.event_id,
            event_type=get_event_type(task.event_type),
            payload=task.payload,
            user_ids=list(dict.fromkeys(page.user_ids)),
            channels=task.channels,
            priority=task.priority,
            created_at=task.created_at,
            expires_at=task.expires_at,
            send_after=task.send_after,
            locale=task.locale,
            campaign_id=task.campaign_id,
            run_id=task.run_id,
            template_key=task.template_key,
        )
        jobs = plan.jobs()
        nxt = None
        if page.next_cursor:
            nxt = task.model_copy(update={"page": task.page + 1, "cursor": page.next_cursor, "attempt": 0})
        try:
            publish_durably(self._publisher, self._delay, [*jobs, *([nxt] if nxt else [])])
        except IngestUnavailable as exc:
            raise StoreUnavailable(str(exc)) from exc
        # Recorded last: a crash before this line redoes the page, and the worker drops the duplicate jobs.
        self._store.put_page(
            EventRecord(
                event_id=task.event_id,
                event_type=task.event_type,
                user_ids=list(plan.user_ids),
                channels=list(task.channels),
                priority=task.priority.value,
                created_at=iso(task.created_at),
                expires_at=iso(task.expires_at),
                send_after=iso(task.send_after) if task.send_after else None,
                segment_id=task.segment_id,
                page=task.page,
            )
        )
        return PageOutcome("expanded", users=len(plan.user_ids), jobs=len(jobs), more=nxt is not None)

    def _retry(self, task: FanoutTask, error: str) -> PageOutcome:
        if self._policy.exhausted(task.attempt):
            self._dead_letter(task, "attempts_exhausted", f"gave up after {task.attempt + 1} attempts: {error}")
            return PageOutcome("failed")
        wait = self._policy.delay(task.attempt, self._rand)
        self._requeue(
            task.model_copy(
                update={"attempt": task.attempt + 1, "not_before": self._clock() + timedelta(seconds=wait)}
            ),
            wait,
        )
        return PageOutcome("retrying")

    def _requeue(self, task: FanoutTask, wait: int) -> None:
        try:
            self._delay.enqueue([task], min(MAX_SQS_DELAY, max(0, wait)))
        except DeliveryError as exc:
            raise StoreUnavailable(f"delay queue unavailable: {exc}") from exc

    def _dead_letter(self, task: FanoutTask, reason: str, error: str) -> None:
        letter = DeadLetter(
            reason, error, task.attempt, job=task.model_dump(mode="json"), source="fanout", failed_at=iso(self._clock())
        )
        try:
            self._dlq.send(letter)
        except DeliveryError as exc:
            raise StoreUnavailable(f"dead-letter queue unavailable: {exc}") from exc
