"""Events in, notification status out."""
# No `from __future__ import annotations`: the Event Handler reads route annotations at runtime.

from typing import Annotated, Any, Optional

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.models import Example
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from notify.catalog import EVENT_TYPES
from notify.errors import ValidationFailed
from notify.models import AcceptedEvent, Channel, EventRequest, Status
from pydantic import BaseModel, Field

from api.deps import Admin, AnyKey, EventsWriter, Ingest, NotificationsReader, Queries, Rendered
from api.errors import error_body
from api.openapi import links_to, responses
from api.params import PathUserId, PercentDecoded
from api.views import (
    BatchResults,
    DigestMemberPage,
    EventStatus,
    EventTypeList,
    Notification,
    NotificationPage,
    RenderedNotification,
)

logger = Logger(child=True)
tracer = Tracer()
metrics = Metrics()
router = Router()

MAX_BATCH = 100
SIGNUP = {
    "event_type": "user_registered",
    "payload": {"confirmation_url": "https://example.com/confirm/42", "first_name": "Ada"},
    "recipients": {"user_ids": ["demo-user-42"]},
}
EVENT_EXAMPLES = {
    "signup": Example(summary="One user, the type's default channels", value=SIGNUP),
    "segment": Example(
        summary="A segment, on chosen channels",
        value={
            "event_type": "new_film",
            "payload": EVENT_TYPES["new_film"].sample_payload(),
            "recipients": {"segment_id": "all"},
            "channels": ["email", "websocket"],
            "priority": "low",
        },
    ),
}


class EventBatch(BaseModel):
    """Body of POST /api/v1/events:batch; each event is validated on its own."""

    events: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH)


@router.post(
    "/api/v1/events",
    tags=["events"],
    responses=responses(
        202,
        "Accepted: every job is durably stored in Kafka or the delay queue",
        409,
        links={
            **links_to("event_id", "/event_id", ("get", "/api/v1/events/{event_id}")),
            **links_to("job_id", "/job_ids/0", ("get", "/api/v1/notifications/{job_id}")),
        },
    ),
)
@tracer.capture_method
def post_event(
    caller: EventsWriter,
    ingest: Ingest,
    event: Annotated[EventRequest, Body(embed=False, openapi_examples=EVENT_EXAMPLES)],
    idempotency_key: Annotated[Optional[str], Header(alias="Idempotency-Key", min_length=1, max_length=255)] = None,
) -> Response[AcceptedEvent]:
    """Accept a domain event; answer only once every job is in Kafka or the delay queue.

    With an Idempotency-Key or an ``event_id`` the event's id is known before anything is published
    (the client's, or derived from the caller, the key and the body), so a retry after a timeout or a
    503 publishes the same job ids and the worker sends each once.
    """
    accepted = ingest.submit(event, caller.id, idempotency_key)
    logger.append_keys(event_id=accepted.event_id)
    logger.info("event accepted", extra={"event_type": event.event_type, "jobs": len(accepted.job_ids)})
    metrics.add_metric(name="JobsAccepted", unit=MetricUnit.Count, value=len(accepted.job_ids))
    return Response(202, content_types.APPLICATION_JSON, accepted)


@router.post(
    "/api/v1/events:batch",
    tags=["events"],
    responses=responses(207, "One result per event, in order", 409),
)
@tracer.capture_method
def post_events(
    _: EventsWriter,
    ingest: Ingest,
    batch: Annotated[
        EventBatch, Body(embed=False, openapi_examples={"two": Example(value={"events": [SIGNUP, SIGNUP]})})
    ],
) -> Response[BatchResults]:
    """Accept up to 100 events in one call; invalid ones are reported without failing the rest."""
    results = []
    accepted = 0
    for index, outcome in enumerate(ingest.accept_many(batch.events)):
        if isinstance(outcome, ValidationFailed):
            error = error_body("validation_error", outcome.message, outcome.errors)
            results.append({"index": index, "status": 422, **error})
        else:
            accepted += len(outcome.job_ids)
            results.append({"index": index, **outcome.model_dump(mode="json"), "status": 202})
    metrics.add_metric(name="JobsAccepted", unit=MetricUnit.Count, value=accepted)
    return Response(207, content_types.APPLICATION_JSON, BatchResults.model_validate({"results": results}))


@router.get("/api/v1/events/<event_id>", tags=["events"], responses=responses(200, "The event and its jobs", 404))
@tracer.capture_method
def get_event(
    _: NotificationsReader, queries: Queries, event_id: Annotated[str, Path(max_length=64), PercentDecoded]
) -> EventStatus:
    """The event and every job it produced, with their statuses."""
    return EventStatus.model_validate(queries.event(event_id))


@router.get("/api/v1/notifications/<job_id>", tags=["notifications"], responses=responses(200, "The notification", 404))
@tracer.capture_method
def get_notification(
    _: NotificationsReader, queries: Queries, job_id: Annotated[str, Path(max_length=64), PercentDecoded]
) -> Notification:
    """One notification's status, attempts and full transition history.

    A digest's job adds ``digest`` (its count, times and first 20 members); a DIGESTED job adds ``digest_job_id``.
    """
    return Notification.model_validate(queries.notification(job_id))


@router.get(
    "/api/v1/notifications/<job_id>/members",
    tags=["notifications"],
    responses=responses(200, "A page of the digest's members, oldest first", 404),
)
@tracer.capture_method
def list_digest_members(
    _: NotificationsReader,
    queries: Queries,
    job_id: Annotated[str, Path(max_length=64), PercentDecoded],
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[Optional[str], Query(max_length=2048)] = None,
) -> DigestMemberPage:
    """A digest's members (the notifications it collected, each DIGESTED), oldest first, with cursor pagination.

    404 for a job that is not a digest's. The digest's notification shows the first 20 and this page's cursor.
    """
    return DigestMemberPage.model_validate(queries.digest_members(job_id, limit, cursor))


@router.get(
    "/api/v1/notifications/<job_id>/rendered",
    tags=["notifications"],
    responses=responses(200, "The message as it was rendered (admin scope)", 404),
)
@tracer.capture_method
def get_rendered_notification(
    _: Admin, rendered: Rendered, job_id: Annotated[str, Path(max_length=64), PercentDecoded]
) -> RenderedNotification:
    """The notification's message rendered again: the template version its job recorded, with its event's payload.

    Scope ``admin``: the payload and the message hold whatever the event carried (password-reset and confirmation
    links among them), which ``notifications:read`` (statuses and timelines) does not grant.
    404 (saying why) for a job not rendered yet, or whose payload is not kept.
    """
    return RenderedNotification.model_validate(rendered.render(job_id))


@router.get("/api/v1/event-types", tags=["events"], responses=responses(200, "Every event type (any valid key)"))
@tracer.capture_method
def list_event_types(_: AnyKey) -> EventTypeList:
    """The event types the service accepts: defaults, payload fields and a payload that validates.

    The public catalog of what may be sent: any valid API key may read it, whatever its scopes.
    """
    return EventTypeList.model_validate({"items": [spec.describe() for spec in EVENT_TYPES.values()]})


@router.get(
    "/api/v1/users/<user_id>/notifications",
    tags=["notifications"],
    responses=responses(200, "A page of notifications, newest first"),
)
@tracer.capture_method
def list_user_notifications(
    _: NotificationsReader,
    queries: Queries,
    user_id: PathUserId,
    status: Annotated[Optional[Status], Query()] = None,
    channel: Annotated[Optional[Channel], Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[Optional[str], Query(max_length=2048)] = None,
) -> NotificationPage:
    """A user's notifications, newest first, with cursor pagination."""
    page = queries.user_notifications(user_id, limit, cursor, status, channel)
    return NotificationPage.model_validate(page)
