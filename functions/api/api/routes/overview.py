"""The operators' overview (admin scope): queue depths, campaigns due soon, the latest failures."""
# No `from __future__ import annotations`: the Event Handler reads route annotations at runtime.

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.event_handler.api_gateway import Router

from api.deps import Admin, Overviews
from api.openapi import responses
from api.views import Overview

tracer = Tracer()
router = Router()


@router.get("/api/v1/overview", tags=["ops"], responses=responses(200, "The overview"))
@tracer.capture_method
def overview(_: Admin, overviews: Overviews) -> Overview:
    """DLQ and delay-queue depths, ACTIVE campaigns due within the hour, and the latest dead letters.

    A queue that cannot be read is listed in ``problems``; the rest is answered.
    """
    return Overview.model_validate(overviews.overview())
