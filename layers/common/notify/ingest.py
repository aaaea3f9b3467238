"""Ingestion: validate an event, expand it into jobs and store them durably."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Optional

from pydantic import ValidationError

from notify.catalog import field_errors, get_event_type, validate_payload
from notify.clock import Clock, iso
from notify.errors import FieldError, IngestUnavailable, TransientError, ValidationFailed
from notify.jobs import EventPlan, new_event_id
from notify.models import AcceptedEvent, EventRequest
from notify.ports import DelayQueue, EventRecord, JobPublisher, StatusStore

# Every job carries the payload; this keeps a job well under SQS's 256 KiB and Kafka's 1 MiB.
MAX_PAYLOAD_BYTES = 64 * 1024


class IngestService:
    """Turns an :class:`EventRequest` into jobs that are in Kafka or the delay queue.

    The answer is only returned once every job is durably stored; otherwise
    :class:`IngestUnavailable` is raised and nothing is left behind.
    """

    def __init__(
        self,
        store: StatusStore,
        publisher: JobPublisher,
        fallback: DelayQueue,
        clock: Clock,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._fallback = fallback
        self._clock = clock

    def plan(self, request: EventRequest, event_id: Optional[str] = None) -> EventPlan:
        """Validate ``request`` against its type and the clock; raise ValidationFailed."""
        spec = get_event_type(request.event_type)
        payload = validate_payload(spec, request.payload)
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
        if request.recipients.segment_id is not None:
            errors.append(
                FieldError(
                    "recipients.segment_id", "segment delivery is not available yet; send user_ids", "unsupported"
                )
            )
        if errors:
            raise ValidationFailed(errors)
        return EventPlan(
            event_id=event_id or new_event_id(),
            event_type=spec,
            payload=payload,
            user_ids=request.recipients.user_ids or [],
            channels=list(dict.fromkeys(request.channels or spec.default_channels)),
            priority=request.priority or spec.priority,
            created_at=now,
            expires_at=expires_at,
            send_after=request.send_after,
            locale=request.locale,
        )

    def accept(self, request: EventRequest, event_id: Optional[str] = None) -> AcceptedEvent:
        """Validate, record the event, then publish its jobs to Kafka or, failing that, the delay queue."""
        plan = self.plan(request, event_id)
        self._store.put_event(_record(plan))
        self._deliver([plan])
        return AcceptedEvent(event_id=plan.event_id, job_ids=plan.job_ids())

    def accept_many(self, requests: Sequence[dict[str, Any]]) -> list[AcceptedEvent | ValidationFailed]:
        """Accept a batch: each event is validated alone; the valid ones share one write and one flush."""
        results: list[AcceptedEvent | ValidationFailed] = []
        plans: list[EventPlan] = []
        for raw in requests:
            try:
                plan = self.plan(_parse(raw))
            except ValidationFailed as exc:
                results.append(exc)
                continue
            plans.append(plan)
            results.append(AcceptedEvent(event_id=plan.event_id, job_ids=plan.job_ids()))
        if plans:
            self._store.put_events([_record(p) for p in plans])
            self._deliver(plans)
        return results

    def _deliver(self, plans: Sequence[EventPlan]) -> None:
        jobs = [job for plan in plans for job in plan.jobs()]
        try:
            self._publisher.publish(jobs)
        except TransientError as kafka_error:
            try:
                self._fallback.enqueue(jobs)
            except TransientError as queue_error:
                for plan in plans:
                    self._store.delete_event(plan.event_id)
                raise IngestUnavailable(
                    f"no durable store took the jobs (kafka: {kafka_error}; delay queue: {queue_error})"
                ) from queue_error


def _parse(raw: dict[str, Any]) -> EventRequest:
    try:
        return EventRequest.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc)) from None


def _record(plan: EventPlan, via: str = "kafka") -> EventRecord:
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
        via=via,
    )
