"""Throttle rules: at most N notifications of a category on a channel per period, per user (issue 23)."""
# No `from __future__ import annotations`: the Event Handler reads route annotations at runtime.

from typing import Annotated

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.models import Example
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from notify.models import Category, Channel
from notify.throttles import ThrottleRule, throttle_category
from pydantic import BeforeValidator

from api.deps import TemplatesReader, TemplatesWriter, Throttles
from api.openapi import responses
from api.views import ThrottleRuleList, ThrottleRuleView

tracer = Tracer()
router = Router()
TAGS = ["throttle rules"]
THROTTLED = [c.value for c in Category if c is not Category.ACCOUNT]
# Validated before it is a Category, so ``account`` gets the reason it takes no rule, not just "invalid".
ThrottleCategory = Annotated[
    Category,
    Path(description="a category other than account", json_schema_extra={"enum": THROTTLED}),
    BeforeValidator(throttle_category),
]
RuleChannel = Annotated[Channel, Query(description="the channel of the category's rule")]
DAILY_MARKETING_EMAIL = Example(
    summary="At most one marketing email a day", value={"channel": "email", "limit": 1, "period_seconds": 86400}
)


@router.put(
    "/api/v1/throttle-rules/<category>",
    tags=TAGS,
    summary="Set a category's throttle on a channel",
    description=(
        "At most `limit` notifications of the category on `channel` per `period_seconds` (60 to 2,592,000) per "
        "user: one rule per category and channel, which this creates or replaces. Past the limit a job is "
        "`SKIPPED` with reason `throttled`. The window opens at the first send and lasts the period. Account "
        "notifications are never throttled (a `422` on `category`). Workers apply a change within "
        "`PreferencesCacheSeconds` (30 s by default)."
    ),
    responses=responses(200, "Stored"),
)
@tracer.capture_method
def put_throttle_rule(
    _: TemplatesWriter,
    throttles: Throttles,
    category: ThrottleCategory,
    rule: Annotated[ThrottleRule, Body(embed=False, openapi_examples={"daily": DAILY_MARKETING_EMAIL})],
) -> ThrottleRuleView:
    return ThrottleRuleView.model_validate(throttles.put(category, rule))


@router.get("/api/v1/throttle-rules", tags=TAGS, summary="Every throttle rule", responses=responses(200, "The rules"))
@tracer.capture_method
def list_throttle_rules(_: TemplatesReader, throttles: Throttles) -> ThrottleRuleList:
    """By category, then channel."""
    return ThrottleRuleList.model_validate({"items": throttles.list()})


@router.get("/api/v1/throttle-rules/<category>", tags=TAGS, responses=responses(200, "The rule", 404))
@tracer.capture_method
def get_throttle_rule(
    _: TemplatesReader, throttles: Throttles, category: ThrottleCategory, channel: RuleChannel
) -> ThrottleRuleView:
    """A category's throttle on a channel."""
    return ThrottleRuleView.model_validate(throttles.get(category, channel))


@router.delete(
    "/api/v1/throttle-rules/<category>",
    tags=TAGS,
    summary="Remove a category's throttle on a channel",
    responses=responses(204, "Removed: the category's jobs on the channel are no longer counted", 404),
)
@tracer.capture_method
def delete_throttle_rule(
    _: TemplatesWriter, throttles: Throttles, category: ThrottleCategory, channel: RuleChannel
) -> Response[None]:
    throttles.delete(category, channel)
    return Response(204)
