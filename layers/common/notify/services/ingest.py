"""Ingestion: validate an event, expand it into jobs (or a segment fan-out task) and store them durably."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Optional

from pydantic import ValidationError

from notify.catalog import EventType, field_errors, get_event_type, validate_payload
from notify.clock import Clock, iso
from notify.errors import Conflict, FieldError, IngestUnavailable, KeyReused, TransientError, ValidationFailed
from notify.jobs import EventPlan, keyed_event_id, new_event_id, new_family
from notify.models import (
    MAX_RECIPIENTS,
    AcceptedEvent,
    Channel,
    Contact,
    EventRequest,
    FanoutTask,
    Message,
    Recipients,
)
from notify.ports import DelayQueue, EventLog, JobPublisher, RunOnce
from notify.records import EventRecord
from notify.resilience import CircuitOpen

log = logging.getLogger(__name__)

# Every job carries the payload; this keeps a job well under SQS's 256 KiB and Kafka's 1 MiB.
MAX_PAYLOAD_BYTES = 64 * 1024
# send_after and expires_at lie within this horizon, well inside the 90 days a job's status is kept.
MAX_HORIZON = timedelta(days=60)
# One events:batch call produces at most this many jobs (a segment's fan-out task counts as one), so a
# request stays a bounded amount of work: 100 events × 1,000 users × 3 channels would be 300,000.
MAX_BATCH_JOBS = 10_000


class IngestIncomplete(IngestUnavailable):
    """Neither Kafka nor the delay queue took every job: some may be stored and will be delivered.

    Which ones cannot be known (a Kafka send that timed out may still be written), so the answer names
    the event ids instead: accepting the same event again under the same id publishes the same job ids,
    and the worker's claim on each job id drops whichever copy comes second.
    """

    def __init__(self, message: str, event_ids: Sequence[str], retry_after_seconds: int = 5) -> None:
        super().__init__(message, retry_after_seconds)
        self.event_ids = list(event_ids)


class IngestService:
    """Turns an :class:`EventRequest` into jobs that are in Kafka or the delay queue.

    The answer is only returned once every job is durably stored; otherwise
    :class:`IngestIncomplete` is raised, naming the event ids to accept again:
    job ids are deterministic in the event id, so a retry under the same id
    completes the event without a second notification. An event sent to a
    segment is stored as one fan-out task that the worker expands page by page.
    """

    def __init__(
        self,
        store: EventLog,
        publisher: JobPublisher,
        fallback: DelayQueue,
        clock: Clock,
        once: Optional[RunOnce] = None,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._fallback = fallback
        self._clock = clock
        self._once = once

    def plan(self, request: EventRequest, event_id: Optional[str] = None) -> EventPlan:
        """Validate ``request`` against its type and the clock; raise ValidationFailed."""
        spec = get_event_type(request.event_type)
        payload = validate_payload(spec, request.payload)
        template_spec, template_payload = _template_source(spec, payload)
        size = len(json.dumps(payload, separators=(",", ":")).encode())
        if size > MAX_PAYLOAD_BYTES:
            raise ValidationFailed([FieldError("payload", f"{size} bytes is over the {MAX_PAYLOAD_BYTES}-byte limit")])
        now = self._clock()
        expires_at = request.expires_at or now + spec.ttl
        errors: list[FieldError] = []
        if expires_at <= now:
            errors.append(FieldError("expires_at", "must be in the future"))
        if request.send_after and request.send_after >= expires_at:
            errors.append(FieldError("send_after", "must be before expires_at"))
        horizon = now + MAX_HORIZON
        for name, moment in (("send_after", request.send_after), ("expires_at", request.expires_at)):
            if moment is not None and moment > horizon:
                errors.append(FieldError(name, f"must be within {MAX_HORIZON.days} days from now", "horizon"))
        errors += _recipient_errors(request.recipients)
        if errors:
            raise ValidationFailed(errors)
        inline = request.recipients.users or []
        return EventPlan(
            event_id=event_id or new_event_id(),
            event_type=spec,
            payload=template_payload,
            user_ids=[*(request.recipients.user_ids or []), *(u.user_id for u in inline)],
            contacts={u.user_id: u.contact() for u in inline} or None,
            channels=list(dict.fromkeys(request.channels or template_spec.default_channels)),
            priority=request.priority or spec.priority,
            created_at=now,
            expires_at=expires_at,
            send_after=request.send_after,
            locale=request.locale,
            template_key=template_spec.name,
            segment_id=request.recipients.segment_id,
            campaign_id=payload.get("campaign_id") if spec.name == "campaign_triggered" else None,
            run_id=payload.get("run_id") if spec.name == "campaign_triggered" else None,
        )

    def accept(self, request: EventRequest, event_id: Optional[str] = None) -> AcceptedEvent:
        """Validate, record the event, then publish its jobs to Kafka or, failing that, the delay queue.

        With an explicit ``event_id`` (a campaign run, a client's own ``event_id``, one derived from an
        Idempotency-Key) accepting twice is safe: the same job ids are published again and the worker's
        claim drops them. An existing event of that id with another type, recipients or channels is a
        :class:`Conflict`.
        """
        event_id = event_id or request.event_id
        plan = self.plan(request, event_id)
        try:
            self._store.put_event(_record(plan))
            created = True
        except Conflict:
            if event_id is None:
                raise
            self._check_same_event(plan)
            created = False
        self._deliver([plan], forget_on_failure=created)
        return _accepted(plan)

    def submit(self, request: EventRequest, caller: str, idempotency_key: Optional[str] = None) -> AcceptedEvent:
        """Accept an event sent by ``caller`` (an id of its API key); a retry with the same key never sends twice.

        With an ``idempotency_key`` or the event's own ``event_id``, the event id is fixed before anything
        is published: the client's ``event_id``, or one derived from the caller, the key and the body. So a
        retry after a timeout or an :class:`IngestIncomplete` (when the idempotency record is gone) publishes
        the same job ids, and the worker's claim on each drops the second copy. The key (or, without one,
        ``event:<event_id>``) runs through ``once``: the same body answers the first answer, another body
        is :class:`KeyReused` under an Idempotency-Key and a :class:`Conflict` under a bare ``event_id``.
        """
        if not idempotency_key and request.event_id is None:
            return self.accept(request)
        body = request.model_dump(mode="json")
        if idempotency_key:
            key = f"{caller}:{idempotency_key}"
            canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
            event_id = request.event_id or keyed_event_id(
                caller, idempotency_key, hashlib.sha256(canonical).hexdigest()
            )
        else:
            assert request.event_id is not None
            key, event_id = f"event:{request.event_id}", request.event_id
        if self._once is None:
            return self.accept(request, event_id)
        try:
            data = self._once(key, body, lambda: self.accept(request, event_id).model_dump(mode="json"))
        except KeyReused:
            if idempotency_key:
                raise
            raise Conflict(f"event_id {event_id} was already used with a different body") from None
        return AcceptedEvent.model_validate(data)

    def accept_many(self, requests: Sequence[dict[str, Any]]) -> list[AcceptedEvent | ValidationFailed]:
        """Accept a batch: each event is validated alone; the valid ones share one write and one flush."""
        results: list[AcceptedEvent | ValidationFailed] = []
        plans: list[EventPlan] = []
        family = new_family()  # the batch's events share a locator, so their records share an item
        seen: set[str] = set()
        for raw in requests:
            try:
                request = _parse(raw)
                if request.event_id in seen:
                    raise ValidationFailed([FieldError("event_id", "appears twice in the batch", "duplicate")])
                plan = self.plan(request, request.event_id or new_event_id(family))
            except ValidationFailed as exc:
                results.append(exc)
                continue
            seen.add(plan.event_id)
            plans.append(plan)
            results.append(_accepted(plan))
        jobs = sum(1 if p.segment_id else len(p.user_ids) * len(p.channels) for p in plans)
        if jobs > MAX_BATCH_JOBS:
            message = f"the batch makes {jobs} jobs, over the {MAX_BATCH_JOBS} a batch may make; split it"
            raise ValidationFailed([FieldError("events", message, "too_many_jobs")], message)
        if plans:
            self._store.put_events([_record(p) for p in plans])
            self._deliver(plans, forget_on_failure=True)
        return results

    def _deliver(self, plans: Sequence[EventPlan], forget_on_failure: bool) -> None:
        messages: list[Message] = []
        for plan in plans:
            messages += [fanout_task(plan)] if plan.segment_id else plan.jobs()
        try:
            publish_durably(self._publisher, self._fallback, messages)
        except IngestUnavailable as exc:
            if forget_on_failure:  # the event is not accepted until a retry completes it
                for plan in plans:
                    self._store.delete_event(plan.event_id)
            raise IngestIncomplete(str(exc), [plan.event_id for plan in plans], exc.retry_after_seconds) from exc

    def _check_same_event(self, plan: EventPlan) -> None:
        """An event id already recorded must name the same event: type, recipients (inline contacts included)
        and channels."""
        stored = self._store.get_event(plan.event_id)
        if stored is None:
            return
        planned = _record(plan)
        if (stored.event_type, stored.user_ids, stored.segment_id, stored.contacts_digest) != (
            planned.event_type,
            planned.user_ids,
            planned.segment_id,
            planned.contacts_digest,
        ) or [Channel(c) for c in stored.channels] != [Channel(c) for c in planned.channels]:
            raise Conflict(f"event {plan.event_id} already exists with a different type, recipients or channels")


def publish_durably(publisher: JobPublisher, fallback: DelayQueue, messages: Sequence[Message]) -> None:
    """The transport first (Kafka, or Transport sqs's jobs queue); the delay queue when it cannot take them (or the
    Kafka circuit is open: see :mod:`notify.publish_circuit`); IngestUnavailable when neither can."""
    try:
        publisher.publish(messages)
    except TransientError as transport_error:
        if isinstance(transport_error, CircuitOpen):  # known down: the circuit said so once, when it opened
            log.debug("Kafka circuit open; parking %d messages in the delay queue", len(messages))
        else:
            log.warning(
                "the transport did not take %d messages; parking them in the delay queue: %s",
                len(messages),
                transport_error,
            )
        try:
            fallback.enqueue(messages)
        except TransientError as queue_error:
            raise IngestUnavailable(
                f"no durable store took the jobs (transport: {transport_error}; delay queue: {queue_error})"
            ) from queue_error


def fanout_task(plan: EventPlan, page: int = 0, cursor: Optional[str] = None) -> FanoutTask:
    """The task that expands the first (or a given) page of the plan's segment."""
    assert plan.segment_id is not None
    return FanoutTask(
        event_id=plan.event_id,
        segment_id=plan.segment_id,
        page=page,
        cursor=cursor,
        event_type=plan.event_type.name,
        template_key=plan.template_key or plan.event_type.name,
        payload=dict(plan.payload),
        channels=list(plan.channels),
        priority=plan.priority,
        locale=plan.locale,
        created_at=plan.created_at,
        send_after=plan.send_after,
        expires_at=plan.expires_at,
        campaign_id=plan.campaign_id,
        run_id=plan.run_id,
    )


def _template_source(spec: EventType, payload: dict[str, Any]) -> tuple[EventType, dict[str, Any]]:
    """A campaign_triggered event renders with the campaign's own event type and payload."""
    if spec.name != "campaign_triggered":
        return spec, payload
    inner = get_event_type(payload["event_type"], loc="payload.event_type")
    if inner.name == "campaign_triggered":
        raise ValidationFailed([FieldError("payload.event_type", "a campaign cannot trigger another campaign")])
    return inner, validate_payload(inner, payload["payload"], loc="payload.payload")


def _recipient_errors(recipients: Recipients) -> list[FieldError]:
    """What the model alone cannot say: each recipient named once, in user_ids or users, 1,000 in all."""
    errors: list[FieldError] = []
    listed = set(recipients.user_ids or [])
    first: dict[str, int] = {}
    for index, user in enumerate(recipients.users or []):
        loc = f"recipients.users.{index}.user_id"
        if user.user_id in listed:
            errors.append(
                FieldError(loc, f"{user.user_id!r} is in user_ids too: name each recipient once", "duplicate")
            )
        elif user.user_id in first:
            message = f"{user.user_id!r} appears twice in users (items {first[user.user_id]} and {index})"
            errors.append(FieldError(loc, message, "duplicate"))
        first.setdefault(user.user_id, index)
    total = len(listed) + len(recipients.users or [])
    if total > MAX_RECIPIENTS:
        message = f"user_ids and users name {total:,} recipients; at most {MAX_RECIPIENTS:,} in all (split the event)"
        errors.append(FieldError("recipients", message, "too_many_recipients"))
    return errors


def _contacts_digest(contacts: Optional[Mapping[str, Contact]]) -> Optional[str]:
    """A SHA-256 of the inline recipients' contacts: the event record keeps it instead of the contacts (1,000 of
    them would not fit in an item), so the same event id sent with other contacts is a conflict."""
    if not contacts:
        return None
    data = {uid: contact.model_dump(mode="json", exclude_none=True) for uid, contact in contacts.items()}
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _accepted(plan: EventPlan) -> AcceptedEvent:
    return AcceptedEvent(event_id=plan.event_id, job_ids=plan.job_ids(), segment_id=plan.segment_id)


def _parse(raw: dict[str, Any]) -> EventRequest:
    try:
        return EventRequest.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc)) from None


def _record(plan: EventPlan) -> EventRecord:
    def opt(moment: Optional[datetime]) -> Optional[str]:
        return iso(moment) if moment else None

    return EventRecord(
        event_id=plan.event_id,
        event_type=plan.event_type.name,
        user_ids=list(plan.user_ids),
        channels=list(plan.channels),
        priority=plan.priority.value,
        created_at=iso(plan.created_at),
        expires_at=iso(plan.expires_at),
        send_after=opt(plan.send_after),
        segment_id=plan.segment_id,
        payload=dict(plan.payload),
        template_key=plan.template_key if plan.template_key != plan.event_type.name else None,
        locale=plan.locale,
        contacts_digest=_contacts_digest(plan.contacts),
    )
