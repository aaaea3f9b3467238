"""Ports: every interface the domain needs from the outside world. Adapters implement them.

Records (the data these methods take and return) are in :mod:`notify.records`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Optional, Protocol

from notify.digests import DigestRule, StoredDigestRule
from notify.models import AcceptedEvent, Category, Channel, Message, NotificationJob, Status
from notify.records import (
    AddOutcome,
    BucketHead,
    BucketOwner,
    Campaign,
    CampaignStatus,
    Claim,
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
    QueueDepth,
    ReceivedLetter,
    RenderedMessage,
    Run,
    SegmentPage,
    Sent,
    ShortLink,
    Template,
    Transition,
    UserPreferences,
    UserProfile,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from notify.throttles import CategoryThrottle, ThrottleRule, ThrottleWindow
from notify.webhooks import Target


class JobPublisher(Protocol):
    """The jobs topic (Kafka, acks=all, keyed by user so one user's jobs stay in order)."""

    def publish(self, jobs: Sequence[Message]) -> None:
        """Return once every message is acknowledged by the broker; raise TransientError if any is not.

        After an error some messages may have landed: callers make them idempotent (deterministic job ids).
        """
        ...


class DelayQueue(Protocol):
    """The SQS delay queue: retries, ``send_after`` hops, deferrals and the Kafka-down fallback."""

    def enqueue(self, jobs: Sequence[Message], delay_seconds: int = 0) -> None:
        """Queue the messages, visible after ``delay_seconds`` (at most 900).

        Raises TransientError if SQS refused any of them.
        """
        ...


class SegmentSource(Protocol):
    """Segments of users: static ones in DynamoDB or dynamic ones the Auth service answers."""

    def page(self, segment_id: str, cursor: Optional[str], limit: int) -> SegmentPage:
        """Up to ``limit`` user ids from ``cursor`` (None: the start) and the cursor of the next page (None: last).

        Raises NotFound for an unknown segment, TransientError when the source is down.
        """
        ...


class DeadLetterQueue(Protocol):
    """The write side of the DLQ: where every job that will not be delivered ends, with its reason."""

    def send(self, letter: DeadLetter) -> None:
        """Store the letter; raise TransientError (retry) or PermanentError (the queue refused its content)."""
        ...


class DeadLetterInbox(Protocol):
    """The read side of the DLQ, for operators (list and redrive)."""

    def receive(self, limit: int, visibility_seconds: int) -> list[ReceivedLetter]:
        """Up to ``limit`` distinct letters, hidden from other readers for ``visibility_seconds``."""
        ...

    def delete(self, receipt: str) -> None:
        """Remove a received letter for good (its job was queued again, or it is no longer needed)."""
        ...

    def release(self, receipt: str) -> None:
        """Make a received letter visible again now (it was not acted on)."""
        ...


class QueueStats(Protocol):
    """How full one queue is, for operators (the console's overview)."""

    def depth(self) -> QueueDepth:
        """The queue's approximate counts; TransientError when they cannot be read."""
        ...


class UserDirectory(Protocol):
    """The Auth service's users."""

    def get_user(self, user_id: str) -> UserProfile:
        """The user's profile; NotFound if unknown, TransientError when unreachable, PermanentError on nonsense."""
        ...


class TemplateStore(Protocol):
    """Versioned templates by (event type, channel, locale). A deleted key's newest version is a tombstone."""

    def latest(self, event_type: str, channel: Channel, locale: str) -> Optional[Template]:
        """The newest version, tombstone included (check ``deleted``); None if the key never existed."""
        ...

    def version(self, event_type: str, channel: Channel, locale: str, version: int) -> Optional[Template]:
        """One version exactly, or None."""
        ...

    def versions(self, event_type: str, channel: Channel, locale: str) -> list[Template]:
        """Every version of the key, newest first."""
        ...

    def keys(self) -> list[Template]:
        """The newest version of every key."""
        ...

    def save(self, template: Template) -> Template:
        """Store the next version of the key (its number assigned here) and return it as stored."""
        ...


class EmailSender(Protocol):
    """An email provider (SES v2). One call is one attempt: the worker owns retries."""

    def send_email(
        self,
        to: str,
        message: RenderedMessage,
        headers: Optional[dict[str, str]] = None,
        tags: Optional[dict[str, str]] = None,
        *,
        tracked: bool = True,
    ) -> str:
        """Send one email and return the provider's message id.

        ``headers`` are added to the message; ``tags`` (name to value, letters, digits, ``_-.@``) travel with
        the send to the provider's own events (SES's ``mail.tags``), so a delivery or bounce leads to its job.
        ``tracked=False``: the provider must not track opens or rewrite links for clicks (account mail, whose
        links carry secrets); its delivery, bounce and complaint events still come back.
        Raises TransientError (nothing was sent: retry), PermanentError (never retry) or OutcomeUnknown (the
        request went out and no answer came back: never retry).
        """
        ...


class PushSender(Protocol):
    """A push provider (SNS mobile endpoints). One call is one attempt."""

    def send_push(self, endpoint: str, message: RenderedMessage, data: dict[str, Any]) -> str:
        """Publish to one endpoint and return the provider's message id; errors as :meth:`EmailSender.send_email`."""
        ...


class SendAttempt(Protocol):
    """One attempt at a job's provider calls, as the delivery pipeline hands it to a :class:`ChannelSender`."""

    @property
    def unsubscribe_link(self) -> Optional[str]:
        """The one-click unsubscribe link the message carries (an email that is not account mail), else None."""
        ...

    @property
    def pushed(self) -> dict[str, str]:
        """Push endpoints done (endpoint → message id), by earlier attempts (``job.pushed``) and by this one. A sender
        adds each endpoint once it is done, so what it did survives an error raised after it (the job's retry and
        its dead letter skip those endpoints)."""
        ...

    def time_left(self) -> bool:
        """True while a provider call started now would end inside the claim's lease."""
        ...

    def before_call(self) -> None:
        """Raise TransientError if a provider call started now could outlive the claim's lease (the rest retries)."""
        ...


class ChannelSender(Protocol):
    """Sends a rendered message on one channel (``notify.services.channels``: email, push, in-app)."""

    def send(self, job: NotificationJob, profile: UserProfile, message: RenderedMessage, attempt: SendAttempt) -> Sent:
        """Send ``message`` to ``profile``'s address on the job's channel, each provider call after
        ``attempt.before_call()``. Raises TransientError (retry), PermanentError (no such address, refused for good)
        or OutcomeUnknown (a request went out and no answer came back: never retry)."""
        ...


# Told the jobs (``{"job_id", "event_type"}``) of inbox items about to be marked read, before the write (InboxStore).
BeforeRead = Callable[[list[dict[str, str]]], None]


class InboxStore(Protocol):
    """Users' in-app inboxes (DynamoDB, partitioned by user). Every call that cannot reach the store raises
    StoreUnavailable; items past their ``expires_at`` are never returned or counted, even before TTL deletes them.
    """

    def put(self, item: InboxItem) -> bool:
        """Store a new item unless one with its ``id`` exists. True: stored now; False: it was there already."""
        ...

    def get(self, user_id: str, item_id: str) -> Optional[InboxItem]:
        """One item of the user's, or None (unknown, another user's, or expired)."""
        ...

    def page(
        self, user_id: str, status: InboxFilter, limit: int, cursor: Optional[str], now: datetime
    ) -> tuple[list[InboxItem], Optional[str]]:
        """Up to ``limit`` of the user's items matching ``status``, newest first, and the next page's cursor.

        Raises ValidationFailed (on ``cursor``) for a cursor that is not one this store made for this user.
        """
        ...

    def counts(self, user_id: str, now: datetime) -> InboxCounts:
        """The user's unseen, unread and total counts (exact, read after every change)."""
        ...

    def mark(
        self,
        user_id: str,
        item_id: str,
        action: InboxAction,
        at: datetime,
        before_read: Optional[BeforeRead] = None,
    ) -> Optional[InboxItem]:
        """Apply ``action`` to one item and return it as stored now; None if the user has no such item.

        Idempotent: marking a read item read again changes nothing (and keeps its first ``read_at``). When the action
        reads an unread item, ``before_read`` is called with its job (``{"job_id", "event_type"}``) before the write;
        if it raises, nothing is written and the error propagates.
        """
        ...

    def mark_all_read(self, user_id: str, at: datetime, before_read: Optional[BeforeRead] = None) -> int:
        """Mark every unread item not archived read (and seen); return how many changed. ``before_read`` is called
        with the jobs (``{"job_id", "event_type"}``) of each batch of items before the write that marks them; if it
        raises, that batch and the ones after it stay unread and the error propagates."""
        ...


class ConnectionStore(Protocol):
    """Live WebSocket connections by user (DynamoDB, kept until $disconnect, a 410 Gone, or the 2-hour TTL)."""

    def add(self, connection: Connection) -> None:
        """Record a connection accepted at $connect."""
        ...

    def remove(self, connection_id: str, user_id: Optional[str] = None) -> None:
        """Forget a connection (at $disconnect the user is looked up; after a 410 the caller knows it)."""
        ...

    def of_user(self, user_id: str, now: datetime, limit: int) -> list[Connection]:
        """At most ``limit`` of the user's connections that have not expired, newest first.

        One bounded read whatever the user's records hold: with more than ``limit`` records, which ones are read is
        the store's choice, not necessarily the newest ($connect keeps a user's records at the limit, so in practice
        every live one is read).
        """
        ...

    def records_of(self, user_id: str, limit: int) -> list[Connection]:
        """At most ``limit`` of the user's records, expired ones included, in no particular order (for $connect,
        which closes the oldest beyond the limit and forgets the expired)."""
        ...

    def user_of(self, connection_id: str) -> Optional[str]:
        """The user a live connection belongs to, or None."""
        ...


class ConnectionPoster(Protocol):
    """API Gateway's management API for WebSocket connections (``PostToConnection``, ``DeleteConnection``)."""

    def post(self, connection_id: str, data: bytes) -> None:
        """Send one message (at most 128 KiB) to a connection.

        Raises ConnectionGone when the connection is closed (410), TransientError when it may work later
        (throttling, 5xx, no answer) and PermanentError otherwise.
        """
        ...

    def close(self, connection_id: str) -> None:
        """Close a connection (API Gateway sends the client a close frame, 1000, and invokes ``$disconnect``).

        Raises ConnectionGone when it is closed already, or not open yet (410), TransientError when it may work
        later and PermanentError otherwise.
        """
        ...


class WebhookStore(Protocol):
    """Status webhook endpoints and their deliveries log (issue 24). Calls that cannot reach the store raise
    StoreUnavailable."""

    def put(self, endpoint: WebhookEndpoint) -> None:
        """Store ``endpoint``, replacing the one with its id."""
        ...

    def get(self, webhook_id: str) -> Optional[WebhookEndpoint]:
        """One endpoint (a consistent read), or None."""
        ...

    def all(self) -> list[WebhookEndpoint]:
        """Every endpoint, oldest first (the emitters' read, which may be cached)."""
        ...

    def delete(self, webhook_id: str) -> bool:
        """Delete an endpoint: True if there was one (its deliveries expire with their TTL)."""
        ...

    def change(self, webhook_id: str, expected_updated_at: str, fields: Mapping[str, Any]) -> None:
        """Set ``fields`` of the endpoint (a None removes one), only if it exists with ``updated_at`` as expected:
        NotFound if it does not exist, Conflict if another write changed it since it was read."""
        ...

    def mark_failing(self, webhook_id: str, since: str) -> None:
        """Set the endpoint's ``failing_since`` to ``since`` unless it is set already (or there is no endpoint);
        nothing else of it changes, so an owner's edit made meanwhile is kept."""
        ...

    def mark_recovered(self, webhook_id: str) -> None:
        """Clear the endpoint's ``failing_since`` (if there is an endpoint); nothing else changes."""
        ...

    def disable(self, webhook_id: str, reason: str, at: str) -> None:
        """Disable the endpoint with ``reason`` (``updated_at`` ``at``) if it exists and is enabled; nothing else
        changes."""
        ...

    def record(self, delivery: WebhookDelivery) -> None:
        """Add one attempt to the endpoint's deliveries log (kept 30 days)."""
        ...

    def deliveries(
        self, webhook_id: str, limit: int, cursor: Optional[str]
    ) -> tuple[list[WebhookDelivery], Optional[str]]:
        """The endpoint's attempts, newest first, a page at a time (an opaque, signed cursor)."""
        ...


class WebhookSender(Protocol):
    """Status webhooks' HTTP client (issue 24)."""

    def post(self, target: Target, address: str, headers: dict[str, str], body: bytes) -> WebhookAttempt:
        """POST ``body`` with ``headers`` (the Standard Webhooks ones) to ``target``, connecting to ``address``,
        the IP :func:`notify.webhooks.resolve_public` checked (no second lookup), with the target's host as Host
        and for TLS. Redirects are not followed. Never raises for what the receiver or the network does: that is
        the attempt's outcome."""
        ...


# The status table (NotificationsTable) in four roles, one per kind of caller: ingest writes events (EventLog),
# fan-out records segment pages (FanoutPages), the worker claims and moves jobs (JobLedger), and the status, DLQ and
# rendered views read (StatusReader). One adapter may play several; each service asks only for what it uses.
# Every call that cannot reach the store raises StoreUnavailable.


class EventLog(Protocol):
    """Accepted events, as ingest records them (enough to re-derive their job ids)."""

    def put_event(self, record: EventRecord) -> None:
        """Record one accepted event (enough to re-derive its job ids)."""
        ...

    def put_events(self, records: Sequence[EventRecord]) -> None:
        """Record many accepted events at once (a batch costs one write per chunk, not one per event)."""
        ...

    def delete_event(self, event_id: str) -> None:
        """Forget an event that was not accepted after all (nothing of it was published)."""
        ...

    def get_event(self, event_id: str) -> Optional[EventRecord]:
        """The event's record, or None."""
        ...


class FanoutPages(Protocol):
    """The pages of a segment event, each expanded and published once."""

    def put_page(self, record: EventRecord) -> bool:
        """Record one expanded page of a segment event. True: recorded now, so publish its jobs. False: it was
        recorded before, the page is done and its jobs must not be published again."""
        ...

    def page_done(self, event_id: str, page: int) -> bool:
        """True if that page of the event was recorded (expanded and published) already."""
        ...


class StatusReader(Protocol):
    """What the status, DLQ and rendered views read: events, their pages, jobs and a user's jobs."""

    def get_event(self, event_id: str) -> Optional[EventRecord]:
        """The event's record, or None."""
        ...

    def event_pages(self, event_id: str) -> list[EventRecord]:
        """The recorded pages of a segment event, in page order."""
        ...

    def find_event_of_job(self, job_id: str) -> Optional[EventRecord]:
        """The record of the event that produced the job (located by the job id's first 64 bits), or None."""
        ...

    def get_job(self, job_id: str) -> Optional[JobRecord]:
        """The job's state and history, or None until a worker first claimed it."""
        ...

    def get_jobs(self, job_ids: Sequence[str]) -> dict[str, JobRecord]:
        """Many jobs at once, by id; ids without a record are missing from the result."""
        ...

    def user_jobs(
        self,
        user_id: str,
        limit: int,
        cursor: Optional[str] = None,
        status: Optional[Status] = None,
        channel: Optional[Channel] = None,
    ) -> tuple[list[JobRecord], Optional[str]]:
        """A user's jobs, newest first, optionally filtered, and the cursor of the next page (None: last)."""
        ...


class JobLedger(Protocol):
    """Job state as the worker moves it. The job's item is its idempotency record: ``claim`` and ``transition`` are
    conditional writes, and their results are how two copies of one job (Kafka and SQS redeliver) never both send it.
    """

    def claim(self, job: NotificationJob, now: datetime, lease_seconds: int) -> Claim:
        """Take the job for one attempt, holding a lease of ``lease_seconds``.

        ``CLAIMED`` (with a lease token): this copy owns the attempt; pass the token to ``transition``.
        ``DUPLICATE``: do nothing: the job is terminal, a live lease holds it (``current`` says its status; the
        caller looks again after the lease), or this copy is of an older attempt.
        ``ABANDONED`` (with a token): the job was left ``SENDING`` by a worker whose lease ran out, so the outcome
        of its provider call is unknown; this copy owns it only to end it ``FAILED``/``outcome_unknown``.
        A redrive's copy (``attempt == retry_base > 0``) may also claim a ``FAILED`` job of an earlier attempt.
        """
        ...

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
        """Move the job to ``status`` and append it to the history, if ``token`` still holds the lease.

        True: written. False: the lease is no longer this copy's (another copy took the job over): stop, and
        never call a provider after a False. Terminal statuses release the lease.
        """
        ...


class FeedbackStore(Protocol):
    """Where the email provider's feedback lands on a job (the job's item in NotificationsTable)."""

    def get_job(self, job_id: str) -> Optional[JobRecord]:
        """The job's state and history, or None."""
        ...

    def record_feedback(
        self, job_id: str, feedback_id: str, expected: Status, status: Status, entry: Transition
    ) -> bool:
        """Append ``entry`` to the job's history and set ``status``, once per ``feedback_id``, if the job's status is
        still ``expected``. False: this feedback was applied already, or the status moved on (read it again).
        A history at ``MAX_HISTORY`` entries keeps them and counts the entry in ``history_omitted`` instead."""
        ...

    def record_engagement(self, job_id: str, counter: str, event_key: str, entry: Transition) -> Engagement:
        """Count one open or click (``counter``: ``opens`` or ``clicks``) on the job; the first of its kind also
        appends ``entry`` to the history. ``event_key`` identifies the provider's event: one seen lately (the
        store remembers a bounded number) is a DUPLICATE and counts nothing."""
        ...


class LinkStore(Protocol):
    """Short links (LinksTable): one item per code, deleted by DynamoDB's TTL once expired."""

    def put_links(self, links: Sequence[ShortLink]) -> None:
        """Store a render's links, one write each. A link's item is the same whenever its job is rendered (its code
        is derived from the job and the URL), so putting it again changes nothing."""
        ...

    def create(self, link: ShortLink) -> bool:
        """Store a new link (one conditional write); False if a link already has its code."""
        ...

    def get(self, code: str) -> Optional[ShortLink]:
        """The link with this code (expired or not: the caller checks ``expires_at``), or None."""
        ...

    def count_click(self, code: str, at: str) -> bool:
        """One click on a link of its own (no job): its ``clicks`` + 1, ``first_click_at`` set by the first. One
        write. False: no such link."""
        ...


class ClickStore(Protocol):
    """The job side of a short link's click (the job's item in NotificationsTable)."""

    def record_click(self, job_id: str, code: str, at: str, link: Optional[str]) -> Optional[dict[str, str]]:
        """In one write: the job's ``clicks`` + 1, the link's own count on the job + 1 and, on the first click, the
        ``CLICKED`` entry of its history (``at``, and ``link``: the URL's scheme, host and path). Answers the job's
        identifiers (``job_id``, ``event_id``, ``event_type``, ``user_id``, ``channel``) when this write was the first
        click on any of the job's short links, else None (a later click; or no such job, and nothing written)."""
        ...

    def forget_first_click(self, job_id: str, at: str) -> None:
        """Remove the job's first click if it is the one recorded at ``at`` (its status webhook could not be queued:
        the next click is then the first again, and tells it); a later first click stays."""
        ...

    def link_clicks(self, job_id: str, code: str) -> int:
        """How many clicks the job's link ``code`` had."""
        ...


class CampaignStore(Protocol):
    """Campaigns and their runs (DynamoDB). Calls that cannot reach the store raise StoreUnavailable."""

    def put(self, campaign: Campaign) -> None:
        """Store a new campaign."""
        ...

    def get(self, campaign_id: str) -> Optional[Campaign]:
        """The campaign, or None."""
        ...

    def page(self, limit: int, cursor: Optional[str]) -> tuple[list[Campaign], Optional[str]]:
        """Up to ``limit`` campaigns from ``cursor`` and the next cursor (None: last page)."""
        ...

    def save(self, campaign: Campaign, unclaimed_at: Optional[datetime] = None) -> bool:
        """Write the campaign's fields, status, next run and ``updated_at`` if it is still at ``campaign.version``
        (the stored version moves on by one); ``runs_count``, ``last_triggered_at`` and a run's claim stay as they
        are. With ``unclaimed_at``, only if no claim is live at that time.

        False: nothing was written (the campaign changed meanwhile, is gone, or a claim is live).
        """
        ...

    def delete(self, campaign_id: str) -> None:
        """Remove the campaign and its runs."""
        ...

    def due(self, now: datetime, limit: int) -> list[Campaign]:
        """Up to ``limit`` active campaigns whose next run is at or before ``now`` (the sparse ``due`` index)."""
        ...

    def claim(self, campaign: Campaign, fire_time: datetime, now: datetime, lease_seconds: int) -> bool:
        """Take the run at ``fire_time``: only if the campaign is ACTIVE, still at ``campaign.version`` and its
        ``next_run_at``, holds no live claim, and has a run left (``runs_count < max_runs``). True: this scheduler
        fires it. False: another scheduler holds it or the campaign moved on (changed, paused, already fired)."""
        ...

    def complete(self, campaign: Campaign, run: Run, next_run_at: Optional[datetime], status: CampaignStatus) -> bool:
        """Record the run and move the campaign on (``runs_count`` + 1, ``last_triggered_at``, status and next run,
        the claim dropped, the version moved on), in one transaction, if the claim on ``run.fire_time`` is still
        held and the campaign is still at ``campaign.version``.

        False: nothing was written (the campaign changed since ``campaign`` was read, is gone, or the claim is not
        held any more).
        """
        ...

    def runs(self, campaign_id: str, limit: int) -> list[Run]:
        """The campaign's most recent runs, newest first."""
        ...


class CampaignTrigger(Protocol):
    """Starts a campaign run."""

    def trigger(self, campaign: Campaign, run_id: str, event_id: str) -> AcceptedEvent:
        """Ingest one ``campaign_triggered`` event for the campaign's segment under ``event_id``.

        The event id is deterministic per run, so triggering the same run twice yields the same jobs.
        """
        ...


class ApiKeyLookup(Protocol):
    """Stored API keys."""

    def scopes(self, key_hash: str) -> Optional[frozenset[str]]:
        """The scopes of the key with this SHA-256 hash, or None if no such key exists."""
        ...


class StaticSegments(Protocol):
    """Where static segments are kept: one record per segment (id, name, created_at) and its members."""

    def create(self, segment_id: str, name: str, created_at: str) -> bool:
        """Record a new segment; False if one with that id exists."""
        ...

    def meta(self, segment_id: str) -> Optional[dict[str, Any]]:
        """The segment's record (``segment_id``, ``name``, ``created_at``), None if there is none."""
        ...

    def all(self) -> list[dict[str, Any]]:
        """Every segment's record."""
        ...

    def add(self, segment_id: str, user_ids: Sequence[str]) -> None:
        """Add members (adding one twice is a no-op)."""
        ...

    def remove(self, segment_id: str, user_ids: Sequence[str]) -> None:
        """Remove members (removing one that is absent is a no-op)."""
        ...

    def count(self, segment_id: str) -> int:
        """How many members the segment has."""
        ...

    def delete(self, segment_id: str) -> None:
        """Delete the segment and its members."""
        ...


class RunOnce(Protocol):
    """Runs an action at most once per key, remembering its answer for a while (the API's Idempotency-Key).

    A second call with the same key and the same ``body`` answers the first call's result without running
    ``action``; with another ``body`` it raises :class:`notify.errors.KeyReused`.
    """

    def __call__(self, key: str, body: dict[str, Any], action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``action()``'s answer, or the answer remembered for ``key``; KeyReused if ``body`` differs."""
        ...


class PreferenceStore(Protocol):
    """Users' notification preferences. Calls that cannot reach the store raise StoreUnavailable."""

    def get(self, user_id: str) -> Optional[UserPreferences]:
        """The user's stored preferences, or None for a user who never set any (everything on)."""
        ...

    def put(self, preferences: UserPreferences) -> None:
        """Replace the user's preferences."""
        ...

    def put_many(self, preferences: Sequence[UserPreferences]) -> None:
        """Replace many users' preferences at once (an import)."""
        ...

    def suppress(self, user_id: str, address: str, reason: str, at: str) -> None:
        """Add ``address`` to the user's suppressed addresses (a hard bounce or a complaint); replacing the
        user's preferences keeps them. Idempotent."""
        ...

    def remember_contact(self, user_id: str, snapshot: ContactSnapshot) -> None:
        """Keep ``snapshot`` as the user's last known contact (one write; their preferences are kept)."""
        ...

    def forget_contact(self, user_id: str) -> None:
        """Drop the user's last known contact (the Auth service says the user is gone). Idempotent."""
        ...

    def count_send(
        self, user_id: str, attribute: str, seen: Optional[ThrottleWindow], window: ThrottleWindow
    ) -> tuple[bool, Optional[ThrottleWindow]]:
        """Store ``window`` as the user's throttle counter ``attribute`` (``notify.throttles.attribute_name``) if the
        counter is still ``seen`` (None: the user has none), in one conditional write: ``(True, window)`` if stored;
        ``(False, the counter as it stands)`` if another worker changed it since it was read (a consistent view that
        the failed write returns, so deciding again needs no read)."""
        ...


class DigestStore(Protocol):
    """Digest buckets (notify.digests): a group's head (its open generation) and each generation's members. Calls
    that cannot reach the store raise StoreUnavailable."""

    def head(self, group_key: str) -> Optional[BucketHead]:
        """The group's head as it stands (a consistent read); None for a group never seen."""
        ...

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
        """Atomically: add ``member`` to the bucket ``head`` names if that generation is still the open one (opening
        it at ``head.flush_at`` when it has no member yet, with its entry in the due index, ``swept`` if the sweep
        queues its flush), and record the job DIGESTED with ``detail`` if ``token`` still holds its lease. The
        outcome and the bucket's count after it (ADDED)."""
        ...

    def due(
        self, shard: int, until: datetime, after: Optional[datetime] = None, swept_only: bool = False
    ) -> list[DueBucket]:
        """The open buckets of the due index's ``shard`` (0 to DUE_SHARDS - 1) due after ``after`` (if given) and
        at ``until`` or before; ``swept_only``: only those whose flush the sweep queues."""
        ...

    def close(self, group_key: str, generation: int, now: datetime) -> Optional[ClosedBucket]:
        """Close the group's ``generation`` (the next member opens the one after): the closed bucket, also when it
        was closed before; None if that generation has no member."""
        ...

    def members(self, bucket_id: str, limit: int) -> list[DigestMember]:
        """The bucket's first ``limit`` members, oldest first (ties by job id)."""
        ...

    def closed(self, bucket_id: str) -> Optional[ClosedBucket]:
        """A closed bucket, or None."""
        ...


class DigestReads(Protocol):
    """What the status reads need of digest buckets: a closed bucket, and its members a page at a time. Calls that
    cannot reach the store raise StoreUnavailable."""

    def closed(self, bucket_id: str) -> Optional[ClosedBucket]:
        """A closed bucket, or None."""
        ...

    def member_page(
        self, bucket_id: str, limit: int, cursor: Optional[str] = None
    ) -> tuple[list[DigestMember], Optional[str]]:
        """Up to ``limit`` of the bucket's members, oldest first (ties by job id), from ``cursor`` on, and the
        cursor of the next page (None: the last). A cursor this store did not issue for this bucket is a
        ValidationFailed on ``cursor``."""
        ...


class DigestRules(Protocol):
    """Digest rules, at most one per event type (its channels are in the rule). Calls that cannot reach the store
    raise StoreUnavailable."""

    def rule(self, event_type: str, channel: Channel) -> Optional[DigestRule]:
        """The rule of ``event_type`` if it covers ``channel``, or None (the worker's read, which may be cached)."""
        ...

    def all(self) -> list[StoredDigestRule]:
        """Every rule, by event type."""
        ...

    def put(self, rule: StoredDigestRule) -> None:
        """Store ``rule``, replacing the one of its event type."""
        ...

    def delete(self, event_type: str) -> bool:
        """Delete the rule of ``event_type``: True if there was one."""
        ...


class ThrottleRules(Protocol):
    """Throttle rules, at most one per category and channel. Calls that cannot reach the store raise
    StoreUnavailable."""

    def rule(self, category: Category, channel: Channel) -> Optional[ThrottleRule]:
        """The rule of ``category`` on ``channel``, or None (the worker's read, which may be cached)."""
        ...

    def all(self) -> list[CategoryThrottle]:
        """Every rule, by category then channel."""
        ...

    def put(self, rule: CategoryThrottle) -> None:
        """Store ``rule``, replacing the one of its category and channel."""
        ...

    def delete(self, category: Category, channel: Channel) -> bool:
        """Delete the rule of ``category`` on ``channel``: True if there was one."""
        ...
