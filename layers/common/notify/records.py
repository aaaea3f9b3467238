"""Records: the plain data the domain and its ports exchange (no behaviour beyond small conversions)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from enum import Enum
from typing import Any, Optional
from zoneinfo import ZoneInfo

from notify.clock import iso
from notify.models import Category, Channel, Contact, Priority, Status
from notify.throttles import ThrottleWindow


@dataclass(frozen=True)
class SegmentPage:
    """One page of a segment: its user ids and the cursor of the next page (None on the last)."""

    user_ids: list[str]
    next_cursor: Optional[str]


@dataclass(frozen=True)
class DeadLetter:
    """A job (or a raw record that is not one) that will not be delivered, and why."""

    reason: str
    error: str
    attempt: int
    job: Optional[dict[str, Any]] = None
    raw: Optional[str] = None  # a record that is not a job, as text
    source: str = ""
    failed_at: str = ""
    raw_base64: Optional[str] = None  # ... or base64 when it is not UTF-8
    raw_size: Optional[int] = None  # its size in bytes (raw is cut at notify.services.triage.MAX_RAW_BYTES)


@dataclass(frozen=True)
class ReceivedLetter:
    """A message read from the dead-letter queue; ``receipt`` deletes it."""

    message_id: str
    receipt: str
    body: dict[str, Any]
    sent_at: str
    receive_count: int


@dataclass(frozen=True)
class UserProfile:
    """A recipient as the Auth service describes them."""

    id: str
    email: Optional[str] = None
    phone: Optional[str] = None
    first_name: Optional[str] = None
    last_name: Optional[str] = None
    locale: Optional[str] = None
    timezone: Optional[str] = None
    push_endpoints: tuple[str, ...] = ()

    def contact(self) -> Contact:
        """Where to reach the user, as a job's Contact: email, phone and push endpoints."""
        return Contact(email=self.email, phone=self.phone, push_endpoints=list(self.push_endpoints))

    def template_context(self) -> dict[str, Any]:
        """The profile as templates see it (``user``): id, email, names, locale and timezone; no phone or endpoints."""
        return {
            "id": self.id,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "locale": self.locale,
            "timezone": self.timezone,
        }


@dataclass(frozen=True)
class ContactSnapshot:
    """A user's profile as the Auth service last answered it, and when (ISO 8601, UTC): the user's *last known
    contact*, kept on their preferences item so that an Auth outage does not stop their notifications."""

    profile: UserProfile
    taken_at: str


# How long a job's item, its event's record and its short links are kept (DynamoDB's TTL deletes them after).
JOB_RETENTION = timedelta(days=90)


@dataclass(frozen=True)
class ShortLink:
    """A short link (``notify.links``): its code, the http(s) URL it redirects to and until when (ISO 8601, UTC).

    A link a template made names its job and user, and its clicks are counted on the job's item (one write a
    click); a link made through the API (``POST /api/v1/links``) names the key that made it (``created_by``) and
    counts its own ``clicks``, the first at ``first_click_at``.
    """

    code: str
    url: str
    expires_at: str
    job_id: Optional[str] = None
    user_id: Optional[str] = None
    created_by: Optional[str] = None
    created_at: Optional[str] = None
    clicks: int = 0
    first_click_at: Optional[str] = None


@dataclass(frozen=True)
class Template:
    """One version of the template for an event type, channel and locale."""

    event_type: str
    channel: Channel
    locale: str
    version: int
    template_id: str
    subject: Optional[str] = None
    body_text: Optional[str] = None
    body_html: Optional[str] = None
    title: Optional[str] = None
    body: Optional[str] = None
    created_at: str = ""
    deleted: bool = False


@dataclass(frozen=True)
class RenderedMessage:
    """A template rendered for one recipient."""

    template_id: str
    template_version: int
    locale: str
    subject: Optional[str] = None
    text: Optional[str] = None
    html: Optional[str] = None
    title: Optional[str] = None
    body: Optional[str] = None


class ClaimOutcome(str, Enum):
    """What :meth:`notify.ports.JobLedger.claim` found (its docstring says what each means for the caller)."""

    CLAIMED = "claimed"
    DUPLICATE = "duplicate"  # already terminal, or owned by a live lease, or a stale attempt
    ABANDONED = "abandoned"  # a crashed worker left it mid-send: outcome unknown


@dataclass(frozen=True)
class Claim:
    """The result of a claim: the outcome, the lease token when this copy owns the job, and the status seen."""

    outcome: ClaimOutcome
    token: str = ""
    current: Optional[Status] = None
    # A DUPLICATE of a finished job (not a stale copy of an older attempt): the job's history as found, so the copy
    # can queue again the status webhooks its first delivery may have failed to queue.
    history: tuple[Transition, ...] = ()


# A job's history holds at most this many entries; the store counts the ones it left out (``history_omitted``), so
# nothing a recipient or a provider repeats can grow the job's item towards DynamoDB's 400 KB.
MAX_HISTORY = 100


class Engagement(str, Enum):
    """What recording one open or click did: the first of its kind (a history entry), a later one (counted),
    or one applied before (the provider or SNS delivered it again: nothing)."""

    FIRST = "first"
    COUNTED = "counted"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Transition:
    """One entry of a job's history."""

    status: Status
    at: str
    attempt: int
    error: Optional[str] = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobRecord:
    """A job's current state and full history as stored."""

    job_id: str
    event_id: str
    event_type: str
    user_id: str
    channel: Channel
    status: Status
    attempt: int
    created_at: str
    updated_at: str
    last_error: Optional[str]
    history: list[Transition]
    send_after: Optional[str] = None
    expires_at: Optional[str] = None
    template_version: Optional[int] = None
    provider_message_id: Optional[str] = None
    opens: int = 0  # the email's opens and clicks as SES reported them; the history keeps the first of each
    clicks: int = 0
    history_omitted: int = 0  # entries not recorded because the history was full (MAX_HISTORY)
    digest_bucket: Optional[str] = None  # a digest's own job: the bucket whose members it sends


@dataclass(frozen=True)
class EventRecord:
    """One accepted event: enough to re-derive every job id it produced, and (from this version on) what its
    templates render with: the payload, the event type whose templates render it and the locale it asked for,
    so an operator can see a job's message as rendered. Fan-out page records carry none of the three."""

    event_id: str
    event_type: str
    user_ids: list[str]
    channels: list[Channel]
    priority: str
    created_at: str
    expires_at: str
    send_after: Optional[str] = None
    segment_id: Optional[str] = None
    page: Optional[int] = None  # set on the record of one fan-out page
    payload: Optional[dict[str, Any]] = None  # as its templates see it (a campaign run's: the campaign's)
    template_key: Optional[str] = None  # the event type whose templates render it, when not its own
    locale: Optional[str] = None  # the event's locale override, if it had one
    # A SHA-256 of its inline recipients' contacts (recipients.users), not the contacts themselves: the same event
    # id sent again with other contacts is a conflict. None without inline recipients.
    contacts_digest: Optional[str] = None


class CampaignStatus(str, Enum):
    """ACTIVE fires on its cron; PAUSED does not until resumed; INACTIVE is done (its max_runs are used)."""

    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    INACTIVE = "INACTIVE"


@dataclass
class Campaign:
    """A cron-scheduled send of one event type to a segment, as stored."""

    campaign_id: str
    name: str
    cron: str
    timezone: str
    segment_id: str
    event_type: str
    payload: dict[str, Any]
    channels: Optional[list[Channel]]
    priority: Optional[Priority]
    max_runs: Optional[int]
    status: CampaignStatus
    runs_count: int
    last_triggered_at: Optional[datetime]
    next_run_at: Optional[datetime]
    created_at: datetime
    updated_at: datetime
    version: int = 0  # every write but a run's claim adds one; a write is conditional on the version it read

    def view(self) -> dict[str, Any]:
        """The public JSON shape."""
        return {
            "campaign_id": self.campaign_id,
            "name": self.name,
            "cron": self.cron,
            "timezone": self.timezone,
            "segment_id": self.segment_id,
            "event_type": self.event_type,
            "payload": self.payload,
            "channels": [c.value for c in self.channels] if self.channels else None,
            "priority": self.priority.value if self.priority else None,
            "max_runs": self.max_runs,
            "status": self.status.value,
            "runs_count": self.runs_count,
            "last_triggered_at": iso(self.last_triggered_at) if self.last_triggered_at else None,
            "next_run_at": iso(self.next_run_at) if self.next_run_at else None,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass(frozen=True)
class Run:
    """One firing of a campaign: when it was due, and the event it produced."""

    campaign_id: str
    fire_time: datetime
    run_id: str
    event_id: str
    triggered_at: datetime


@dataclass(frozen=True)
class UserPreferences:
    """What a user agreed to receive, as stored (a user never seen has everything on and no quiet hours)."""

    user_id: str
    channels: dict[str, bool] = field(default_factory=dict)  # channel → on
    categories: dict[str, dict[str, bool]] = field(default_factory=dict)  # category → channel → on
    quiet_hours: Optional[dict[str, str]] = None  # start, end (HH:MM), timezone (IANA)
    updated_at: Optional[str] = None
    # Addresses of this user that hard-bounced or complained: no email goes to them (set by feedback, not by PUT).
    suppressed: frozenset[str] = frozenset()
    # The user's last known contact, kept by the worker (never by PUT, never shown in the document).
    contact: Optional[ContactSnapshot] = None
    # The user's throttle counters by attribute (notify.throttles.attribute_name), kept by the worker (never shown).
    throttles: dict[str, ThrottleWindow] = field(default_factory=dict)

    def allows(self, channel: Channel, category: Category) -> bool:
        """True unless the channel is off, globally or for the category; account notifications always pass."""
        if category is Category.ACCOUNT:
            return True
        if not self.channels.get(channel.value, True):
            return False
        return self.categories.get(category.value, {}).get(channel.value, True)

    def quiet_until(self, now: datetime, category: Category) -> Optional[datetime]:
        """When the quiet hours that ``now`` falls in end (UTC), or None if ``now`` is outside them.

        Wall-clock times in the user's zone: across midnight (22:00–08:00) and over DST changes the end is the
        first instant the zone's clock shows ``end`` after ``now`` (a skipped ``end`` on a spring-forward night
        is read as the instant after the gap). Account notifications are never held.
        """
        if category is Category.ACCOUNT or not self.quiet_hours:
            return None
        zone = ZoneInfo(self.quiet_hours["timezone"])
        local = now.astimezone(zone)
        start, end = (time.fromisoformat(self.quiet_hours[k]) for k in ("start", "end"))
        clock = local.time().replace(tzinfo=None)
        inside = start <= clock < end if start < end else (clock >= start or clock < end)
        if not inside:
            return None
        day = local.date() if clock < end else local.date() + timedelta(days=1)
        wall = datetime.combine(day, end, tzinfo=zone)
        # A wall time in a spring-forward gap (fold 0) converts to the first real instant after the gap.
        return wall.astimezone(UTC)

    def document(self) -> dict[str, Any]:
        """The public JSON shape (GET /api/v1/users/{user_id}/preferences)."""
        return {
            "user_id": self.user_id,
            "channels": {c.value: self.channels.get(c.value, True) for c in Channel},
            "categories": {
                cat.value: {c.value: self.categories.get(cat.value, {}).get(c.value, True) for c in Channel}
                for cat in Category
            },
            "quiet_hours": self.quiet_hours,
            "suppressed": sorted(self.suppressed),
            "updated_at": self.updated_at,
        }


class InboxFilter(str, Enum):
    """Which of a user's inbox items a listing shows: ``all`` is every item not archived."""

    ALL = "all"
    UNSEEN = "unseen"
    UNREAD = "unread"
    ARCHIVED = "archived"


class InboxAction(str, Enum):
    """What a user can do to one inbox item (``read`` also marks it seen)."""

    SEEN = "seen"
    READ = "read"
    UNREAD = "unread"
    ARCHIVE = "archive"


@dataclass(frozen=True)
class InboxMark:
    """What one action does to an inbox item: the flags it sets to the action's moment and the flags it clears
    (names of :class:`InboxItem` fields, which are also the stored attributes' names), and what it adds to each of
    the user's :class:`InboxCounts` (negative: takes away)."""

    sets: tuple[str, ...] = ()
    clears: tuple[str, ...] = ()
    unseen: int = 0
    unread: int = 0
    total: int = 0


def inbox_mark(action: InboxAction, *, seen: bool, read: bool, archived: bool) -> Optional[InboxMark]:
    """The inbox's one mark rule: what ``action`` does to an item with these flags, or None if nothing.

    Reading also marks seen; the first ``seen_at`` and ``read_at`` are kept (marking again changes nothing);
    unread clears ``read_at`` only. The counts cover the items not archived: archiving takes the item out of each
    count it was in, and a mark of an archived item changes its flags but no count.
    """
    counted = 0 if archived else 1
    if action is InboxAction.SEEN:
        return None if seen else InboxMark(sets=("seen_at",), unseen=-counted)
    if action is InboxAction.READ:
        if seen and read:
            return None
        sets = (() if read else ("read_at",)) + (() if seen else ("seen_at",))
        return InboxMark(sets=sets, unread=-counted * (not read), unseen=-counted * (not seen))
    if action is InboxAction.UNREAD:
        return InboxMark(clears=("read_at",), unread=counted) if read else None
    if archived:
        return None
    return InboxMark(sets=("archived_at",), total=-1, unread=-(not read), unseen=-(not seen))


@dataclass(frozen=True)
class InboxItem:
    """One in-app notification in a user's inbox (the public shape is :meth:`document`).

    ``id`` sorts by creation time and is derived from the job, so a redelivered job finds its item again.
    """

    id: str
    user_id: str
    job_id: str
    event_type: str
    created_at: str
    expires_at: str
    title: Optional[str] = None
    body: Optional[str] = None
    data: dict[str, Any] = field(default_factory=dict)
    seen_at: Optional[str] = None
    read_at: Optional[str] = None
    archived_at: Optional[str] = None

    def document(self) -> dict[str, Any]:
        """The item as the inbox API and the ``notification`` frame show it."""
        return {
            "id": self.id,
            "job_id": self.job_id,
            "event_type": self.event_type,
            "title": self.title,
            "body": self.body,
            "data": self.data,
            "created_at": self.created_at,
            "seen_at": self.seen_at,
            "read_at": self.read_at,
            "archived_at": self.archived_at,
        }

    def marked(self, action: InboxAction, at: str) -> tuple[InboxItem, Optional[InboxMark]]:
        """The item after ``action`` at the moment ``at`` (by :func:`inbox_mark`) and what the action did; the item
        itself and None if the action changes nothing."""
        mark = inbox_mark(action, seen=bool(self.seen_at), read=bool(self.read_at), archived=bool(self.archived_at))
        if mark is None:
            return self, None
        flags = {"seen_at": self.seen_at, "read_at": self.read_at, "archived_at": self.archived_at}
        flags.update({name: at for name in mark.sets})
        flags.update({name: None for name in mark.clears})
        return replace(self, seen_at=flags["seen_at"], read_at=flags["read_at"], archived_at=flags["archived_at"]), mark


@dataclass(frozen=True)
class InboxCounts:
    """A user's badge numbers over the items not archived (and not expired)."""

    unseen: int = 0
    unread: int = 0
    total: int = 0


@dataclass(frozen=True)
class InboxPage:
    """One page of a user's inbox, newest first, the cursor of the next page, and the user's counts."""

    items: list[InboxItem]
    next_cursor: Optional[str]
    counts: InboxCounts


@dataclass(frozen=True)
class Connection:
    """A live WebSocket connection of a user (API Gateway closes it after 2 hours at most)."""

    connection_id: str
    user_id: str
    connected_at: str
    expires_at: str


@dataclass(frozen=True)
class InAppDelivery:
    """What storing and pushing one in-app notification did, for the job's ``SENT`` history entry."""

    item_id: str
    stored: bool  # False: the item was there already (a redelivered job), so nothing was pushed again
    reached: tuple[str, ...] = ()  # connections the frame was posted to
    gone: tuple[str, ...] = ()  # connections that answered 410 Gone (removed)
    failed: dict[str, str] = field(default_factory=dict)  # connection → error (the item waits in the inbox)


@dataclass(frozen=True)
class Sent:
    """What a channel sender did with one job: the provider's message id (several, comma-separated, for a push to
    several endpoints; the inbox item's id in-app) and what the job's ``SENT`` history entry records about it."""

    provider_id: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueDepth:
    """How many messages a queue holds (SQS's approximate counts): ready to receive, received and not yet
    deleted (in flight), and waiting out a delay."""

    visible: int
    in_flight: int
    delayed: int


# -- digests (notify.digests) ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BucketHead:
    """A digest group's open bucket as stored: its generation, how many members it holds (0: none yet, the next
    member opens it) and when it is due (None until its first member)."""

    group_key: str
    generation: int
    count: int = 0
    flush_at: Optional[str] = None


@dataclass(frozen=True)
class DigestMember:
    """One job collected into a bucket: its id, when its event occurred (ISO 8601) and its payload."""

    job_id: str
    occurred_at: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class BucketOwner:
    """Whose bucket it is: the user, event type and channel, the rule's ``max_items`` when it was opened, and the
    newest member's inline contact (``recipients.users``) as JSON, if its members carried one: the digest is sent
    to it, as they would have been."""

    user_id: str
    event_type: str
    channel: str
    max_items: int
    contact: Optional[str] = None


class AddOutcome(str, Enum):
    """What adding a member did: ADDED (the job is DIGESTED in the bucket), CLOSED (that generation is no longer the
    open one: read the head again), NOT_OURS (the job's lease is gone: another worker has it)."""

    ADDED = "added"
    CLOSED = "closed"
    NOT_OURS = "not_ours"


@dataclass(frozen=True)
class DueBucket:
    """An open bucket in the due index (a window too long for the delay queue): its group, generation and time."""

    group_key: str
    generation: int
    flush_at: str


@dataclass(frozen=True)
class ClosedBucket:
    """A bucket that was closed for sending: its members' count, first and last times, and its owner."""

    bucket_id: str
    owner: BucketOwner
    count: int
    first_at: str
    last_at: str
    closed_at: str


class WebhookOutcome(str, Enum):
    """How one status webhook attempt ended: DELIVERED (a 2xx), GONE (410: the endpoint is to be disabled), RETRY
    (anything else: no answer in time, no connection, a TLS failure, a 3xx (never followed), 429, 5xx, another
    status)."""

    DELIVERED = "delivered"
    GONE = "gone"
    RETRY = "retry"


@dataclass(frozen=True)
class WebhookAttempt:
    """One POST of a status webhook: its outcome, the status code (None without an answer), how long the answer
    took in milliseconds, and a short error (None on a 2xx) fit to show the endpoint's owner."""

    outcome: WebhookOutcome
    status_code: Optional[int]
    latency_ms: int
    error: Optional[str] = None


@dataclass(frozen=True)
class WebhookEndpoint:
    """A status webhook endpoint (issue 24): where to POST, which message types, its secrets (the current one first;
    the one before it while ``previous_until`` has not passed, so both sign during a rotation), whether it is
    ``enabled`` (else ``disabled_reason``: ``gone`` after a 410, ``failing`` after 24 h of failures, ``by_user``), and
    since when its deliveries have failed without a success in between (None: the last one succeeded)."""

    webhook_id: str
    url: str
    events: tuple[str, ...]
    secrets: tuple[str, ...]
    created_at: str
    updated_at: str
    description: Optional[str] = None
    enabled: bool = True
    disabled_reason: Optional[str] = None
    previous_until: Optional[str] = None
    failing_since: Optional[str] = None


@dataclass(frozen=True)
class WebhookDelivery:
    """One attempt as an endpoint's deliveries list shows it: when, the message (id and type), its attempt number,
    the outcome, the status code, the latency and a short error."""

    webhook_id: str
    at: str
    message_id: str
    message_type: str
    attempt: int
    outcome: WebhookOutcome
    status_code: Optional[int]
    latency_ms: int
    error: Optional[str] = None
