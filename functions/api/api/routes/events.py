"""Events in, notification status out."""

# No `from __future__ import annotations`: the Event Handler reads route annotations at runtime.

from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.metrics import MetricUnit
from notify.models import AcceptedEvent, EventRequest

from api.context import require, services

logger = Logger(child=True)
tracer = Tracer()
metrics = Metrics()
router = Router()


@router.post(
    "/api/v1/events",
    tags=["events"],
    responses={202: {"description": "Accepted: every job is durably stored"}},
)
@tracer.capture_method
def post_event(event: Annotated[EventRequest, Body(embed=False)]) -> Response[AcceptedEvent]:
    """Accept a domain event; answer only once every job is in Kafka or the delay queue."""
    require(router, "events:write")
    accepted: AcceptedEvent = services().ingest.accept(event)
    logger.append_keys(event_id=accepted.event_id)
    logger.info("event accepted", extra={"event_type": event.event_type, "jobs": len(accepted.job_ids)})
    metrics.add_metric(name="JobsAccepted", unit=MetricUnit.Count, value=len(accepted.job_ids))
    return Response(202, content_types.APPLICATION_JSON, accepted)


@router.get("/api/v1/events/<event_id>", tags=["events"])
@tracer.capture_method
def get_event(event_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
    """The event and every job it produced, with their statuses."""
    require(router, "notifications:read")
    return services().status.event(event_id)


@router.get("/api/v1/notifications/<job_id>", tags=["notifications"])
@tracer.capture_method
def get_notification(job_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
    """One notification's status, attempts and full transition history."""
    require(router, "notifications:read")
    return services().status.notification(job_id)
