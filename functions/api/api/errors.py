"""Every error the API answers, mapped in one place to the one error shape.

Domain errors become their 4xx/503; a request the API cannot read becomes 400/413/415 (see api.body);
a path without the method is 405 with ``Allow``, an unknown path 404; anything else is a bug: logged
with its traceback and answered 500.
"""
# No `from __future__ import annotations`: the Event Handler reads annotations at runtime.

import json
from collections.abc import Callable
from typing import Any, Optional

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from notify.errors import (
    Conflict,
    FieldError,
    Forbidden,
    IngestUnavailable,
    KeyReused,
    NotFound,
    StoreUnavailable,
    TransientError,
    Unauthorized,
    ValidationFailed,
)
from notify.services.ingest import IngestIncomplete

from api.body import FORM_PATHS, BodyProblem, UnreadableBody, body_problem

logger = Logger(child=True)
# RFC 6750: a 401 of a bearer-authenticated operation says which scheme it wants, and why a token was refused.
BEARER_REALM = 'Bearer realm="inbox"'


class BearerRefused(Unauthorized):
    """No valid user token in ``Authorization: Bearer …``: a 401 with ``WWW-Authenticate: Bearer``.

    ``invalid`` is False when the request carried no credentials at all (RFC 6750 then names no error).
    """

    def __init__(self, message: str, invalid: bool = True) -> None:
        super().__init__(message)
        self.invalid = invalid

    @property
    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value."""
        return f'{BEARER_REALM}, error="invalid_token"' if self.invalid else BEARER_REALM


def error_body(
    code: str, message: str, fields: Optional[list[FieldError]] = None, event_id: Optional[str] = None
) -> dict[str, Any]:
    """The one error shape of the API: {"error": {code, message, fields?, event_id?}}.

    Every error answer has it, and so has each invalid event in a batch's 207.
    """
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = [
            {"loc": f.loc, "msg": f.msg, "type": f.type, **({"line": f.line} if f.line is not None else {})}
            for f in fields
        ]
    if event_id:
        error["event_id"] = event_id
    return {"error": error}


def _error(
    status: int,
    code: str,
    message: str,
    fields: Optional[list[FieldError]] = None,
    headers: Optional[dict[str, str]] = None,
    event_id: Optional[str] = None,
) -> Response:
    """An error answer: ``status`` with the one error shape (``error_body``)."""
    body = error_body(code, message, fields, event_id)
    return Response(status, content_types.APPLICATION_JSON, json.dumps(body), headers=headers)


def _refused(problem: BodyProblem) -> Response:
    return _error(problem.status, problem.code, problem.message)


def _unexpected(exc: Exception) -> Response:
    """A bug: logged with its traceback, answered 500 in the error shape."""
    logger.exception("unhandled error", extra={"error_type": type(exc).__name__})
    return _error(500, "internal_error", "An unexpected error occurred; it has been logged")


def refuse_unreadable_bodies(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
    """A body the route would get must be JSON, UTF-8 and within the limit (see api.body), and an object: every
    route's body is one, and the Event Handler validates a list's first element against a model that is not a list
    (``[{…event…}]`` was accepted as the event)."""
    problem = body_problem(app.current_event)
    if problem is not None:
        raise UnreadableBody(problem)
    if not isinstance(_json_body(app), (dict, type(None))):
        raise ValidationFailed([FieldError("body", "the body is a JSON object", "type")])
    return next_middleware(app)


def _json_body(app: APIGatewayHttpResolver) -> Any:
    """The parsed JSON body; None without one, for a form body, or when it is not JSON (validation says so)."""
    event = app.current_event
    if not (event.decoded_body or "").strip() or str(event.get("rawPath") or event.path).startswith(FORM_PATHS):
        return None
    try:
        return event.json_body
    except ValueError:
        return None


def register(app: APIGatewayHttpResolver, allowed_methods: Callable[[str], list[str]]) -> None:
    """Install the body check and every error handler on ``app``; ``allowed_methods(path)`` feeds the 405s."""
    app.use(middlewares=[refuse_unreadable_bodies])

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
        allowed = allowed_methods(path)
        if allowed:
            allow = ", ".join(allowed)
            return _error(
                405, "method_not_allowed", f"{method} is not allowed here; use {allow}", headers={"Allow": allow}
            )
        return _error(404, "not_found", f"no operation at {path}")

    @app.exception_handler(ValidationFailed)
    def _invalid(exc: ValidationFailed) -> Response:
        return _error(422, "validation_error", exc.message, exc.errors)

    @app.exception_handler(Unauthorized)
    def _unauthorized(exc: Unauthorized) -> Response:
        return _error(401, "unauthorized", str(exc))

    @app.exception_handler(BearerRefused)
    def _bearer_refused(exc: BearerRefused) -> Response:
        return _error(401, "unauthorized", str(exc), headers={"WWW-Authenticate": exc.challenge})

    @app.exception_handler(Forbidden)
    def _forbidden(exc: Forbidden) -> Response:
        return _error(403, "forbidden", str(exc))

    @app.exception_handler(NotFound)
    def _not_found(exc: NotFound) -> Response:
        return _error(404, "not_found", str(exc))

    @app.exception_handler(Conflict)
    def _conflict(exc: Conflict) -> Response:
        return _error(409, "conflict", str(exc))

    @app.exception_handler(KeyReused)
    def _idempotency_mismatch(exc: KeyReused) -> Response:
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

    @app.exception_handler(IngestIncomplete)
    def _incomplete(exc: IngestIncomplete) -> Response:
        """Some jobs may be stored: the answer names the event, whose retry sends nothing twice."""
        logger.error("ingestion incomplete", extra={"error": str(exc), "event_ids": exc.event_ids})
        retry_after = {"Retry-After": str(exc.retry_after_seconds)}
        if len(exc.event_ids) != 1:
            message = "The service cannot store events right now; resend them with their event_id after Retry-After"
            return _error(503, "unavailable", message, headers=retry_after)
        (event_id,) = exc.event_ids
        message = (
            "The event was not accepted whole and part of it may still be delivered: resend the same body with "
            "the same Idempotency-Key, or with this event_id, after Retry-After; nothing will be sent twice"
        )
        return _error(503, "unavailable", message, headers=retry_after, event_id=event_id)

    @app.exception_handler(TransientError)
    def _dependency_down(exc: TransientError) -> Response:
        """A dependency a request needs is down for now (the signing key's parameter store, for one)."""
        logger.error("dependency unavailable", extra={"error": str(exc)})
        return _error(503, "unavailable", "A dependency is unavailable; retry later", headers={"Retry-After": "5"})

    @app.exception_handler(StoreUnavailable)
    def _store_unavailable(exc: StoreUnavailable) -> Response:
        logger.error("store unavailable", extra={"error": str(exc)})
        return _error(503, "unavailable", "The status store is unavailable; retry later", headers={"Retry-After": "5"})
