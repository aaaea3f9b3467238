"""ApiFunction: the HTTP API (API Gateway HTTP API v2 → Powertools Event Handler)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from notify.access import authorize
from notify.adapters.dynamo import DynamoApiKeyStore, DynamoStatusStore
from notify.adapters.kafka import KafkaConfig, KafkaJobPublisher
from notify.adapters.sqs import SqsDelayQueue
from notify.clock import utc_now
from notify.errors import (
    Conflict,
    FieldError,
    Forbidden,
    IngestUnavailable,
    NotFound,
    StoreUnavailable,
    Unauthorized,
    ValidationFailed,
)
from notify.ingest import IngestService
from notify.models import AcceptedEvent, EventRequest
from notify.settings import ApiSettings, load
from notify.status import StatusQueries

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver(enable_validation=True)
app.enable_swagger(path="/docs", title="Notification service", version="1.0.0")


@dataclass(frozen=True)
class Services:
    ingest: IngestService
    status: StatusQueries
    keys: DynamoApiKeyStore


def build_services(settings: ApiSettings) -> Services:
    """The composition root: every client is built here, once per container."""
    dynamodb = boto3.client("dynamodb")
    store = DynamoStatusStore(dynamodb, settings.notifications_table)
    publisher = KafkaJobPublisher(
        KafkaConfig(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topic=settings.kafka_topic,
            timeout_seconds=settings.kafka_timeout_seconds,
            auth=settings.kafka_auth,
            region=settings.region,
        )
    )
    fallback = SqsDelayQueue(boto3.client("sqs"), settings.delay_queue_url)
    return Services(
        ingest=IngestService(store, publisher, fallback, utc_now),
        status=StatusQueries(store),
        keys=DynamoApiKeyStore(dynamodb, settings.api_keys_table),
    )


@cache
def services() -> Services:
    return build_services(load(ApiSettings))


def _require(scope: str) -> None:
    authorize(services().keys, app.current_event.headers.get("x-api-key"), scope)


@app.get("/health", tags=["ops"])
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response:
    return Response(
        200, content_types.APPLICATION_JSON, app.get_openapi_json_schema(title="Notification service", version="1.0.0")
    )


@app.post("/api/v1/events", tags=["events"], responses={202: {"description": "Accepted: every job is durably stored"}})
@tracer.capture_method
def post_event(event: Annotated[EventRequest, Body(embed=False)]) -> Response:
    """Accept a domain event; answer only once every job is in Kafka or the delay queue."""
    _require("events:write")
    accepted: AcceptedEvent = services().ingest.accept(event)
    logger.append_keys(event_id=accepted.event_id)
    logger.info("event accepted", extra={"event_type": event.event_type, "jobs": len(accepted.job_ids)})
    metrics.add_metric(name="JobsAccepted", unit=MetricUnit.Count, value=len(accepted.job_ids))
    return Response(202, content_types.APPLICATION_JSON, accepted.model_dump_json())


@app.get("/api/v1/events/<event_id>", tags=["events"])
@tracer.capture_method
def get_event(event_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
    _require("notifications:read")
    return services().status.event(event_id)


@app.get("/api/v1/notifications/<job_id>", tags=["notifications"])
@tracer.capture_method
def get_notification(job_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
    _require("notifications:read")
    return services().status.notification(job_id)


def _error(
    status: int, code: str, message: str, fields: list[FieldError] | None = None, headers: dict[str, str] | None = None
) -> Response:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if fields:
        body["error"]["fields"] = [{"loc": f.loc, "msg": f.msg, "type": f.type} for f in fields]
    return Response(status, content_types.APPLICATION_JSON, json.dumps(body), headers=headers)


@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response:
    fields = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        fields.append(
            FieldError(".".join(loc) or "body", str(err.get("msg", "invalid")), str(err.get("type", "value_error")))
        )
    return _error(422, "validation_error", "The request is not valid", fields)


@app.exception_handler(ValidationFailed)
def _invalid(exc: ValidationFailed) -> Response:
    return _error(422, "validation_error", exc.message, exc.errors)


@app.exception_handler(Unauthorized)
def _unauthorized(exc: Unauthorized) -> Response:
    return _error(401, "unauthorized", str(exc))


@app.exception_handler(Forbidden)
def _forbidden(exc: Forbidden) -> Response:
    return _error(403, "forbidden", str(exc))


@app.exception_handler(NotFound)
def _not_found(exc: NotFound) -> Response:
    return _error(404, "not_found", str(exc))


@app.exception_handler(Conflict)
def _conflict(exc: Conflict) -> Response:
    return _error(409, "conflict", str(exc))


@app.exception_handler(IngestUnavailable)
def _unavailable(exc: IngestUnavailable) -> Response:
    logger.error("ingestion unavailable", extra={"error": str(exc)})
    return _error(
        503,
        "unavailable",
        "The service cannot store events right now; retry later",
        headers={"Retry-After": str(exc.retry_after_seconds)},
    )


@app.exception_handler(StoreUnavailable)
def _store_unavailable(exc: StoreUnavailable) -> Response:
    logger.error("store unavailable", extra={"error": str(exc)})
    return _error(503, "unavailable", "The status store is unavailable; retry later", headers={"Retry-After": "5"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
