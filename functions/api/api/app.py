"""ApiFunction: the HTTP API (API Gateway HTTP API v2 → Powertools Event Handler)."""

# No `from __future__ import annotations`: the Event Handler reads route annotations at runtime.

import json
from typing import Any, Optional

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
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

from api.openapi import SECURITY, SECURITY_SCHEMES
from api.routes import campaigns, dlq, events, segments, templates

TITLE = "Notification service"
VERSION = "1.0.0"

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver(enable_validation=True)
OPENAPI = {"title": TITLE, "version": VERSION, "security_schemes": SECURITY_SCHEMES, "security": SECURITY}
app.enable_swagger(path="/docs", **OPENAPI)  # type: ignore[arg-type]
app.include_router(events.router)
app.include_router(templates.router)
app.include_router(dlq.router)
app.include_router(campaigns.router)
app.include_router(segments.router)


@app.get("/health", tags=["ops"], security=[])
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> dict[str, Any]:
    return dict(json.loads(app.get_openapi_json_schema(**OPENAPI)))  # type: ignore[arg-type]


def _error(
    status: int,
    code: str,
    message: str,
    fields: Optional[list[FieldError]] = None,
    headers: Optional[dict[str, str]] = None,
) -> Response:
    """The one error shape of the API: {"error": {code, message, fields?}}."""
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if fields:
        body["error"]["fields"] = [{"loc": f.loc, "msg": f.msg, "type": f.type} for f in fields]
    return Response(status, content_types.APPLICATION_JSON, json.dumps(body), headers=headers)


@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response:
    fields = [
        FieldError(
            ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body",
            str(err.get("msg", "invalid")),
            str(err.get("type", "value_error")),
        )
        for err in exc.errors()
    ]
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


@app.exception_handler(IdempotencyValidationError)
def _idempotency_mismatch(exc: IdempotencyValidationError) -> Response:
    message = "this Idempotency-Key was already used with a different body"
    return _error(422, "idempotency_key_reused", message, [FieldError("Idempotency-Key", message)])


@app.exception_handler(IdempotencyAlreadyInProgressError)
def _idempotency_in_progress(exc: IdempotencyAlreadyInProgressError) -> Response:
    message = "a request with this Idempotency-Key is still in progress; retry shortly"
    return _error(409, "idempotency_in_progress", message, headers={"Retry-After": "1"})


@app.exception_handler(IngestUnavailable)
def _unavailable(exc: IngestUnavailable) -> Response:
    logger.error("ingestion unavailable", extra={"error": str(exc)})
    retry_after = {"Retry-After": str(exc.retry_after_seconds)}
    return _error(503, "unavailable", "The service cannot store events right now; retry later", headers=retry_after)


@app.exception_handler(StoreUnavailable)
def _store_unavailable(exc: StoreUnavailable) -> Response:
    logger.error("store unavailable", extra={"error": str(exc)})
    return _error(503, "unavailable", "The status store is unavailable; retry later", headers={"Retry-After": "5"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
