"""What the OpenAPI document says about errors and access, shared by every route."""
# No `from __future__ import annotations`: the Event Handler reads these models at runtime.

from typing import Any, Optional

from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn
from pydantic import BaseModel


class FieldErrorModel(BaseModel):
    loc: str
    msg: str
    type: str


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: Optional[list[FieldErrorModel]] = None


class ErrorResponse(BaseModel):
    """The one error shape of the API."""

    error: ErrorBody


_DESCRIPTIONS = {
    401: "Missing or invalid X-API-Key",
    403: "The key lacks the scope",
    404: "Not found",
    409: "Conflict (a concurrent change, or an Idempotency-Key still in progress)",
    413: "Body too large",
    422: "Field-level validation errors",
    503: "A dependency is down; nothing was changed; retry after Retry-After",
}

SECURITY_SCHEMES = {"ApiKey": APIKey.model_validate({"name": "X-API-Key", "in": APIKeyIn.header})}
SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}]


def responses(*codes: int, **documented: dict[str, Any]) -> dict[int, Any]:
    """401, 403, 422 and 503 with the error model, plus ``codes``, plus route-specific successes."""
    out: dict[int, Any] = {
        code: {"description": _DESCRIPTIONS[code], "content": {"application/json": {"model": ErrorResponse}}}
        for code in sorted({401, 403, 422, 503, *codes})
    }
    for key, value in documented.items():
        out[int(key.removeprefix("s"))] = value
    return out
