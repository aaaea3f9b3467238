"""ApiFunction: the HTTP API (API Gateway HTTP API v2 → Powertools Event Handler)."""

# No `from __future__ import annotations`: the Event Handler reads route annotations at runtime.

import json
import re
from functools import cache
from typing import Any, Optional

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
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

from api.body import BodyProblem, UnreadableBody, body_problem, parse_json
from api.openapi import SECURITY, SECURITY_SCHEMES, responses
from api.routes import campaigns, dlq, events, segments, templates
from api.views import Health

TITLE = "Notification service"
VERSION = "1.0.0"

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=parse_json)
OPENAPI = {"title": TITLE, "version": VERSION, "security_schemes": SECURITY_SCHEMES, "security": SECURITY}
app.enable_swagger(path="/docs", **OPENAPI)  # type: ignore[arg-type]
app.include_router(events.router)
app.include_router(templates.router)
app.include_router(dlq.router)
app.include_router(campaigns.router)
app.include_router(segments.router)


def refuse_unreadable_bodies(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
    """A body the route would get must be JSON, UTF-8 and within the limit (see api.body)."""
    problem = body_problem(app.current_event)
    if problem is not None:
        raise UnreadableBody(problem)
    return next_middleware(app)


app.use(middlewares=[refuse_unreadable_bodies])


@app.get("/health", tags=["ops"], security=[], responses=responses(200, "The API is up", public=True))
def health() -> Health:
    return Health(status="ok")


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> dict[str, Any]:
    return openapi_document()


# Operations anyone may call. Powertools drops an empty `security` list, which would leave them under the
# document's API key requirement; the document says so explicitly.
PUBLIC_OPERATIONS = (("/health", "get"),)


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document the API serves (and docs/openapi.json holds)."""
    spec: dict[str, Any] = json.loads(app.get_openapi_json_schema(**OPENAPI))  # type: ignore[arg-type]
    for path, method in PUBLIC_OPERATIONS:
        spec["paths"][path][method]["security"] = []
    return spec


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


def _refused(problem: BodyProblem) -> Response:
    return _error(problem.status, problem.code, problem.message)


def _unexpected(exc: Exception) -> Response:
    """A bug: logged with its traceback, answered 500 in the error shape."""
    logger.exception("unhandled error", extra={"error_type": type(exc).__name__})
    return _error(500, "internal_error", "An unexpected error occurred; it has been logged")


@app.exception_handler(UnreadableBody)
def _unreadable(exc: UnreadableBody) -> Response:
    return _refused(exc.problem)


@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response:
    errors = exc.errors()
    if any(tuple(err.get("loc", ()))[:1] == ("response",) for err in errors):
        return _unexpected(exc)  # the route's answer broke its own schema
    if any(tuple(err.get("loc", ()))[:1] == ("body",) for err in errors):
        problem = body_problem(app.current_event)  # e.g. a form body Powertools parsed before asking
        if problem is not None:
            return _refused(problem)
    if any(err.get("type") == "json_invalid" for err in errors):
        reason = next(str(e.get("ctx", {}).get("error", "")) for e in errors if e.get("type") == "json_invalid")
        return _error(400, "invalid_json", f"The body is not valid JSON: {reason}")
    fields = [
        FieldError(
            ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body",
            str(err.get("msg", "invalid")),
            str(err.get("type", "value_error")),
        )
        for err in errors
    ]
    return _error(422, "validation_error", "The request is not valid", fields)


@app.exception_handler(RequestUnsupportedContentType)
def _unsupported_content_type(exc: RequestUnsupportedContentType) -> Response:
    problem = body_problem(app.current_event)
    return _refused(problem) if problem else _error(415, "unsupported_media_type", "send application/json")


@app.exception_handler(ValueError)
def _value_error(exc: ValueError) -> Response:
    """Powertools decodes the body before any middleware: base64, UTF-8 and multipart errors surface here.

    The middleware refuses unreadable bodies before a route runs, so when ``body_problem`` finds
    nothing wrong with the request, the error came from the code: a bug, not bad input.
    """
    problem = body_problem(app.current_event)
    return _refused(problem) if problem else _unexpected(exc)


@app.exception_handler(Exception)
def _unhandled(exc: Exception) -> Response:
    return _unexpected(exc)


@app.not_found
def _no_route(exc: NotFoundError) -> Response:
    method, path = app.current_event.http_method.upper(), app.current_event.path
    allowed = _allowed_methods(path)
    if allowed:
        allow = ", ".join(allowed)
        return _error(405, "method_not_allowed", f"{method} is not allowed here; use {allow}", headers={"Allow": allow})
    return _error(404, "not_found", f"no operation at {path}")


@cache
def _routes() -> list[tuple[re.Pattern[str], list[str]]]:
    """Each documented path as a pattern, with its methods (from the OpenAPI document itself)."""
    table = []
    for path, item in openapi_document()["paths"].items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path))
        methods = [m.upper() for m in ("get", "put", "post", "delete", "patch") if m in item]
        table.append((re.compile(f"^{pattern}$"), methods))
    return table


def _allowed_methods(path: str) -> list[str]:
    return next((methods for pattern, methods in _routes() if pattern.match(path)), [])


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
