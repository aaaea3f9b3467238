"""What happens to an email after SES accepted it: SES's own events, applied to the job once each.

SES publishes the events of every send made through the service's configuration set (template.yaml) to an SNS
topic; the feedback function hands each one here. The job is found by the ``job_id`` tag the worker put on the
send (SES returns tags in ``mail.tags``) and checked against the message id its ``SENT`` entry recorded.

| SES event | Effect |
| --- | --- |
| ``Delivery`` | ``SENT`` → ``DELIVERED`` |
| ``Bounce``, ``Permanent`` | → ``BOUNCED``; the address is suppressed (no more email to it) |
| ``Bounce``, ``Transient`` or ``Undetermined`` | recorded in the history; the status stays |
| ``Complaint`` | → ``COMPLAINED``; the address is suppressed and the user opted out of marketing email |
| ``Reject``, ``DeliveryDelay``, ``Rendering Failure`` | recorded in the history |
| ``Open``, ``Click`` | counted (``opens``, ``clicks``); the first of each is recorded in the history |
| ``Send`` and anything else | ignored (``SENT`` already says it) |

SNS delivers at least once and SES may publish an event twice: each event has an id (the bounce's or complaint's
``feedbackId``, else its type, time and link), and the job's item remembers the ids it applied. Opens and clicks
are the exception: a recipient can make any number, so the item remembers only the latest few (a repeat arriving
much later may count twice) and the history grows by one entry for each kind, whatever the count.

A Click entry records the link's scheme, host and path, never its query or fragment (where a reset or
confirmation token, or a tracking id, would be), and no link at all for account mail (which is sent untracked,
so no Click should come: one from an email sent before that is cut all the same). The path of a one-click
unsubscribe link (``/u/<token>``) is cut to ``/u/``: the token would let whoever reads the job opt the user out.

An event can arrive before the worker has recorded ``SENT`` with the message id (the job is still ``SENDING``):
:class:`~notify.errors.FeedbackEarly` is raised, so the invocation fails and Lambda's retries of it (two, about
a minute and two minutes later) apply the event once the send is on record.

Status webhooks (issue 24), with a :class:`~notify.services.webhook_emitter.WebhookEmitter`: a move to
``DELIVERED``, ``BOUNCED`` or ``COMPLAINED`` emits its ``notification.*`` message, and the first open or click
``notification.opened`` or ``notification.clicked``, after the change (and its suppressions) are recorded. An event
that moves nothing (a transient bounce, a second delivery, a later open) emits nothing. Emitting that fails raises
StoreUnavailable, so the invocation fails and Lambda delivers the event again; that copy is a duplicate of an
applied event and emits the change it made once more (its messages' ids derive from the endpoint and the change, so
they are the same and a receiver that got both can tell). So does any redelivery of an applied event: a message is
never lost, and at worst repeated under its id.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Optional
from urllib.parse import urlsplit

from notify.catalog import category_of
from notify.clock import Clock, iso
from notify.errors import FeedbackEarly
from notify.models import Category, Channel, Status
from notify.ports import FeedbackStore, PreferenceStore
from notify.records import Engagement, JobRecord, Transition
from notify.services.preferences import PreferenceService
from notify.services.webhook_emitter import Change, WebhookEmitter, for_engagement, for_status

log = logging.getLogger(__name__)

# From which statuses each event moves a job on (else it is only recorded).
MOVES: dict[str, tuple[Status, frozenset[Status]]] = {
    "Delivery": (Status.DELIVERED, frozenset({Status.SENT})),
    "Bounce": (Status.BOUNCED, frozenset({Status.SENT, Status.DELIVERED})),
    "Complaint": (Status.COMPLAINED, frozenset({Status.SENT, Status.DELIVERED})),
}
RECORDED = frozenset(
    {"Bounce", "Reject", "DeliveryDelay", "Rendering Failure", "Open", "Click", "Complaint", "Delivery"}
)
# Events a recipient may repeat without limit: counted on the job, the first of each recorded.
COUNTED = {"Open": "opens", "Click": "clicks"}
# The status webhook message of the first of each (notification.opened, notification.clicked).
ENGAGED = {"Open": "opened", "Click": "clicked"}
MAX_LINK_CHARS = 500


class Applied(str, Enum):
    """What became of one SES event."""

    APPLIED = "applied"  # the job's status or history changed
    DUPLICATE = "duplicate"  # applied before (SES or SNS delivered it again)
    IGNORED = "ignored"  # an event type the service does not track (Send)
    UNMATCHED = "unmatched"  # no job of this service sent that message


@dataclass(frozen=True)
class SesEvent:
    """The parts of an SES event-publishing record the service uses."""

    event_type: str
    message_id: str
    job_id: Optional[str]
    timestamp: str
    body: Mapping[str, Any]  # the event's own section (bounce, complaint, delivery, open, click…)

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> SesEvent:
        """An SES event as published to SNS; ValueError if it is not one."""
        event_type = data.get("eventType") or data.get("notificationType")
        mail = data.get("mail")
        if not isinstance(event_type, str) or not isinstance(mail, dict) or not isinstance(mail.get("messageId"), str):
            raise ValueError("not an SES event: no eventType, or no mail.messageId")
        tags = mail.get("tags")
        job = tags.get("job_id") if isinstance(tags, dict) else None
        job_id = str(job[0]) if isinstance(job, list) and job else None
        section = data.get(_SECTIONS.get(event_type, event_type[:1].lower() + event_type[1:]))
        body = section if isinstance(section, dict) else {}
        timestamp = str(body.get("timestamp") or mail.get("timestamp") or "")
        return cls(event_type, mail["messageId"], job_id, timestamp, body)

    @property
    def feedback_id(self) -> str:
        """Stable across redeliveries of the same event (an open or click: its time, link, address and agent)."""
        if isinstance(self.body.get("feedbackId"), str):
            return f"{self.event_type}:{self.body['feedbackId']}"
        if self.event_type in COUNTED:
            who = ":".join(str(self.body.get(k, "")) for k in ("link", "ipAddress", "userAgent"))
            return f"{self.event_type}:{self.message_id}:{self.timestamp}:{who}"
        return f"{self.event_type}:{self.timestamp}:{self.body.get('link', '')}"

    def addresses(self, key: str) -> list[str]:
        """The email addresses of a recipients list (``bouncedRecipients``, ``complainedRecipients``)."""
        return [
            str(r["emailAddress"])
            for r in self.body.get(key) or []
            if isinstance(r, dict) and isinstance(r.get("emailAddress"), str)
        ]


_SECTIONS = {"Rendering Failure": "failure", "DeliveryDelay": "deliveryDelay"}


class FeedbackService:
    """Applies SES events to jobs, suppressing bounced and complained addresses."""

    def __init__(
        self,
        store: FeedbackStore,
        preferences: PreferenceStore,
        clock: Clock,
        webhooks: Optional[WebhookEmitter] = None,
    ) -> None:
        self._store = store
        self._preferences = preferences
        self._consent = PreferenceService(preferences, clock)
        self._clock = clock
        self._webhooks = webhooks

    def apply(self, data: Mapping[str, Any]) -> Applied:
        """Apply one SES event (its JSON); ValueError if it is not one. StoreUnavailable if the job, the preferences
        or the webhooks' queue cannot be reached (the event is to be delivered again)."""
        event = SesEvent.parse(data)
        if event.event_type not in RECORDED:
            return Applied.IGNORED
        if event.job_id is None:
            log.warning("an SES %s event for message %s carries no job_id tag", event.event_type, event.message_id)
            return Applied.UNMATCHED
        for _ in range(3):  # the status may move on between the read and the write: read again
            job = self._store.get_job(event.job_id)
            if job is not None and job.channel is Channel.EMAIL and job.status is Status.SENDING:
                raise FeedbackEarly(f"job {job.job_id} has not recorded its send yet; SES event {event.event_type}")
            if job is None or job.channel is not Channel.EMAIL or event.message_id not in _message_ids(job):
                log.warning("no job sent message %s (job_id tag %s)", event.message_id, event.job_id)
                return Applied.UNMATCHED
            status, entry = self._effect(event, job)
            if event.event_type in COUNTED:
                counted = self._store.record_engagement(job.job_id, COUNTED[event.event_type], event.feedback_id, entry)
                if counted is Engagement.FIRST or (counted is Engagement.DUPLICATE and _first_of_kind(event, job)):
                    self._emit(for_engagement(_identifiers(job, event), ENGAGED[event.event_type]))
                return Applied.DUPLICATE if counted is Engagement.DUPLICATE else Applied.APPLIED
            if self._store.record_feedback(job.job_id, event.feedback_id, job.status, status, entry):
                self._consequences(event, job)
                if status is not job.status:
                    self._emit(for_status(_identifiers(job, event), status, _webhook_detail(event)))
                return Applied.APPLIED
            again = self._store.get_job(event.job_id)
            if again is not None and again.status == job.status:
                break  # the status held, so the feedback id was there already
        if again is not None:
            # A redelivered event: what followed its record may have failed the copy before (a suppression, an
            # opt-out, the webhooks' queue), so it is done again; each of those is idempotent.
            self._consequences(event, again)
            self._emit_again(event, again)
        return Applied.DUPLICATE

    def _emit(self, changes: list[Change]) -> None:
        if self._webhooks is not None:
            self._webhooks.emit(changes)

    def _emit_again(self, event: SesEvent, job: JobRecord) -> None:
        """A redelivered event: emit the move it made again, if it made one (the copy before may have failed to
        emit). The messages keep their ids; an event that moved nothing emits nothing."""
        target = _moves_to(event)
        if target is None or self._webhooks is None:
            return
        moved = job.status is target or any(
            entry.status is target and entry.detail.get("feedback") == event.event_type for entry in job.history
        )
        if moved:
            self._emit(for_status(_identifiers(job, event), target, _webhook_detail(event)))

    def _effect(self, event: SesEvent, job: JobRecord) -> tuple[Status, Transition]:
        """The job's status after the event, and the history entry that says what happened."""
        detail: dict[str, Any] = {"feedback": event.event_type, "message_id": event.message_id}
        for key in ("bounceType", "bounceSubType", "complaintFeedbackType", "delayType", "reason"):
            if isinstance(event.body.get(key), str):
                detail[key] = event.body[key]
        link = event.body.get("link")
        if isinstance(link, str) and category_of(job.event_type) is not Category.ACCOUNT:
            shown = link_without_secrets(link)
            if shown is not None:
                detail["link"] = shown
        if event.event_type == "Rendering Failure" and isinstance(event.body.get("errorMessage"), str):
            detail["error"] = event.body["errorMessage"][:500]
        target = _moves_to(event)
        allowed = MOVES[event.event_type][1] if target is not None else frozenset()
        status = target if target is not None and job.status in allowed else job.status
        at = event.timestamp or _now_iso(self._clock)
        return status, Transition(status=status, at=at, attempt=job.attempt, detail=detail)

    def _consequences(self, event: SesEvent, job: JobRecord) -> None:
        """Suppress addresses that bounced for good or complained; a complaint also opts out of marketing email."""
        at = event.timestamp or _now_iso(self._clock)
        if event.event_type == "Bounce" and event.body.get("bounceType") == "Permanent":
            for address in event.addresses("bouncedRecipients"):
                self._preferences.suppress(job.user_id, address, "bounce", at)
        if event.event_type == "Complaint":
            for address in event.addresses("complainedRecipients"):
                self._preferences.suppress(job.user_id, address, "complaint", at)
            self._consent.opt_out(job.user_id, Category.MARKETING, Channel.EMAIL)


# Paths whose last segment is a bearer value: a one-click unsubscribe link's signed token (/u/<token>) and a short
# link's code (/l/<code>, which leads to its whole target URL), under any base path (a custom domain's mapping).
_BEARER_PATH = re.compile(r"^(?P<base>.*/(?:u|l)/)[^/]+/?$")


def link_without_secrets(link: str) -> Optional[str]:
    """The link's scheme, host (and port) and path; never credentials, query or fragment, and an unsubscribe
    link's token and a short link's code cut off. None for anything that is not an http(s) URL with a host."""
    try:
        parts = urlsplit(link.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    bearer = _BEARER_PATH.match(parts.path)
    path = bearer.group("base") if bearer else parts.path
    netloc = f"[{host}]" if ":" in host else host
    shown = f"{parts.scheme.lower()}://{netloc}{f':{port}' if port is not None else ''}{path}"
    return shown[:MAX_LINK_CHARS]


def _moves_to(event: SesEvent) -> Optional[Status]:
    """The status the event moves a job to (from the statuses MOVES allows), or None: a transient bounce is recorded
    and changes nothing."""
    if event.event_type not in MOVES:
        return None
    if event.event_type == "Bounce" and event.body.get("bounceType") != "Permanent":
        return None
    return MOVES[event.event_type][0]


def _identifiers(job: JobRecord, event: SesEvent) -> dict[str, Any]:
    """What a status webhook message says of the job: its identifiers and the email's SES message id."""
    return {
        "job_id": job.job_id,
        "event_id": job.event_id,
        "event_type": job.event_type,
        "user_id": job.user_id,
        "channel": job.channel.value,
        "provider_message_id": event.message_id,
    }


def _webhook_detail(event: SesEvent) -> dict[str, Any]:
    """The message's ``reason``: SES's bounce subtype (``General``, ``NoEmail``, ``Suppressed``…) or complaint
    feedback type (``abuse``…), when the event has one."""
    key = {"Bounce": "bounceSubType", "Complaint": "complaintFeedbackType"}.get(event.event_type)
    reason = event.body.get(key) if key else None
    return {"reason": reason} if isinstance(reason, str) else {}


def _first_of_kind(event: SesEvent, job: JobRecord) -> bool:
    """Whether a redelivered open or click is the job's first of its kind (whose message the copy before may have
    failed to emit): the history's first entry of its kind has its time and message. With no such entry (a history
    that was full), emit all the same: the message keeps its id."""
    first = next((e for e in job.history if e.detail.get("feedback") == event.event_type), None)
    if first is None:
        return job.history_omitted > 0
    return first.at == event.timestamp and first.detail.get("message_id") == event.message_id


def _message_ids(job: JobRecord) -> set[str]:
    """The provider message ids the job's sends recorded (its SENT entry, or the item's attribute)."""
    ids = {job.provider_message_id} if job.provider_message_id else set()
    for entry in job.history:
        value = entry.detail.get("provider_message_id")
        if isinstance(value, str):
            ids.update(value.split(","))
    return ids


def _now_iso(clock: Clock) -> str:
    return iso(clock())
