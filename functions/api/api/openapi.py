"""What the OpenAPI document says about errors and access, shared by every route."""
# No `from __future__ import annotations`: the Event Handler reads these models at runtime.

import re
from typing import Any, Optional

from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, HTTPBearer
from pydantic import BaseModel, Field

from api.body import JSON_MEDIA_TYPE, MAX_BODY_BYTES, MAX_JSON_DEPTH


class FieldErrorModel(BaseModel):
    loc: str
    msg: str
    type: str
    line: Optional[int] = Field(
        default=None, ge=1, description="for a template part: the line of its text the problem is on (1-based)"
    )


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: Optional[list[FieldErrorModel]] = None
    event_id: Optional[str] = Field(
        default=None,
        description=(
            "On a 503 from POST /api/v1/events: the event that may be partly stored. Resend the same body with "
            "the same Idempotency-Key, or with this event_id, to complete it; nothing is sent twice."
        ),
    )


class ErrorResponse(BaseModel):
    """The one error shape of the API."""

    error: ErrorBody


_DESCRIPTIONS = {
    400: f"The body cannot be read: not UTF-8 text, not JSON, or nested deeper than {MAX_JSON_DEPTH} levels",
    401: "Missing or invalid X-API-Key",
    403: "The key lacks the scope",
    404: "Not found",
    409: "Conflict (a concurrent change, or an Idempotency-Key still in progress)",
    413: f"The body is larger than {MAX_BODY_BYTES:,} bytes, or the request line and headers larger than the "
    "10,240 bytes API Gateway accepts (refused before the function)",
    415: f"The body is not {JSON_MEDIA_TYPE}",
    422: "Field-level validation errors",
    500: "An unexpected error: a bug, logged with the request's correlation id",
    503: "A dependency is down; retry after Retry-After (an event's answer may carry the event_id to resend it with)",
}
# What any request can get: a body the API cannot read, field errors, a bug.
_ALWAYS = (400, 413, 415, 422, 500)
# What any operation behind an API key can get: the key refused, or its store down.
_PROTECTED = (401, 403, 503)
# What any operation behind a user token can get: the token refused, or a store or the signing key unreadable.
_BEARER = (401, 503)
_BEARER_401 = (
    "Missing, malformed, forged, altered or expired user token (Authorization: Bearer); the answer carries "
    "WWW-Authenticate: Bearer"
)

SECURITY_SCHEMES = {
    "ApiKey": APIKey.model_validate({"name": "X-API-Key", "in": APIKeyIn.header}),
    "bearerAuth": HTTPBearer(
        bearerFormat="user token",
        description="A user token from POST /api/v1/users/{user_id}/tokens: the user reads only their own inbox",
    ),
}
SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}]
# The inbox's operations: the user the token names, instead of the API key.
BEARER_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def responses(
    success: int,
    description: str,
    *errors: int,
    public: bool = False,
    bearer: bool = False,
    links: Optional[dict[str, Any]] = None,
) -> dict[int, Any]:
    """The operation's success (its schema comes from the route's return annotation) and its errors.

    Every error has the one error shape. ``errors`` adds route-specific ones (404, 409) to those any
    request can get (400, 413, 415, 422, 500) and, unless ``public``, those of the API key (401, 403, 503)
    or, for a ``bearer`` operation, those of the user token (401, 503). ``links`` (see ``links_to``) go on
    the success.
    """
    codes = {*_ALWAYS, *errors, *(() if public else _BEARER if bearer else _PROTECTED)}
    descriptions = {**_DESCRIPTIONS, **({401: _BEARER_401} if bearer else {})}
    out: dict[int, Any] = {
        code: {"description": descriptions[code], "content": {"application/json": {"model": ErrorResponse}}}
        for code in sorted(codes)
    }
    if bearer:
        out[401]["headers"] = {
            "WWW-Authenticate": {
                "description": 'Bearer realm="inbox", with error="invalid_token" when a token was sent',
                "schema": {"type": "string"},
            }
        }
    # 204 has no body: an explicit empty content keeps the return annotation out of it.
    out[success] = {"description": description, **({"content": {}} if success == 204 else {})}
    if links:
        out[success]["links"] = links
    return out


def links_to(parameter: str, value: str, *operations: tuple[str, str]) -> dict[str, Any]:
    """OpenAPI links from an answer to the operations its ``value`` (a JSON pointer into the body) addresses.

    They tell clients, and schemathesis' stateful phase, that a created id can be used right away:
    ``links_to("campaign_id", "/campaign_id", ("get", "/api/v1/campaigns/{campaign_id}"))``.
    """
    return {
        re.sub(r"[^A-Za-z0-9]+", "_", f"{method} {path}").strip("_"): {
            "operationRef": "#/paths/" + path.replace("~", "~0").replace("/", "~1") + f"/{method}",
            "parameters": {parameter: f"$response.body#{value}"},
        }
        for method, path in operations
    }
