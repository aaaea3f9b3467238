"""In-memory stand-ins for the ports, for unit tests only (component tests use moto and Kafka)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Optional

from notify.clock import iso
from notify.errors import NotFound, PermanentError, TransientError
from notify.models import Channel, Message, NotificationJob, Status
from notify.ports import (
    DeadLetterInbox,
    DeadLetterQueue,
    DelayQueue,
    EmailSender,
    FeedbackStore,
    JobPublisher,
    PreferenceStore,
    SegmentSource,
    StatusStore,
    TemplateStore,
    UserDirectory,
)
from notify.records import (
    Claim,
    ClaimOutcome,
    DeadLetter,
    EventRecord,
    JobRecord,
    ReceivedLetter,
    RenderedMessage,
    SegmentPage,
    Template,
    Transition,
    UserPreferences,
    UserProfile,
)


@dataclass
class MemoryStore:
    events: dict[str, EventRecord] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def put_event(self, record: EventRecord) -> None:
        self.events[record.event_id] = record

    def put_events(self, records: Sequence[EventRecord]) -> None:
        for record in records:
            self.put_event(record)

    def delete_event(self, event_id: str) -> None:
        self.events.pop(event_id, None)

    def put_page(self, record: EventRecord) -> bool:
        key = f"{record.event_id}#{record.page}"
        if key in self.events:
            return False
        self.events[key] = record
        return True

    def page_done(self, event_id: str, page: int) -> bool:
        return f"{event_id}#{page}" in self.events

    def event_pages(self, event_id: str) -> list[EventRecord]:
        return [r for k, r in self.events.items() if k.startswith(f"{event_id}#")]

    def user_jobs(
        self,
        user_id: str,
        limit: int,
        cursor: Optional[str] = None,
        status: Optional[Status] = None,
        channel: Optional[Channel] = None,
    ) -> tuple[list[JobRecord], Optional[str]]:
        return [], None

    def get_event(self, event_id: str) -> Optional[EventRecord]:
        return self.events.get(event_id)

    def find_event_of_job(self, job_id: str) -> Optional[EventRecord]:
        return None

    def get_job(self, job_id: str) -> Optional[JobRecord]:
        item = self.jobs.get(job_id)
        if item is None:
            return None
        return JobRecord(
            job_id=job_id,
            event_id=item["event_id"],
            event_type="t",
            user_id=item["user_id"],
            channel=item["channel"],
            status=item["status"],
            attempt=item["attempt"],
            created_at="",
            updated_at="",
            last_error=item.get("error"),
            history=list(item["history"]),
            provider_message_id=next(
                (t.detail["provider_message_id"] for t in item["history"] if "provider_message_id" in t.detail), None
            ),
        )

    def get_jobs(self, job_ids: Sequence[str]) -> dict[str, JobRecord]:
        return {j: r for j in job_ids if (r := self.get_job(j)) is not None}

    def claim(self, job: NotificationJob, now: datetime, lease_seconds: int) -> Claim:
        item = self.jobs.get(job.job_id)
        token = uuid.uuid4().hex
        ts = now.timestamp()
        if item is not None:
            status: Status = item["status"]
            redrive = status is Status.FAILED and 0 < job.attempt == job.retry_base and item["attempt"] < job.attempt
            if (item["attempt"] > job.attempt or status.terminal) and not redrive:
                return Claim(ClaimOutcome.DUPLICATE, current=Status.SENT if item["attempt"] > job.attempt else status)
            expired = item.get("lease_until", 0) < ts
            if status is Status.SENDING and expired:
                item.update(token=token, lease_until=ts + lease_seconds)
                return Claim(ClaimOutcome.ABANDONED, token, status)
            if status in (Status.PROCESSING, Status.SENDING) and not expired:
                return Claim(ClaimOutcome.DUPLICATE, current=status)
        self.jobs[job.job_id] = {
            **(item or {"history": []}),
            "event_id": job.event_id,
            "user_id": job.user_id,
            "channel": job.channel,
            "status": Status.PROCESSING,
            "attempt": job.attempt,
            "token": token,
            "lease_until": ts + lease_seconds,
        }
        self.jobs[job.job_id]["history"].append(Transition(Status.PROCESSING, iso(now), job.attempt))
        return Claim(ClaimOutcome.CLAIMED, token)

    def transition(
        self,
        job: NotificationJob,
        status: Status,
        now: datetime,
        token: Optional[str],
        *,
        attempt: Optional[int] = None,
        error: Optional[str] = None,
        detail: Optional[dict[str, Any]] = None,
    ) -> bool:
        item = self.jobs[job.job_id]
        if item.get("token") != token:
            return False
        item["status"] = status
        if attempt is not None:
            item["attempt"] = attempt
        if error is not None:
            item["error"] = error
        item["history"].append(Transition(status, iso(now), job.attempt, error, detail or {}))
        return True

    def statuses(self, job_id: str) -> list[Status]:
        return [t.status for t in self.jobs[job_id]["history"]]

    def record_feedback(
        self, job_id: str, feedback_id: str, expected: Status, status: Status, entry: Transition
    ) -> bool:
        item = self.jobs.get(job_id)
        applied = item.setdefault("feedback_ids", set()) if item is not None else set()
        if item is None or item["status"] is not expected or feedback_id in applied:
            return False
        applied.add(feedback_id)
        item["status"] = status
        item["history"].append(entry)
        return True


@dataclass
class MemoryQueue:
    sent: list[tuple[Any, int]] = field(default_factory=list)
    fail: bool = False

    def enqueue(self, jobs: Sequence[Message], delay_seconds: int = 0) -> None:
        if self.fail:
            raise TransientError("queue down")
        self.sent += [(j, delay_seconds) for j in jobs]


@dataclass
class MemoryPublisher:
    published: list[Any] = field(default_factory=list)
    fail: bool = False

    def publish(self, jobs: Sequence[Message]) -> None:
        if self.fail:
            raise TransientError("kafka down")
        self.published += jobs


@dataclass
class MemoryDlq:
    letters: list[DeadLetter] = field(default_factory=list)

    def send(self, letter: DeadLetter) -> None:
        self.letters.append(letter)


@dataclass
class MemoryTemplates:
    """Every version of every key, newest last (a tombstone is a version too)."""

    templates: dict[tuple[str, Channel, str], list[Template]] = field(default_factory=dict)

    def latest(self, event_type: str, channel: Channel, locale: str) -> Optional[Template]:
        found = self.templates.get((event_type, channel, locale))
        return found[-1] if found else None

    def version(self, event_type: str, channel: Channel, locale: str, version: int) -> Optional[Template]:
        return next((t for t in self.versions(event_type, channel, locale) if t.version == version), None)

    def versions(self, event_type: str, channel: Channel, locale: str) -> list[Template]:
        return list(reversed(self.templates.get((event_type, channel, locale), [])))

    def keys(self) -> list[Template]:
        return [versions[-1] for versions in self.templates.values()]

    def save(self, template: Template) -> Template:
        versions = self.templates.setdefault((template.event_type, template.channel, template.locale), [])
        saved = replace(template, version=len(versions) + 1)
        versions.append(saved)
        return saved


@dataclass
class MemoryUsers:
    users: dict[str, UserProfile] = field(default_factory=dict)
    errors: list[Exception] = field(default_factory=list)

    def get_user(self, user_id: str) -> UserProfile:
        if self.errors:
            raise self.errors.pop(0)
        if user_id not in self.users:
            raise NotFound(user_id)
        return self.users[user_id]


@dataclass
class MemoryEmail:
    sent: list[tuple[str, RenderedMessage, dict[str, str]]] = field(default_factory=list)
    tags: list[dict[str, str]] = field(default_factory=list)  # of each sent email
    errors: list[Exception] = field(default_factory=list)

    def send_email(
        self,
        to: str,
        message: RenderedMessage,
        headers: Optional[dict[str, str]] = None,
        tags: Optional[dict[str, str]] = None,
    ) -> str:
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append((to, message, headers or {}))
        self.tags.append(tags or {})
        return f"msg-{len(self.sent)}"


# The fakes must satisfy the ports they stand in for (mypy checks these assignments).
_checks: tuple[StatusStore, DelayQueue, JobPublisher, DeadLetterQueue, TemplateStore, UserDirectory, EmailSender] = (
    MemoryStore(),
    MemoryQueue(),
    MemoryPublisher(),
    MemoryDlq(),
    MemoryTemplates(),
    MemoryUsers(),
    MemoryEmail(),
)
__all__ = [
    "MemoryStore",
    "MemoryQueue",
    "MemoryPublisher",
    "MemoryDlq",
    "MemoryTemplates",
    "MemoryUsers",
    "MemoryEmail",
    "PermanentError",
]


@dataclass
class MemoryInbox:
    letters: list[ReceivedLetter] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)

    def receive(self, limit: int, visibility_seconds: int) -> list[ReceivedLetter]:
        return [letter for letter in self.letters if letter.receipt not in self.deleted][:limit]

    def delete(self, receipt: str) -> None:
        self.deleted.append(receipt)

    def release(self, receipt: str) -> None:
        self.released.append(receipt)


_inbox: DeadLetterInbox = MemoryInbox()


@dataclass
class MemorySegments:
    """A segment as a list, paged by offset."""

    segments: dict[str, list[str]] = field(default_factory=dict)
    errors: list[Exception] = field(default_factory=list)
    calls: int = 0

    def page(self, segment_id: str, cursor: Optional[str], limit: int) -> SegmentPage:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        if segment_id not in self.segments:
            raise NotFound(segment_id)
        start = int(cursor or 0)
        users = self.segments[segment_id][start : start + limit]
        more = start + limit < len(self.segments[segment_id])
        return SegmentPage(users, str(start + limit) if more else None)


_segments: SegmentSource = MemorySegments()


@dataclass
class MemoryPreferences:
    """Users' preferences in a dict; ``reads`` counts get calls."""

    items: dict[str, UserPreferences] = field(default_factory=dict)
    reads: int = 0

    def get(self, user_id: str) -> Optional[UserPreferences]:
        self.reads += 1
        return self.items.get(user_id)

    def put(self, preferences: UserPreferences) -> None:
        kept = self.items.get(preferences.user_id)
        self.items[preferences.user_id] = replace(preferences, suppressed=kept.suppressed if kept else frozenset())

    def put_many(self, preferences: Sequence[UserPreferences]) -> None:
        for p in preferences:
            self.put(p)

    def suppress(self, user_id: str, address: str, reason: str, at: str) -> None:
        current = self.items.get(user_id) or UserPreferences(user_id)
        self.items[user_id] = replace(current, suppressed=current.suppressed | {address})


_preference_check: PreferenceStore = MemoryPreferences()
_feedback_check: FeedbackStore = MemoryStore()
