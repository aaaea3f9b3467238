"""Digest rules: an event type's jobs on some channels collected into one notification per window (issue 23)."""
# No `from __future__ import annotations`: the Event Handler reads route annotations at runtime.

from typing import Annotated

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.models import Example
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from notify.catalog import EVENT_TYPES
from notify.models import Category
from notify.services.digest_rules import DigestRuleBody, digest_event_type
from pydantic import BeforeValidator

from api.deps import DigestRuleAdmin, TemplatesReader, TemplatesWriter
from api.openapi import responses
from api.views import DigestRuleList, DigestRuleView

tracer = Tracer()
router = Router()
TAGS = ["digest rules"]
DIGESTIBLE = sorted(name for name, spec in EVENT_TYPES.items() if spec.category is not Category.ACCOUNT)
# Validated before the route runs, so an account event gets the reason it takes no rule, not just "invalid".
DigestEventType = Annotated[
    str,
    Path(description="an event type other than an account one", json_schema_extra={"enum": DIGESTIBLE}),
    BeforeValidator(digest_event_type),
]
LIKES_PER_REVIEW = Example(
    summary="One email per review every 20 minutes, at most 50 likes listed",
    value={"channels": ["email"], "window": {"seconds": 1200}, "key": ["review_id"], "max_items": 50},
)
MORNING = Example(
    summary="One morning digest per user at 09:00 in their zone",
    value={"channels": ["email", "push"], "window": {"cron": "0 9 * * *", "timezone": "Europe/Berlin"}, "key": []},
)


@router.put(
    "/api/v1/digest-rules/<event_type>",
    tags=TAGS,
    summary="Set an event type's digest rule",
    description=(
        "Jobs of the event type on `channels` are collected into one notification per user, `key` values and "
        '`window` (`{"seconds": 10…604800}` from the first member, or `{"cron", "timezone"?}` fired in the '
        "user's zone, else `timezone`, else UTC), rendered with the type's `digest` template variant. A digest "
        "goes out early when it holds `max_items` (1 to 1,000; 100 by default). `key` names payload fields of "
        "the event type (at most 5; empty: one digest per user). One rule per event type, which this creates or "
        "replaces. Account events take no rule (a `422` on `event_type`). Workers apply a change within "
        "`PreferencesCacheSeconds` (30 s by default)."
    ),
    responses=responses(200, "Stored"),
)
@tracer.capture_method
def put_digest_rule(
    _: TemplatesWriter,
    digests: DigestRuleAdmin,
    event_type: DigestEventType,
    rule: Annotated[
        DigestRuleBody, Body(embed=False, openapi_examples={"likes": LIKES_PER_REVIEW, "morning": MORNING})
    ],
) -> DigestRuleView:
    return DigestRuleView.model_validate(digests.put(event_type, rule))


@router.get("/api/v1/digest-rules", tags=TAGS, summary="Every digest rule", responses=responses(200, "The rules"))
@tracer.capture_method
def list_digest_rules(_: TemplatesReader, digests: DigestRuleAdmin) -> DigestRuleList:
    """By event type."""
    return DigestRuleList.model_validate({"items": digests.list()})


@router.get("/api/v1/digest-rules/<event_type>", tags=TAGS, responses=responses(200, "The rule", 404))
@tracer.capture_method
def get_digest_rule(_: TemplatesReader, digests: DigestRuleAdmin, event_type: DigestEventType) -> DigestRuleView:
    """An event type's digest rule."""
    return DigestRuleView.model_validate(digests.get(event_type))


@router.delete(
    "/api/v1/digest-rules/<event_type>",
    tags=TAGS,
    summary="Remove an event type's digest rule",
    responses=responses(204, "Removed: the type's new jobs are sent one by one", 404),
)
@tracer.capture_method
def delete_digest_rule(_: TemplatesWriter, digests: DigestRuleAdmin, event_type: DigestEventType) -> Response[None]:
    digests.delete(event_type)
    return Response(204)
