"""User tokens: what a user's browser or app holds to open its WebSocket and read its own inbox (docs/INBOX.md).

A service with an API key of scope ``users:token`` asks ``POST /api/v1/users/{user_id}/tokens`` for a user it has
authenticated itself, and hands the token to that user's front end. The token is signed with the service's signing
key (rotated as ``new,old`` without breaking the tokens handed out, docs/OPERATIONS.md).

``POST /dev/users/{user_id}/tokens`` issues the same token without an API key, for the local stack's demo inbox
page: it answers only where ``DEV_USER_TOKENS`` is true, which only ``make local`` sets (template.yaml sets it
false), and is a 404 like any unknown path everywhere else. Even there it answers no page of another site: only
JSON requests (a preflight for any other origin) from the stack's own origins, or from no browser
(``api.deps.dev_token_caller``).
"""
# No `from __future__ import annotations`: the Event Handler reads route annotations at runtime.

from datetime import timedelta
from typing import Annotated, Optional

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.models import Example
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from notify.clock import iso
from notify.models import Strict, UserId
from notify.usertokens import MAX_TTL
from pydantic import Field

from api.deps import DevTokenCaller, Svc, TokenIssuer
from api.openapi import responses
from api.params import PercentDecoded
from api.views import UserTokenView

tracer = Tracer()
router = Router()
TAGS = ["users"]
# A user id as the events name it (notify.models.UserId: not blank, at most 128 bytes, no control characters).
TokenUserId = Annotated[UserId, Path(max_length=128), PercentDecoded]
MIN_TTL_SECONDS = 60


class TokenRequest(Strict):
    """How long the token lives (the body is optional: without it, ``USER_TOKEN_SECONDS``, 1 hour by default)."""

    ttl_seconds: Optional[int] = Field(
        default=None, ge=MIN_TTL_SECONDS, le=int(MAX_TTL.total_seconds()), examples=[3600]
    )


TokenBody = Annotated[
    Optional[TokenRequest], Body(embed=False, openapi_examples={"one_hour": Example(value={"ttl_seconds": 3600})})
]


def _issue(svc: Svc, user_id: str, request: Optional[TokenRequest]) -> Response[UserTokenView]:
    # A body that is not an object (a list, a number) never gets here: api.errors refuses it for every route.
    seconds = request.ttl_seconds if request is not None else None
    token, expires = svc.user_tokens.issue(user_id, svc.clock(), timedelta(seconds=seconds) if seconds else None)
    view = UserTokenView(user_id=user_id, token=token, expires_at=iso(expires))
    return Response(201, content_types.APPLICATION_JSON, view)


@router.post(
    "/api/v1/users/<user_id>/tokens",
    tags=TAGS,
    summary="Issue a user token",
    description=(
        "A short-lived signed token for one user's browser or app: `Authorization: Bearer <token>` for the inbox "
        "(`/api/v1/inbox`), `?token=<token>` for the WebSocket. Issue it only to a user your own service has "
        "authenticated as `user_id`. The body is optional; `ttl_seconds` defaults to USER_TOKEN_SECONDS (1 hour)."
    ),
    responses=responses(201, "A user token"),
)
@tracer.capture_method
def issue_user_token(
    _: TokenIssuer, svc: Svc, user_id: TokenUserId, request: TokenBody = None
) -> Response[UserTokenView]:
    """A short-lived token for one user's browser or app: ``Authorization: Bearer`` for the inbox, ``?token=`` for
    the WebSocket. Issue it only to a user your own service has authenticated as ``user_id``."""
    return _issue(svc, user_id, request)


# The dev route's own 403: not a key's scope, but a page of another site (api.deps.dev_token_caller).
DEV_RESPONSES = responses(201, "A user token (the local stack only)", 403, 404, public=True)
DEV_RESPONSES[403]["description"] = (
    "A browser's request from a page that is not the local stack's own (its Origin, or its Sec-Fetch-Site)"
)
DEV_RESPONSES[415]["description"] = (
    "No Content-Type: application/json (with or without a body): nothing a page may send without a CORS preflight"
)


@router.post(
    "/dev/users/<user_id>/tokens",
    tags=TAGS,
    summary="Dev only: a user token without an API key (the local stack's demo page)",
    description=(
        "**Development only.** The local stack's token route for its demo inbox page, without an API key. It "
        "answers only where DEV_USER_TOKENS is true, which only `make local` sets; every deployed stack answers "
        "404, like an unknown path. It takes `Content-Type: application/json` only (415 otherwise), so a page on "
        "another origin must send a CORS preflight, which the local stack answers for its own pages only; a "
        "browser's request from any other page (Origin, Sec-Fetch-Site) is a 403. In production, tokens come "
        "from `POST /api/v1/users/{user_id}/tokens`."
    ),
    security=[],
    responses=DEV_RESPONSES,
)
@tracer.capture_method
def issue_dev_user_token(
    _: DevTokenCaller, svc: Svc, user_id: TokenUserId, request: TokenBody = None
) -> Response[UserTokenView]:
    """Dev only: the local stack's token route for its demo inbox page, without an API key, for its own pages
    (``api.deps.dev_token_caller``). Anywhere ``DEV_USER_TOKENS`` is not true (every deployed stack) it is a 404;
    in production, tokens come from ``POST /api/v1/users/{user_id}/tokens`` with an API key."""
    return _issue(svc, user_id, request)
