"""Dead-letter queue operations (admin scope)."""
# No `from __future__ import annotations`: the Event Handler reads route annotations at runtime.

from typing import Annotated, Optional

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, Field

from api.deps import Admin, DeadLetters
from api.openapi import responses
from api.views import DeadLetterList, RedriveResult

tracer = Tracer()
router = Router()


class RedriveRequest(BaseModel):
    """Which jobs to replay: the listed ones, or every letter (up to ``limit``) when ``job_ids`` is omitted."""

    job_ids: Optional[list[str]] = Field(default=None, min_length=1, max_length=500)
    limit: int = Field(default=100, ge=1, le=1000)


@router.get("/api/v1/dlq", tags=["dlq"], responses=responses(200, "Dead letters"))
@tracer.capture_method
def list_dead_letters(_: Admin, dlq: DeadLetters, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> DeadLetterList:
    """Dead letters with their reason, last error and attempt count."""
    return DeadLetterList.model_validate({"items": dlq.list(limit)})


@router.post("/api/v1/dlq/redrive", tags=["dlq"], responses=responses(200, "What was replayed and what was not", 409))
@tracer.capture_method
def redrive(_: Admin, dlq: DeadLetters, request: Annotated[RedriveRequest, Body(embed=False)]) -> RedriveResult:
    """Replay dead-lettered jobs through the worker with a fresh retry budget; idempotency still applies."""
    return RedriveResult.model_validate(dlq.redrive(request.job_ids, request.limit))
