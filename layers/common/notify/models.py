"""The service's data contracts: the event request, the notification job, statuses."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal, Optional, TypeAlias

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

JOB_SCHEMA_VERSION = 1
MAX_RECIPIENTS = 1000
# Ids are bounded in bytes, not characters, so that 1,000 of them fit in one DynamoDB item (400 KB) whatever
# the script: 1,000 × 128 bytes, with the rest of an event record, stays under 150 KB.
MAX_ID_BYTES = 128


# What the document says of such an id: no control character, and not `.` nor `..` (the validator below says why).
# JSON Schema's pattern is a search, so a prefix is enough: no look-ahead (pydantic's regex engine has none).
ID_PATTERN = r"^(?:[^.\x00-\x1f\x7f]|\.[^.\x00-\x1f\x7f]|\.\.[^\x00-\x1f\x7f])[^\x00-\x1f\x7f]*$"
DOT_SEGMENTS = frozenset({".", ".."})


def _check_id(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    if len(value.encode()) > MAX_ID_BYTES:
        raise ValueError(f"must be at most {MAX_ID_BYTES} bytes in UTF-8")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("must not contain control characters (tab, newline, NUL...)")
    if value in DOT_SEGMENTS:
        # An id is a path segment of URLs (/api/v1/users/{id}, the Auth service's too), and URL parsers (RFC 3986,
        # WHATWG, httpx) read these two, even percent-encoded, as steps up the path: /api/v1/users/.. is /api/v1.
        raise ValueError(f"must not be {value!r}: a URL reads it as a path step, not a name")
    return value


# A user id (or another caller-chosen id): 1 to 128 bytes of UTF-8, not blank, no control characters, not `.`
# nor `..`. Every way a user id comes in uses it: bodies, and paths through api.params.PathUserId.
UserId = Annotated[
    str,
    Field(min_length=1, max_length=MAX_ID_BYTES, json_schema_extra={"pattern": ID_PATTERN}),
    AfterValidator(_check_id),
]


class Channel(str, Enum):
    """How a notification reaches the user: email, push to their mobile devices, or websocket to an open app session."""

    EMAIL = "email"
    PUSH = "push"
    WEBSOCKET = "websocket"


class Category(str, Enum):
    """What kind of notification a job is, for the user's preferences.

    account (sign-up, password reset) is critical: opt-outs and quiet hours never hold it back. social (someone
    liked a review), content (a new episode or film) and marketing (every job of a campaign run) follow them.
    """

    ACCOUNT = "account"
    SOCIAL = "social"
    CONTENT = "content"
    MARKETING = "marketing"


class Priority(str, Enum):
    """How hard delivery tries after a failure.

    High retries soonest and most often (up to 8 attempts in all), normal up to 6, and low up to 5 with the
    longest waits between them. An event that gives no priority gets its event type's.
    """

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class Status(str, Enum):
    """Where a notification stands.

    ACCEPTED: queued, not yet picked up by a worker. PROCESSING: a worker has taken it. SENDING: the provider is
    being called. SCHEDULED: waiting until its send_after time (or a retry's). RETRYING: an attempt failed for a
    passing reason and another is planned. The other four are final: SENT (the provider accepted it), FAILED (a
    permanent error, no attempts left, or a send whose outcome is unknown; a copy goes to the dead-letter queue),
    EXPIRED (its expires_at passed before it could be sent) and SKIPPED (not to be sent); DIGESTED (collected into
    a digest: the digest's own job sends it) is final too. After SENT, the email
    provider's feedback moves an email on: DELIVERED (the receiving server took it), BOUNCED (it refused it for
    good) or, after delivery, COMPLAINED (the recipient marked it as spam).
    """

    ACCEPTED = "ACCEPTED"
    PROCESSING = "PROCESSING"
    SENDING = "SENDING"
    SCHEDULED = "SCHEDULED"
    RETRYING = "RETRYING"
    SENT = "SENT"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    SKIPPED = "SKIPPED"
    DIGESTED = "DIGESTED"
    DELIVERED = "DELIVERED"
    BOUNCED = "BOUNCED"
    COMPLAINED = "COMPLAINED"

    @property
    def terminal(self) -> bool:
        """True once a worker is done with the job: SENT and after, FAILED, EXPIRED, SKIPPED (a redrive may restart
        FAILED; only the provider's feedback moves a SENT one on)."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        Status.SENT,
        Status.FAILED,
        Status.EXPIRED,
        Status.SKIPPED,
        Status.DIGESTED,
        Status.DELIVERED,
        Status.BOUNCED,
        Status.COMPLAINED,
    }
)


UUID_PATTERN = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"


def _canonical_uuid(value: Optional[str]) -> Optional[str]:
    """A UUID in its canonical lower-case form, so one id is never two keys."""
    return None if value is None else value.lower()


class Strict(BaseModel):
    """Base for inbound models: unknown fields are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


LOCALE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
# An address SES can send to: ASCII only (SES does not take SMTPUTF8), a dot-atom local part (no quoted strings,
# no comments), and a domain of at least two letter-digit-hyphen labels. No space or control character can pass,
# so an address can never carry another header.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = rf"^{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+$"
# An SNS platform endpoint (APNs, FCM...): never a topic, which would reach every subscriber.
PUSH_ENDPOINT_PATTERN = (
    r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:endpoint/[A-Za-z0-9_]+/[A-Za-z0-9._-]+/[A-Za-z0-9-]+$"
)
MAX_PUSH_ENDPOINTS = 20


def _check_local_part(value: str) -> str:
    if len(value.partition("@")[0]) > 64:
        raise ValueError("the part before @ must be at most 64 characters (RFC 5321)")
    return value


def _check_name(value: str) -> str:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("must not contain control characters (tab, newline, NUL...)")
    return value


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


EmailAddress = Annotated[
    str,
    Field(max_length=254, pattern=EMAIL_PATTERN, examples=["ada@example.com"]),
    AfterValidator(_check_local_part),
]
PushEndpoint = Annotated[str, Field(max_length=1024, pattern=PUSH_ENDPOINT_PATTERN)]
PersonName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_check_name)]


class InlineRecipient(Strict):
    """A recipient given with their contact: delivered to these addresses with this profile (``user`` in the
    templates), and the Auth service is not asked. For people the Auth service does not know (an invitation), or
    whose contact the caller holds. A channel the recipient has no address for is skipped (``unreachable``)."""

    user_id: UserId
    email: Optional[EmailAddress] = None
    push_endpoints: Annotated[list[PushEndpoint], AfterValidator(_unique)] = Field(
        default_factory=list,
        max_length=MAX_PUSH_ENDPOINTS,
        description="SNS platform endpoint ARNs (repeated ones count once)",
    )
    locale: Optional[str] = Field(default=None, pattern=LOCALE_PATTERN)
    first_name: Optional[PersonName] = None
    last_name: Optional[PersonName] = None

    def contact(self) -> Contact:
        """The contact and profile its jobs carry."""
        return Contact(
            email=self.email,
            push_endpoints=list(self.push_endpoints),
            first_name=self.first_name,
            last_name=self.last_name,
            locale=self.locale,
        )


class Recipients(Strict):
    """Who receives the event: user_ids (their contact comes from the Auth service; repeated ids count once) and/or
    users (inline: each with their own contact, no Auth lookup), 1 to 1,000 recipients in all, each named once; or
    one segment_id, alone."""

    user_ids: Optional[list[UserId]] = Field(default=None, min_length=1, max_length=MAX_RECIPIENTS)
    users: Optional[list[InlineRecipient]] = Field(
        default=None,
        min_length=1,
        max_length=MAX_RECIPIENTS,
        description="inline recipients: delivered with the contact given here, without asking the Auth service",
    )
    segment_id: Optional[UserId] = None

    @model_validator(mode="after")
    def _one_kind(self) -> Recipients:
        listed = self.user_ids is not None or self.users is not None
        if self.segment_id is not None and listed:
            raise ValueError("give segment_id alone: a segment cannot be combined with user_ids or users")
        if self.segment_id is None and not listed:
            raise ValueError("give user_ids, users (or both), or segment_id")
        if self.user_ids is not None:
            # Deduplicate, keeping the caller's order.
            object.__setattr__(self, "user_ids", list(dict.fromkeys(self.user_ids)))
        return self


class EventRequest(Strict):
    """Body of POST /api/v1/events. The payload is checked against the fields its event type defines."""

    event_type: str = Field(min_length=1, max_length=64)
    payload: dict[str, Any]
    recipients: Recipients
    channels: Optional[list[Channel]] = Field(default=None, min_length=1)
    priority: Optional[Priority] = None
    send_after: Optional[AwareDatetime] = None
    expires_at: Optional[AwareDatetime] = None
    locale: Optional[str] = Field(default=None, pattern=LOCALE_PATTERN)
    event_id: Annotated[Optional[str], AfterValidator(_canonical_uuid)] = Field(
        default=None,
        pattern=UUID_PATTERN,
        description=(
            "Optional: the event's id, chosen by the client (a UUID). Resending the same body with the same "
            "event_id (after a timeout or a 503) completes the event and sends nothing twice; a different "
            "body with it is a 409."
        ),
    )


class Contact(BaseModel):
    """An inline recipient's contact and profile, carried by their jobs: the worker delivers to it and does not ask
    the Auth service. (``connection_id`` narrows an in-app job to one of the user's connections.)"""

    model_config = ConfigDict(extra="ignore")

    email: Optional[str] = None
    phone: Optional[str] = None
    connection_id: Optional[str] = None
    push_endpoints: list[str] = Field(default_factory=list)
    first_name: Optional[str] = None
    last_name: Optional[str] = None
    locale: Optional[str] = None


class DigestRef(BaseModel):
    """What a digest's job carries of its bucket: its id (``<group key>-<generation>``) and the rule's
    ``max_items`` (how many members the template lists). The members are read from the bucket when it renders."""

    model_config = ConfigDict(extra="forbid")

    bucket_id: str = Field(pattern=r"^[0-9a-f]{32}-[0-9]+$")
    max_items: int = Field(ge=1, le=1000)


class NotificationJob(BaseModel):
    """One notification for one user on one channel: the Kafka and SQS message body."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = JOB_SCHEMA_VERSION
    job_id: str
    event_id: str
    event_type: str
    user_id: UserId
    channel: Channel
    template_key: str
    payload: dict[str, Any]
    locale: Optional[str] = None
    priority: Priority = Priority.NORMAL
    attempt: int = 0
    retry_base: int = 0  # the attempt a redrive restarted the retry budget from
    created_at: datetime
    send_after: Optional[datetime] = None
    expires_at: Optional[datetime] = None
    not_before: Optional[datetime] = None
    contact: Optional[Contact] = None
    template_version: Optional[int] = None
    campaign_id: Optional[str] = None
    run_id: Optional[str] = None
    # Set on the copies the worker parks in the delay queue once it has recorded SCHEDULED (or RETRYING) for
    # their due time: a copy that comes back early only hops again, without writing (one history entry per wait).
    waiting: bool = False
    # Push progress: the endpoints an earlier attempt published to, with the provider's message ids. A retry (or a
    # redrive of its dead letter) publishes only to the others. Absent until a push attempt stops part-way.
    pushed: Optional[dict[str, str]] = None
    # A digest's own job (notify.digests): the bucket whose members it sends. Never collected again, never throttled.
    digest: Optional[DigestRef] = None
    # Set on a retry (and a dead letter) of a job whose send a throttle counted: it is neither counted nor refused
    # again, however many sends the counter admitted since (docs/WORKER.md#throttles).
    throttle_counted: bool = False

    def kind_name(self) -> str:
        """The message's kind, as the queues' attributes and Kafka's headers name it."""
        return "job"

    def due_at(self) -> Optional[datetime]:
        """The earliest moment this job may be sent: its send_after or retry time."""
        moments = [m for m in (self.send_after, self.not_before) if m is not None]
        return max(moments) if moments else None


class FanoutTask(BaseModel):
    """Expand one page of a segment into jobs, then hand on the next page: a Kafka/SQS message.

    Everything a job needs except the user travels in the task, so a page can be
    expanded without reading the event back.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["fanout"] = "fanout"
    schema_version: int = JOB_SCHEMA_VERSION
    event_id: str
    segment_id: str
    page: int = 0
    cursor: Optional[str] = None
    attempt: int = 0
    not_before: Optional[datetime] = None
    event_type: str
    template_key: str
    payload: dict[str, Any]
    channels: list[Channel]
    priority: Priority
    locale: Optional[str] = None
    created_at: datetime
    send_after: Optional[datetime] = None
    expires_at: datetime
    campaign_id: Optional[str] = None
    run_id: Optional[str] = None

    def kind_name(self) -> str:
        """The message's kind, as the queues' attributes and Kafka's headers name it."""
        return self.kind


class AcceptedEvent(BaseModel):
    """The 202 answer: only returned once every job (or the segment's fan-out task) is durably stored."""

    event_id: str
    job_ids: list[str]
    status: str = "accepted"
    segment_id: Optional[str] = None


class DigestFlushTask(BaseModel):
    """Close a digest bucket and make its job, when its window ends or it is full: a delay-queue message.

    ``due_at`` is when the bucket's window ends (it hops on the delay queue until then); a full bucket's task is due
    at once. A task that finds its bucket already closed makes the digest's job again (its id is the bucket's), so
    a worker killed between closing and sending still sends one digest.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["digest_flush"] = "digest_flush"
    schema_version: int = JOB_SCHEMA_VERSION
    group_key: str = Field(pattern=r"^[0-9a-f]{32}$")
    generation: int = Field(ge=0)
    due_at: datetime
    attempt: int = 0

    def kind_name(self) -> str:
        """The message's kind, as the queues' attributes and Kafka's headers name it."""
        return self.kind


class WebhookTask(BaseModel):
    """One status webhook message to one endpoint (issue 24), a delay-queue message: the message's id (the same on
    every retry: ``notify.webhooks.message_id``), its type and data, the subject it is about, when it was first tried
    and which attempt this is."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["webhook"] = "webhook"
    schema_version: int = JOB_SCHEMA_VERSION
    webhook_id: str = Field(min_length=1, max_length=64)
    message_id: str = Field(min_length=1, max_length=64)
    message_type: str = Field(min_length=1, max_length=64)
    subject: str = Field(min_length=1, max_length=256)
    created_at: datetime
    data: dict[str, Any]
    attempt: int = 0
    first_attempt_at: Optional[datetime] = None
    not_before: Optional[datetime] = None

    def kind_name(self) -> str:
        """The message's kind, as the queues' attributes and Kafka's headers name it."""
        return self.kind


Message: TypeAlias = (
    NotificationJob | FanoutTask | DigestFlushTask | WebhookTask
)  # what goes onto the jobs topic and the delay queue


def _zone(value: str) -> str:
    # Imported on first use: every function imports this module, and not every one loads croniter at cold start.
    from notify.cron import check_timezone

    return check_timezone(value)


ClockTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["22:00"])]


class QuietHours(Strict):
    """A daily window, in the user's time zone, during which only account notifications are sent.

    start and end are HH:MM wall-clock times; a window whose end is earlier than its start runs across midnight
    (22:00 to 08:00). Notifications due inside it wait until it ends.
    """

    start: ClockTime
    end: ClockTime
    timezone: Annotated[str, AfterValidator(_zone)] = Field(examples=["Europe/Berlin"])

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end are the same time: the window would be empty")
        return self


class PreferencesInput(Strict):
    """A user's notification preferences (PUT replaces the whole document).

    channels turns a channel off for everything but account notifications; categories turns one channel off for
    one category. A channel or category left out is on. account notifications cannot be turned off. The document
    GET returned is accepted as it is: its read-only fields are checked (user_id) or ignored (suppressed,
    updated_at), never stored.
    """

    channels: dict[Channel, bool] = Field(default_factory=dict, examples=[{"email": True, "push": False}])
    categories: dict[Category, dict[Channel, bool]] = Field(
        default_factory=dict, examples=[{"marketing": {"email": False}}]
    )
    quiet_hours: Optional[QuietHours] = None
    user_id: Optional[UserId] = Field(
        default=None,
        description="read-only: if sent, it must be the user of the path (else 422 on user_id)",
        json_schema_extra={"readOnly": True},
    )
    suppressed: Optional[list[Annotated[str, Field(max_length=320)]]] = Field(
        default=None,
        description="read-only, ignored: a PUT never lifts a suppression",
        json_schema_extra={"readOnly": True},
    )
    updated_at: Optional[str] = Field(
        default=None,
        max_length=64,
        description="read-only, ignored: the time of the PUT is stored",
        json_schema_extra={"readOnly": True},
    )

    @field_validator("categories")
    @classmethod
    def _account_stays_on(cls, value: dict[Category, dict[Channel, bool]]) -> dict[Category, dict[Channel, bool]]:
        if any(on is False for on in value.get(Category.ACCOUNT, {}).values()):
            raise ValueError("account notifications (sign-up, password reset) cannot be turned off")
        return value
