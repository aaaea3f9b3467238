"""Ports: what the domain needs from the outside world. Adapters implement them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Optional, Protocol, TypeAlias

from notify.models import Channel, Contact, FanoutTask, NotificationJob, Status

Message: TypeAlias = NotificationJob | FanoutTask


class JobPublisher(Protocol):
    """Durably publishes jobs and fan-out tasks (Kafka with acks=all). Raises TransientError if it cannot."""

    def publish(self, jobs: Sequence[Message]) -> None: ...


class DelayQueue(Protocol):
    """The SQS delay queue: retries, send_after hops and the Kafka-down fallback."""

    def enqueue(self, jobs: Sequence[Message], delay_seconds: int = 0) -> None: ...


@dataclass(frozen=True)
class SegmentPage:
    user_ids: list[str]
    next_cursor: Optional[str]


class SegmentSource(Protocol):
    """Pages of a segment's user ids. Raises NotFound for an unknown segment, TransientError when down."""

    def page(self, segment_id: str, cursor: Optional[str], limit: int) -> SegmentPage: ...


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
    raw_size: Optional[int] = None  # its size in bytes (raw is cut at notify.delivery.MAX_RAW_BYTES)


class DeadLetterQueue(Protocol):
    def send(self, letter: DeadLetter) -> None: ...


@dataclass(frozen=True)
class ReceivedLetter:
    """A message read from the dead-letter queue; ``receipt`` deletes it."""

    message_id: str
    receipt: str
    body: dict[str, Any]
    sent_at: str
    receive_count: int


class DeadLetterInbox(Protocol):
    """The read side of the dead-letter queue, for operators."""

    def receive(self, limit: int, visibility_seconds: int) -> list[ReceivedLetter]: ...

    def delete(self, receipt: str) -> None: ...

    def release(self, receipt: str) -> None:
        """Make a received letter visible again now (it was not acted on)."""
        ...


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
        return Contact(email=self.email, phone=self.phone, push_endpoints=list(self.push_endpoints))

    def template_context(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "locale": self.locale,
            "timezone": self.timezone,
        }


class UserDirectory(Protocol):
    """The Auth service. Raises NotFound for an unknown user, TransientError when unreachable."""

    def get_user(self, user_id: str) -> UserProfile: ...


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


class TemplateStore(Protocol):
    """Versioned templates. ``latest`` skips nothing: a deleted key's newest version is a tombstone."""

    def latest(self, event_type: str, channel: Channel, locale: str) -> Optional[Template]: ...

    def version(self, event_type: str, channel: Channel, locale: str, version: int) -> Optional[Template]: ...

    def versions(self, event_type: str, channel: Channel, locale: str) -> list[Template]: ...

    def keys(self) -> list[Template]: ...

    def save(self, template: Template) -> Template: ...


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


class EmailSender(Protocol):
    """Returns the provider's message id. Raises TransientError, PermanentError or OutcomeUnknown.

    ``headers`` are added to the message; ``tags`` (name to value, letters, digits, ``_-.@``) travel with the
    send to the provider's own events (SES's ``mail.tags``), so a delivery or bounce can be traced to its job.
    """

    def send_email(
        self,
        to: str,
        message: RenderedMessage,
        headers: Optional[dict[str, str]] = None,
        tags: Optional[dict[str, str]] = None,
    ) -> str: ...


class PushSender(Protocol):
    def send_push(self, endpoint: str, message: RenderedMessage, data: dict[str, Any]) -> str: ...


class WebSocketSender(Protocol):
    def send_websocket(self, connection_id: str, message: RenderedMessage, data: dict[str, Any]) -> str: ...


class ClaimOutcome(str, Enum):
    CLAIMED = "claimed"
    DUPLICATE = "duplicate"  # already terminal, or owned by a live lease, or a stale attempt
    ABANDONED = "abandoned"  # a crashed worker left it mid-send: outcome unknown


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    token: str = ""
    current: Optional[Status] = None


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


@dataclass(frozen=True)
class EventRecord:
    """One accepted event: enough to re-derive every job id it produced."""

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


class StatusStore(Protocol):
    """Event records and job state. Every write that fails raises StoreUnavailable."""

    def put_event(self, record: EventRecord) -> None: ...

    def put_events(self, records: Sequence[EventRecord]) -> None: ...

    def delete_event(self, event_id: str) -> None: ...

    def put_page(self, record: EventRecord) -> bool: ...

    def page_done(self, event_id: str, page: int) -> bool: ...

    def event_pages(self, event_id: str) -> list[EventRecord]: ...

    def get_event(self, event_id: str) -> Optional[EventRecord]: ...

    def find_event_of_job(self, job_id: str) -> Optional[EventRecord]: ...

    def get_job(self, job_id: str) -> Optional[JobRecord]: ...

    def get_jobs(self, job_ids: Sequence[str]) -> dict[str, JobRecord]: ...

    def user_jobs(
        self,
        user_id: str,
        limit: int,
        cursor: Optional[str] = None,
        status: Optional[Status] = None,
        channel: Optional[Channel] = None,
    ) -> tuple[list[JobRecord], Optional[str]]: ...

    def claim(self, job: NotificationJob, now: datetime, lease_seconds: int) -> Claim: ...

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
    ) -> bool: ...
