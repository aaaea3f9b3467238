"""In-memory stand-ins for the ports, for unit tests only (component tests use moto and Kafka)."""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Optional

from notify.catalog import EVENT_TYPES
from notify.clock import iso
from notify.default_templates import seed_default_templates
from notify.digests import DigestRule, StoredDigestRule, bucket_id, due_shard
from notify.errors import (
    Conflict,
    ConnectionGone,
    FieldError,
    NotFound,
    PermanentError,
    StoreUnavailable,
    TransientError,
    ValidationFailed,
)
from notify.jobs import EventPlan, new_event_id
from notify.links import ShortLinks
from notify.models import Category, Channel, Message, NotificationJob, Priority, Status
from notify.ports import (
    BeforeRead,
    CampaignStore,
    ChannelSender,
    ConnectionPoster,
    ConnectionStore,
    DeadLetterInbox,
    DeadLetterQueue,
    DelayQueue,
    DigestReads,
    DigestRules,
    DigestStore,
    EmailSender,
    EventLog,
    FanoutPages,
    FeedbackStore,
    InboxStore,
    JobLedger,
    JobPublisher,
    LinkStore,
    PreferenceStore,
    PushSender,
    SegmentSource,
    StatusReader,
    TemplateStore,
    ThrottleRules,
    UserDirectory,
    WebhookStore,
)
from notify.records import (
    AddOutcome,
    BucketHead,
    BucketOwner,
    Campaign,
    CampaignStatus,
    Claim,
    ClaimOutcome,
    ClosedBucket,
    Connection,
    ContactSnapshot,
    DeadLetter,
    DigestMember,
    DueBucket,
    Engagement,
    EventRecord,
    InboxAction,
    InboxCounts,
    InboxFilter,
    InboxItem,
    JobRecord,
    ReceivedLetter,
    RenderedMessage,
    Run,
    SegmentPage,
    Template,
    Transition,
    UserPreferences,
    UserProfile,
    WebhookDelivery,
    WebhookEndpoint,
)
from notify.retry import RetryPolicy
from notify.services.channels import EmailChannel, InAppChannel, PushChannel
from notify.services.delivery import DeliveryService, DeliverySettings
from notify.services.digests import DigestService
from notify.services.inbox import InboxService
from notify.services.triage import Triage
from notify.services.webhook_delivery import WebhookDeliveryService
from notify.services.webhook_emitter import WebhookEmitter
from notify.throttles import CategoryThrottle, ThrottleRule, ThrottleWindow
from notify.unsubscribe import UnsubscribeLinks


@dataclass
class MemoryStore:
    events: dict[str, EventRecord] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The next transition to this status raises StoreUnavailable, once: a worker that stopped just before recording it.
    crash_on: Optional[Status] = None

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
            event_type=item.get("event_type", "t"),
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
            opens=item.get("opens", 0),
            clicks=item.get("clicks", 0),
            digest_bucket=item.get("digest_bucket"),
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
                if item["attempt"] > job.attempt:  # a stale copy
                    return Claim(ClaimOutcome.DUPLICATE, current=Status.SENT)
                return Claim(ClaimOutcome.DUPLICATE, current=status, history=tuple(item["history"]))
            expired = item.get("lease_until", 0) < ts
            if status is Status.SENDING and expired:
                item.update(token=token, lease_until=ts + lease_seconds)
                return Claim(ClaimOutcome.ABANDONED, token, status)
            if status in (Status.PROCESSING, Status.SENDING) and not expired:
                return Claim(ClaimOutcome.DUPLICATE, current=status)
        self.jobs[job.job_id] = {
            **(item or {"history": []}),
            "event_id": job.event_id,
            "event_type": job.event_type,
            "user_id": job.user_id,
            "channel": job.channel,
            "status": Status.PROCESSING,
            "attempt": job.attempt,
            "token": token,
            "lease_until": ts + lease_seconds,
        }
        if job.digest is not None:
            self.jobs[job.job_id]["digest_bucket"] = job.digest.bucket_id
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
        if status is self.crash_on:
            self.crash_on = None
            raise StoreUnavailable("DynamoDB went away")
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

    def record_engagement(self, job_id: str, counter: str, event_key: str, entry: Transition) -> Engagement:
        item = self.jobs.get(job_id)
        seen = item.setdefault("engagements_seen", set()) if item is not None else {event_key}
        if item is None or event_key in seen:
            return Engagement.DUPLICATE
        seen.add(event_key)
        item[counter] = item.get(counter, 0) + 1
        if item[counter] > 1:
            return Engagement.COUNTED
        item["history"].append(entry)
        return Engagement.FIRST


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
    asked: list[str] = field(default_factory=list)  # every user looked up, in order

    def get_user(self, user_id: str) -> UserProfile:
        self.asked.append(user_id)
        if self.errors:
            raise self.errors.pop(0)
        if user_id not in self.users:
            raise NotFound(user_id)
        return self.users[user_id]


@dataclass
class MemoryEmail:
    sent: list[tuple[str, RenderedMessage, dict[str, str]]] = field(default_factory=list)
    tags: list[dict[str, str]] = field(default_factory=list)  # of each sent email
    tracked: list[bool] = field(default_factory=list)  # of each sent email: may the provider track it
    errors: list[Exception] = field(default_factory=list)

    def send_email(
        self,
        to: str,
        message: RenderedMessage,
        headers: Optional[dict[str, str]] = None,
        tags: Optional[dict[str, str]] = None,
        *,
        tracked: bool = True,
    ) -> str:
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append((to, message, headers or {}))
        self.tags.append(tags or {})
        self.tracked.append(tracked)
        return f"msg-{len(self.sent)}"


# The fakes must satisfy the ports they stand in for (mypy checks these assignments): MemoryStore plays each of the
# status table's four roles.
_roles: tuple[EventLog, FanoutPages, JobLedger, StatusReader] = (
    MemoryStore(),
    MemoryStore(),
    MemoryStore(),
    MemoryStore(),
)
_checks: tuple[DelayQueue, JobPublisher, DeadLetterQueue, TemplateStore, UserDirectory, EmailSender] = (
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
    contact_writes: int = 0
    count_writes: int = 0  # throttle counters' conditional writes, stored or not
    before_count: Optional[Callable[[], None]] = None

    def get(self, user_id: str) -> Optional[UserPreferences]:
        self.reads += 1
        return self.items.get(user_id)

    def put(self, preferences: UserPreferences) -> None:
        kept = self.items.get(preferences.user_id)
        self.items[preferences.user_id] = replace(
            preferences, suppressed=kept.suppressed if kept else frozenset(), contact=kept.contact if kept else None
        )

    def put_many(self, preferences: Sequence[UserPreferences]) -> None:
        for p in preferences:
            self.put(p)

    def suppress(self, user_id: str, address: str, reason: str, at: str) -> None:
        current = self.items.get(user_id) or UserPreferences(user_id)
        self.items[user_id] = replace(current, suppressed=current.suppressed | {address})

    def remember_contact(self, user_id: str, snapshot: ContactSnapshot) -> None:
        self.contact_writes += 1
        self.items[user_id] = replace(self.items.get(user_id) or UserPreferences(user_id), contact=snapshot)

    def forget_contact(self, user_id: str) -> None:
        if user_id in self.items:
            self.items[user_id] = replace(self.items[user_id], contact=None)

    def count_send(
        self, user_id: str, attribute: str, seen: Optional[ThrottleWindow], window: ThrottleWindow
    ) -> tuple[bool, Optional[ThrottleWindow]]:
        """The conditional write on the counter's start and count; ``before_count`` (another worker's turn, set by a
        test) runs once first."""
        turn, self.before_count = self.before_count, None
        if turn is not None:
            turn()
        self.count_writes += 1
        current = self.items.get(user_id) or UserPreferences(user_id)
        stored = current.throttles.get(attribute)
        if (stored and (stored.started_at, stored.count)) != (seen and (seen.started_at, seen.count)):
            return False, stored
        self.items[user_id] = replace(current, throttles={**current.throttles, attribute: window})
        return True, window


_preference_check: PreferenceStore = MemoryPreferences()
_feedback_check: FeedbackStore = MemoryStore()


@dataclass
class MemoryInboxStore:
    """Users' inbox items by (user, id); counts computed from them. ``now`` is what ``get`` treats as the time."""

    items: dict[tuple[str, str], InboxItem] = field(default_factory=dict)
    now: Optional[datetime] = None
    writes: int = 0  # items stored or changed

    def put(self, item: InboxItem) -> bool:
        if (item.user_id, item.id) in self.items:
            return False
        self.items[(item.user_id, item.id)] = item
        self.writes += 1
        return True

    def get(self, user_id: str, item_id: str) -> Optional[InboxItem]:
        item = self.items.get((user_id, item_id))
        return item if item is not None and (self.now is None or _live(item, self.now)) else None

    def page(
        self, user_id: str, status: InboxFilter, limit: int, cursor: Optional[str], now: datetime
    ) -> tuple[list[InboxItem], Optional[str]]:
        start = 0
        if cursor is not None:
            owner, _, offset = cursor.partition(":")
            if owner != user_id or not offset.isdigit():
                raise ValidationFailed([FieldError("cursor", "not a cursor of this inbox")])
            start = int(offset)
        matching = [i for i in self._of(user_id, now) if _matches(i, status)]
        matching.sort(key=lambda i: i.id, reverse=True)
        end = start + limit
        return matching[start:end], f"{user_id}:{end}" if end < len(matching) else None

    def counts(self, user_id: str, now: datetime) -> InboxCounts:
        counted = [i for i in self._of(user_id, now) if i.archived_at is None]
        return InboxCounts(
            unseen=sum(i.seen_at is None for i in counted),
            unread=sum(i.read_at is None for i in counted),
            total=len(counted),
        )

    def mark(
        self,
        user_id: str,
        item_id: str,
        action: InboxAction,
        at: datetime,
        before_read: Optional[BeforeRead] = None,
    ) -> Optional[InboxItem]:
        item = self.items.get((user_id, item_id))
        if item is None or not _live(item, at):
            return None
        changed, mark = item.marked(action, iso(at))
        if mark is not None:
            if before_read is not None and "read_at" in mark.sets:
                before_read([{"job_id": item.job_id, "event_type": item.event_type}])
            self.items[(user_id, item_id)] = changed
            self.writes += 1
        return changed

    def mark_all_read(self, user_id: str, at: datetime, before_read: Optional[BeforeRead] = None) -> int:
        """In batches of two, so a test sees a failing ``before_read`` leave the later batches unread."""
        unread = [i for i in self._of(user_id, at) if i.read_at is None and i.archived_at is None]
        for start in range(0, len(unread), 2):
            batch = unread[start : start + 2]
            if before_read is not None:
                before_read([{"job_id": i.job_id, "event_type": i.event_type} for i in batch])
            for item in batch:
                self.mark(user_id, item.id, InboxAction.READ, at)
        return len(unread)

    def of(self, user_id: str) -> list[InboxItem]:
        """Every item the user has, expired or not (for assertions)."""
        return [i for (u, _), i in self.items.items() if u == user_id]

    def _of(self, user_id: str, now: datetime) -> list[InboxItem]:
        return [i for i in self.of(user_id) if _live(i, now)]


def _live(item: InboxItem, now: datetime) -> bool:
    return datetime.fromisoformat(item.expires_at) > now


def _matches(item: InboxItem, status: InboxFilter) -> bool:
    if status is InboxFilter.ARCHIVED:
        return item.archived_at is not None
    if item.archived_at is not None:
        return False
    if status is InboxFilter.UNSEEN:
        return item.seen_at is None
    if status is InboxFilter.UNREAD:
        return item.read_at is None
    return True


@dataclass
class MemoryConnections:
    """Live connections by id; ``reads`` records each read of a user's records (user, limit)."""

    connections: dict[str, Connection] = field(default_factory=dict)
    reads: list[tuple[str, int]] = field(default_factory=list)

    def add(self, connection: Connection) -> None:
        self.connections[connection.connection_id] = connection

    def remove(self, connection_id: str, user_id: Optional[str] = None) -> None:
        found = self.connections.get(connection_id)
        if found is not None and user_id in (None, found.user_id):
            del self.connections[connection_id]

    def of_user(self, user_id: str, now: datetime, limit: int) -> list[Connection]:
        """As DynamoDB's Query with Limit does: the first ``limit`` records by id, then the expired left out."""
        live = [c for c in self.records_of(user_id, limit) if datetime.fromisoformat(c.expires_at) > now]
        return sorted(live, key=lambda c: (c.connected_at, c.connection_id), reverse=True)

    def records_of(self, user_id: str, limit: int) -> list[Connection]:
        self.reads.append((user_id, limit))
        mine = sorted((c for c in self.connections.values() if c.user_id == user_id), key=lambda c: c.connection_id)
        return mine[:limit]

    def user_of(self, connection_id: str) -> Optional[str]:
        found = self.connections.get(connection_id)
        return found.user_id if found is not None else None


@dataclass
class MemoryPoster:
    """The management API: ``gone`` connections answer 410, ``errors`` fail a connection's posts and closes;
    ``closed`` lists the connections closed (DeleteConnection), which are gone from then on."""

    posted: list[tuple[str, bytes]] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)
    errors: dict[str, Exception] = field(default_factory=dict)
    closed: list[str] = field(default_factory=list)

    def post(self, connection_id: str, data: bytes) -> None:
        if connection_id in self.gone:
            raise ConnectionGone(f"{connection_id} is gone")
        if connection_id in self.errors:
            raise self.errors[connection_id]
        self.posted.append((connection_id, data))

    def close(self, connection_id: str) -> None:
        if connection_id in self.gone:
            raise ConnectionGone(f"{connection_id} is gone")
        if connection_id in self.errors:
            raise self.errors[connection_id]
        self.closed.append(connection_id)
        self.gone.add(connection_id)

    def frames(self, connection_id: Optional[str] = None) -> list[dict[str, Any]]:
        """The frames posted (to one connection, or to any), parsed."""
        return [json.loads(data) for c, data in self.posted if connection_id in (None, c)]


_in_app_checks: tuple[InboxStore, ConnectionStore, ConnectionPoster] = (
    MemoryInboxStore(),
    MemoryConnections(),
    MemoryPoster(),
)


# -- campaigns ------------------------------------------------------------------------


@dataclass
class MemoryCampaigns:
    """CampaignStore in memory, with DynamoDB's conditions: claims live beside the campaign and only a completion
    drops them, as the adapter's UpdateItems leave claim_run/claim_until alone."""

    items: dict[str, Campaign] = field(default_factory=dict)
    claims: dict[str, tuple[datetime, float]] = field(default_factory=dict)
    run_log: list[Run] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, campaign: Campaign) -> None:
        self.items[campaign.campaign_id] = copy.deepcopy(campaign)

    def get(self, campaign_id: str) -> Optional[Campaign]:
        return copy.deepcopy(self.items.get(campaign_id))

    def page(self, limit: int, cursor: Optional[str]) -> tuple[list[Campaign], Optional[str]]:
        return list(self.items.values())[:limit], None

    def _live_claim(self, campaign_id: str, at: datetime) -> bool:
        held = self.claims.get(campaign_id)
        return held is not None and held[1] >= at.timestamp()

    def save(self, campaign: Campaign, unclaimed_at: Optional[datetime] = None) -> bool:
        with self.lock:
            current = self.items.get(campaign.campaign_id)
            if current is None or current.version != campaign.version:
                return False
            if unclaimed_at is not None and self._live_claim(campaign.campaign_id, unclaimed_at):
                return False
            stored = replace(campaign, version=campaign.version + 1)
            stored.runs_count, stored.last_triggered_at = current.runs_count, current.last_triggered_at  # kept
            self.put(stored)
            return True

    def delete(self, campaign_id: str) -> None:
        self.items.pop(campaign_id, None)
        self.run_log = [r for r in self.run_log if r.campaign_id != campaign_id]

    def due(self, now: datetime, limit: int) -> list[Campaign]:
        return [
            copy.deepcopy(c)
            for c in self.items.values()
            if c.status is CampaignStatus.ACTIVE and c.next_run_at and c.next_run_at <= now
        ][:limit]

    def claim(self, campaign: Campaign, fire_time: datetime, now: datetime, lease_seconds: int) -> bool:
        with self.lock:
            current = self.items.get(campaign.campaign_id)
            if (
                current is None
                or current.version != campaign.version
                or current.status is not CampaignStatus.ACTIVE
                or current.next_run_at != campaign.next_run_at
                or self.claims.get(campaign.campaign_id, (None, 0.0))[1] >= now.timestamp()
                or (current.max_runs is not None and current.runs_count >= current.max_runs)
            ):
                return False
            self.claims[campaign.campaign_id] = (fire_time, now.timestamp() + lease_seconds)
            return True

    def complete(self, campaign: Campaign, run: Run, next_run_at: Optional[datetime], status: CampaignStatus) -> bool:
        with self.lock:
            current = self.items.get(campaign.campaign_id)
            held = self.claims.get(campaign.campaign_id)
            if current is None or current.version != campaign.version or held is None or held[0] != run.fire_time:
                return False
            current.runs_count += 1
            current.last_triggered_at = run.fire_time
            current.status, current.next_run_at = status, next_run_at
            current.updated_at, current.version = run.triggered_at, current.version + 1
            self.claims.pop(campaign.campaign_id)
            self.run_log.append(run)
            return True

    def runs(self, campaign_id: str, limit: int) -> list[Run]:
        return [r for r in reversed(self.run_log) if r.campaign_id == campaign_id][:limit]


_campaigns_check: CampaignStore = MemoryCampaigns()


# -- the worker's pipeline on the fakes above ---------------------------------------------------------------------


class DeliveryWorld:
    """The worker's pipeline on in-memory ports, on a clock the test moves (``now``): ``service`` (the
    DeliveryService) and ``triage`` (the record triage in front of it), wired as the worker's composition root
    wires them. Every unit test of the pipeline builds its world from this one.

    A test's world sets the parts it uses (a channel's port, the preferences, the links), then calls :meth:`wire`;
    a test that swaps a part calls it again.
    """

    email: Optional[EmailSender] = None
    push: Optional[PushSender] = None
    in_app: Optional[InboxService] = None
    preferences: Optional[PreferenceStore] = None
    unsubscribe: Optional[UnsubscribeLinks] = None
    short_links: Optional[ShortLinks] = None
    link_store: Optional[LinkStore] = None
    throttles: Optional[ThrottleRules] = None
    digest_rules: Optional[DigestRules] = None  # with them, the digest step on ``digest_store`` (made at wire)
    digest_store: Optional[MemoryDigestStore] = None
    digests: Optional[DigestService] = None
    webhooks: Optional[WebhookEmitter] = None  # status webhooks' emitter, given to delivery and the digest step
    webhook_delivery: Optional[WebhookDeliveryService] = None  # the triage's poster of webhook tasks
    service: DeliveryService
    triage: Triage

    def __init__(
        self,
        now: datetime,
        users: dict[str, UserProfile],
        *,
        store: Optional[MemoryStore] = None,
        max_attempts: Optional[int] = 3,
        rand: Callable[[], float] = lambda: 0.5,
    ) -> None:
        """``max_attempts``: every priority's, 10 s to 60 s apart (None: the default policies)."""
        self.now = now
        self.store = store if store is not None else MemoryStore()
        self.queue = MemoryQueue()
        self.dlq = MemoryDlq()
        self.templates = MemoryTemplates()
        seed_default_templates(self.templates, lambda: now)
        self.users = MemoryUsers(users)
        self.settings = DeliverySettings()
        if max_attempts is not None:
            policy = RetryPolicy(base_seconds=10, cap_seconds=60, max_attempts=max_attempts)
            self.settings = DeliverySettings(policies={p: policy for p in Priority})
        self.rand = rand

    def wire(self) -> None:
        """Build ``service`` and ``triage`` from the world's parts: one sender for each channel port set."""
        senders: dict[Channel, ChannelSender] = {}
        if self.email is not None:
            senders[Channel.EMAIL] = EmailChannel(self.email)
        if self.push is not None:
            senders[Channel.PUSH] = PushChannel(self.push)
        if self.in_app is not None:
            senders[Channel.WEBSOCKET] = InAppChannel(self.in_app)
        if self.digest_rules is not None:
            if self.digest_store is None:
                self.digest_store = MemoryDigestStore(self.store)
            self.digests = DigestService(
                self.digest_store, self.digest_rules, self.queue, self.users, lambda: self.now, webhooks=self.webhooks
            )
        self.service = DeliveryService(
            self.store,
            self.templates,
            self.users,
            self.queue,
            self.dlq,
            lambda: self.now,
            senders,
            settings=self.settings,
            rand=self.rand,
            preferences=self.preferences,
            unsubscribe=self.unsubscribe,
            links=self.short_links,
            link_store=self.link_store,
            throttles=self.throttles,
            digests=self.digests,
            webhooks=self.webhooks,
        )
        self.triage = Triage(
            self.service, self.dlq, lambda: self.now, digests=self.digests, webhooks=self.webhook_delivery
        )


# -- the email pipeline of user u1 at T0, which the worker's unit tests share ---------------------------------------

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class World(DeliveryWorld):
    """The pipeline at ``T0`` with an email port (``email``) and unsubscribe links, for one known user: u1 (Ada,
    English, u1@example.com). :meth:`job` is that user's email job of an event."""

    email: MemoryEmail

    def __init__(self) -> None:
        super().__init__(T0, {"u1": UserProfile("u1", email="u1@example.com", first_name="Ada", locale="en")})
        self.email = MemoryEmail()
        self.unsubscribe = UnsubscribeLinks(lambda: "test key" * 4, "https://x.io")
        self.wire()

    def job(self, event_type: str = "user_registered", **changes: object) -> NotificationJob:
        spec = EVENT_TYPES[event_type]
        plan = EventPlan(
            new_event_id(),
            spec,
            spec.sample_payload(),
            ["u1"],
            [Channel.EMAIL],
            spec.priority,
            T0,
            T0 + timedelta(days=1),
        )
        return plan.jobs()[0].model_copy(update=changes)


# -- throttle rules ---------------------------------------------------------------------------------------------


@dataclass
class MemoryThrottleRules:
    """Throttle rules by (category, channel); ``reads`` counts the worker's ``rule`` calls."""

    rules: dict[tuple[Category, Channel], CategoryThrottle] = field(default_factory=dict)
    reads: int = 0

    def rule(self, category: Category, channel: Channel) -> Optional[ThrottleRule]:
        self.reads += 1
        found = self.rules.get((category, channel))
        return found.rule if found is not None else None

    def all(self) -> list[CategoryThrottle]:
        return [self.rules[k] for k in sorted(self.rules, key=lambda k: (k[0].value, k[1].value))]

    def put(self, rule: CategoryThrottle) -> None:
        self.rules[(rule.category, rule.rule.channel)] = rule

    def delete(self, category: Category, channel: Channel) -> bool:
        return self.rules.pop((category, channel), None) is not None


_throttle_rules_check: ThrottleRules = MemoryThrottleRules()


# -- digest rules -----------------------------------------------------------------------------------------------


@dataclass
class MemoryDigestRules:
    """Digest rules by event type; ``reads`` counts the worker's ``rule`` calls."""

    rules: dict[str, StoredDigestRule] = field(default_factory=dict)
    reads: int = 0

    def rule(self, event_type: str, channel: Channel) -> Optional[DigestRule]:
        self.reads += 1
        found = self.rules.get(event_type)
        return found.rule if found is not None and channel in found.rule.channels else None

    def all(self) -> list[StoredDigestRule]:
        return [self.rules[k] for k in sorted(self.rules)]

    def put(self, rule: StoredDigestRule) -> None:
        self.rules[rule.rule.event_type] = rule

    def delete(self, event_type: str) -> bool:
        return self.rules.pop(event_type, None) is not None


_digest_rules_check: DigestRules = MemoryDigestRules()


# -- digest buckets ---------------------------------------------------------------------------------------------


@dataclass
class MemoryDigestStore:
    """Digest buckets over a MemoryStore's jobs, with DynamoDigestStore's atomicity: ``add`` writes the head, the
    member and the job's DIGESTED entry together or not at all. ``heads`` by group key; ``buckets`` members by
    bucket id; ``closed_buckets`` by bucket id; ``adds`` counts calls."""

    jobs: MemoryStore
    heads: dict[str, dict[str, Any]] = field(default_factory=dict)
    buckets: dict[str, dict[str, DigestMember]] = field(default_factory=dict)
    closed_buckets: dict[str, ClosedBucket] = field(default_factory=dict)
    due_index: dict[str, tuple[DueBucket, bool]] = field(default_factory=dict)  # bucket id → (entry, swept)
    adds: int = 0

    def due(
        self, shard: int, until: datetime, after: Optional[datetime] = None, swept_only: bool = False
    ) -> list[DueBucket]:
        return [
            d
            for d, swept in self.due_index.values()
            if due_shard(d.group_key) == shard
            and datetime.fromisoformat(d.flush_at) <= until
            and (after is None or datetime.fromisoformat(d.flush_at) > after)
            and (swept or not swept_only)
        ]

    def head(self, group_key: str) -> Optional[BucketHead]:
        item = self.heads.get(group_key)
        if item is None:
            return None
        return BucketHead(group_key, item["gen"], item.get("n", 0), item.get("flush_at"))

    def add(
        self,
        head: BucketHead,
        owner: BucketOwner,
        member: DigestMember,
        job: NotificationJob,
        token: str,
        now: datetime,
        detail: dict[str, Any],
        swept: bool = False,
    ) -> tuple[AddOutcome, int]:
        self.adds += 1
        item = self.heads.get(head.group_key)
        if item is not None and item["gen"] != head.generation:
            return AddOutcome.CLOSED, 0
        bucket = bucket_id(head.group_key, head.generation)
        job_item = self.jobs.jobs.get(job.job_id)
        if job_item is None or job_item.get("token") != token or member.job_id in self.buckets.get(bucket, {}):
            return AddOutcome.NOT_OURS, 0
        item = item or {"gen": head.generation}
        item.setdefault("flush_at", head.flush_at)
        item.setdefault("first_at", member.occurred_at)
        item.update(n=item.get("n", 0) + 1, last_at=member.occurred_at, owner=owner)
        self.heads[head.group_key] = item
        self.buckets.setdefault(bucket, {})[member.job_id] = member
        if head.count == 0 and head.flush_at is not None:
            self.due_index[bucket] = (DueBucket(head.group_key, head.generation, head.flush_at), swept)
        job_item.update(status=Status.DIGESTED, token=None)
        job_item["history"].append(Transition(Status.DIGESTED, iso(now), job.attempt, None, detail))
        return AddOutcome.ADDED, head.count + 1

    def close(self, group_key: str, generation: int, now: datetime) -> Optional[ClosedBucket]:
        bucket = bucket_id(group_key, generation)
        item = self.heads.get(group_key)
        if item is None or item["gen"] < generation:
            return None
        if item["gen"] > generation:
            return self.closed_buckets.get(bucket)
        if not item.get("n"):
            return None
        times = sorted(m.occurred_at for m in self.buckets[bucket].values())
        closed = ClosedBucket(bucket, item["owner"], item["n"], times[0], times[-1], iso(now))
        self.closed_buckets[bucket] = closed
        self.due_index.pop(bucket, None)
        self.heads[group_key] = {"gen": generation + 1, "owner": item["owner"]}
        return closed

    def members(self, bucket_id: str, limit: int) -> list[DigestMember]:
        found = sorted(self.buckets.get(bucket_id, {}).values(), key=lambda m: (m.occurred_at, m.job_id))
        return found[:limit]

    def closed(self, bucket_id: str) -> Optional[ClosedBucket]:
        return self.closed_buckets.get(bucket_id)

    def member_page(
        self, bucket_id: str, limit: int, cursor: Optional[str] = None
    ) -> tuple[list[DigestMember], Optional[str]]:
        """Cursors are ``<bucket id>@<offset>``: another bucket's, or anything else, is a 422 on ``cursor``."""
        start = 0
        if cursor is not None:
            bucket, _, offset = cursor.rpartition("@")
            if bucket != bucket_id or not offset.isdigit():
                raise ValidationFailed([FieldError("cursor", "not a cursor of this digest's members")])
            start = int(offset)
        found = self.members(bucket_id, start + limit + 1)[start:]
        more = len(found) > limit
        return found[:limit], f"{bucket_id}@{start + limit}" if more else None


_digest_store_check: DigestStore = MemoryDigestStore(MemoryStore())
_digest_reads_check: DigestReads = MemoryDigestStore(MemoryStore())


# -- status webhooks --------------------------------------------------------------------------------------------


@dataclass
class MemoryWebhookStore:
    """Webhook endpoints by id and every recorded attempt. Deliveries come newest first (by ``at``, then message id
    and attempt, as DynamoWebhookStore's sort key orders them); cursors are ``<webhook id>@<offset>``: another
    endpoint's, or anything else, is a 422 on ``cursor``."""

    endpoints: dict[str, WebhookEndpoint] = field(default_factory=dict)
    recorded: list[WebhookDelivery] = field(default_factory=list)

    def put(self, endpoint: WebhookEndpoint) -> None:
        self.endpoints[endpoint.webhook_id] = endpoint

    def get(self, webhook_id: str) -> Optional[WebhookEndpoint]:
        return self.endpoints.get(webhook_id)

    def all(self) -> list[WebhookEndpoint]:
        return sorted(self.endpoints.values(), key=lambda e: (e.created_at, e.webhook_id))

    def delete(self, webhook_id: str) -> bool:
        return self.endpoints.pop(webhook_id, None) is not None

    def change(self, webhook_id: str, expected_updated_at: str, fields: Mapping[str, Any]) -> None:
        endpoint = self.endpoints.get(webhook_id)
        if endpoint is None:
            raise NotFound(f"no webhook {webhook_id}")
        if endpoint.updated_at != expected_updated_at:
            raise Conflict(f"webhook {webhook_id} changed meanwhile")
        self.endpoints[webhook_id] = replace(endpoint, **fields)

    def mark_failing(self, webhook_id: str, since: str) -> None:
        endpoint = self.endpoints.get(webhook_id)
        if endpoint is not None and endpoint.failing_since is None:
            self.endpoints[webhook_id] = replace(endpoint, failing_since=since)

    def mark_recovered(self, webhook_id: str) -> None:
        endpoint = self.endpoints.get(webhook_id)
        if endpoint is not None:
            self.endpoints[webhook_id] = replace(endpoint, failing_since=None)

    def disable(self, webhook_id: str, reason: str, at: str) -> None:
        endpoint = self.endpoints.get(webhook_id)
        if endpoint is not None and endpoint.enabled:
            self.endpoints[webhook_id] = replace(endpoint, enabled=False, disabled_reason=reason, updated_at=at)

    def record(self, delivery: WebhookDelivery) -> None:
        self.recorded.append(delivery)

    def deliveries(
        self, webhook_id: str, limit: int, cursor: Optional[str]
    ) -> tuple[list[WebhookDelivery], Optional[str]]:
        start = 0
        if cursor is not None:
            owner, _, offset = cursor.rpartition("@")
            if owner != webhook_id or not offset.isdigit():
                raise ValidationFailed([FieldError("cursor", "not a cursor of this webhook's deliveries")])
            start = int(offset)
        mine = [d for d in self.recorded if d.webhook_id == webhook_id]
        mine.sort(key=lambda d: (d.at, d.message_id, str(d.attempt)), reverse=True)
        page = mine[start : start + limit]
        return page, f"{webhook_id}@{start + limit}" if len(mine) > start + limit else None


_webhook_store_check: WebhookStore = MemoryWebhookStore()
