"""Status webhooks' emitting side (issue 24): a status change that endpoints subscribe to becomes one message per
endpoint on the delay queue (:class:`~notify.models.WebhookTask`), which the worker's
:class:`~notify.services.webhook_delivery.WebhookDeliveryService` posts. Emitting is one read of the endpoints (cached
per container by the store) and one SQS request per ten endpoints: the job that changed status never waits for a
receiver, and a slow or failing receiver never slows notifications.

The worker (:class:`~notify.services.delivery.DeliveryService`, :class:`~notify.services.digests.DigestService`),
the feedback function, the inbox and the short links call :meth:`WebhookEmitter.emit` with what :func:`for_status`,
:func:`for_engagement` and :func:`for_inbox_read` make of their changes, after the change is recorded. A change whose
messages could not be queued raises, so the record that made it is delivered again; that copy finds the change
already recorded and emits it again (docs/WEBHOOKS.md#at-least-once): the messages' ids are the same, so a receiver
that got both can tell.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

from notify.clock import Clock
from notify.errors import DeliveryError, StoreUnavailable
from notify.models import Message, NotificationJob, Status, WebhookTask
from notify.ports import DelayQueue, WebhookStore
from notify.webhooks import DATA_FIELDS, message_id, subscribed

# The message type of each status a job can move to; a status not listed (ACCEPTED, PROCESSING, SENDING, SCHEDULED,
# RETRYING) is a step on the way and sends nothing.
STATUS_TYPES: Mapping[Status, str] = {
    Status.SENT: "notification.sent",
    Status.DELIVERED: "notification.delivered",
    Status.BOUNCED: "notification.bounced",
    Status.COMPLAINED: "notification.complained",
    Status.FAILED: "notification.failed",
    Status.EXPIRED: "notification.expired",
    Status.SKIPPED: "notification.skipped",
    Status.DIGESTED: "notification.digested",
}


@dataclass(frozen=True)
class Change:
    """One change to tell endpoints about: its message type, what it is about (``subject``: the same for every
    copy of the change, so its message id is too) and the message's data (cut to ``notify.webhooks.DATA_FIELDS``)."""

    message_type: str
    subject: str
    data: dict[str, Any]


def job_data(job: NotificationJob) -> dict[str, Any]:
    """What :func:`for_status` needs of a job: its identifiers, and its bucket when it is a digest's."""
    data: dict[str, Any] = {
        "job_id": job.job_id,
        "event_id": job.event_id,
        "event_type": job.event_type,
        "user_id": job.user_id,
        "channel": job.channel.value,
    }
    if job.digest is not None:
        data["digest_bucket"] = job.digest.bucket_id
    return data


def for_status(job: Mapping[str, Any], status: Status, detail: Optional[Mapping[str, Any]] = None) -> list[Change]:
    """The changes a job's move to ``status`` makes: its status's message, and ``digest.sent`` too when the job is a
    digest's (``digest_bucket``) and was sent. ``job`` holds the job's identifiers (``job_id``, ``event_id``,
    ``event_type``, ``user_id``, ``channel``); ``detail`` the transition's (``reason``, ``provider_message_id``,
    ``digest_job_id``)."""
    message_type = STATUS_TYPES.get(status)
    if message_type is None:
        return []
    data = _data(job, detail, status=status.value)
    changes = [Change(message_type, f"{job['job_id']}#{status.value}", data)]
    if status is Status.SENT and job.get("digest_bucket"):
        changes.append(Change("digest.sent", f"{job['job_id']}#digest", data))
    return changes


def for_engagement(job: Mapping[str, Any], kind: str) -> list[Change]:
    """The first open (``opened``) or click (``clicked``) of a job's email or short link: later ones are only
    counted on the job, and send nothing."""
    if kind not in ("opened", "clicked"):
        raise ValueError(f"not an engagement: {kind}")
    return [Change(f"notification.{kind}", f"{job['job_id']}#{kind}", _data(job, None))]


def for_inbox_read(job: Mapping[str, Any]) -> list[Change]:
    """An in-app notification read for the first time."""
    return [Change("inbox.read", f"{job['job_id']}#read", _data(job, None))]


def _data(job: Mapping[str, Any], detail: Optional[Mapping[str, Any]], **more: Any) -> dict[str, Any]:
    merged = {**job, **(detail or {}), **more}
    return {name: merged[name] for name in DATA_FIELDS if merged.get(name) is not None}


class WebhookEmitter:
    """Turns changes into one message per subscribed, enabled endpoint on the delay queue."""

    def __init__(self, store: WebhookStore, delay_queue: DelayQueue, clock: Clock) -> None:
        self._store = store
        self._delay = delay_queue
        self._clock = clock

    def emit(self, changes: list[Change], at: Optional[datetime] = None) -> int:
        """Queue the messages of ``changes`` (made at ``at``, now by default) for every endpoint that subscribes to
        them; how many. StoreUnavailable if the endpoints cannot be read or the queue refuses them (the caller
        retries the change, whose messages keep their ids)."""
        if not changes:
            return 0
        when = at or self._clock()
        tasks: list[Message] = [
            WebhookTask(
                webhook_id=endpoint.webhook_id,
                message_id=message_id(endpoint.webhook_id, change.message_type, change.subject),
                message_type=change.message_type,
                subject=change.subject,
                created_at=when,
                data=change.data,
            )
            for endpoint in self._store.all()
            if endpoint.enabled
            for change in changes
            if subscribed(endpoint.events, change.message_type)
        ]
        if tasks:
            try:
                self._delay.enqueue(tasks)
            except DeliveryError as exc:
                raise StoreUnavailable(f"delay queue unavailable: {exc}") from exc
        return len(tasks)
