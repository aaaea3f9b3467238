"""What a route declares it needs, resolved by the Event Handler's ``Depends()`` before the route runs.

A route names the service it calls and the scope it requires in its signature::

    @router.get("/api/v1/campaigns/<campaign_id>", ...)
    @tracer.capture_method
    def get_campaign(campaign_id: CampaignId, _: CampaignsReader, campaigns: Campaigns) -> CampaignView:
        return CampaignView.model_validate(campaigns.get(campaign_id).view())

``CampaignsReader`` authorizes the request's X-API-Key for ``campaigns:read`` (Unauthorized or Forbidden
otherwise, which api.errors maps to 401/403) and gives the route the ``Caller``; ``Campaigns`` gives it
the container's ``CampaignService`` (built once, by ``api.context.services``). Dependencies run after the
request is validated, as the scope checks in the routes' bodies used to; they are not request
parameters, so the OpenAPI document does not list them. Tests may swap one with
``app.dependency_overrides[services] = ...``.
"""
# No `from __future__ import annotations`: the Event Handler reads these annotations at runtime.

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from aws_lambda_powertools.event_handler import Depends, Request
from notify.errors import Forbidden, NotFound, Unauthorized
from notify.services.access import authorize, hash_key
from notify.services.campaigns import CampaignService
from notify.services.digest_rules import DigestRuleService
from notify.services.dlq import DeadLetterService
from notify.services.inbox import InboxService
from notify.services.ingest import IngestService
from notify.services.links import LinkService
from notify.services.overview import OverviewService
from notify.services.preferences import PreferenceService
from notify.services.rendered import RenderedJobs
from notify.services.segments import SegmentService
from notify.services.status import StatusQueries
from notify.services.templates import TemplateService
from notify.services.throttles import ThrottleService
from notify.services.webhooks import WebhookAdmin
from notify.signing import MAX_TOKEN_CHARS, BadToken
from notify.unsubscribe import UnsubscribeLinks
from notify.usertokens import UserTokens

from api.body import JSON_MEDIA_TYPE, BodyProblem, UnreadableBody
from api.context import Services, services
from api.errors import BearerRefused

Svc = Annotated[Services, Depends(services)]


@dataclass(frozen=True)
class Caller:
    """Who is calling: an id derived from the API key (never the key itself) and the key's scopes."""

    id: str
    scopes: frozenset[str]


def caller_with(scope: str) -> Callable[..., Caller]:
    """A dependency that authorizes the request's X-API-Key for ``scope`` and returns the ``Caller``."""

    def authorized(request: Request, svc: Svc) -> Caller:
        key = request.headers.get("x-api-key")
        scopes = authorize(svc.keys, key, scope)
        return Caller(id=hash_key(key or "")[:16], scopes=scopes)

    authorized.__name__ = authorized.__qualname__ = f"caller_with_{scope.replace(':', '_')}"
    return authorized


def any_caller(request: Request, svc: Svc) -> Caller:
    """A dependency that authenticates the request's X-API-Key, whatever its scopes (Unauthorized otherwise): for
    what every client of the API may read, such as the catalog of event types."""
    key = request.headers.get("x-api-key")
    if not key:
        raise Unauthorized("missing X-API-Key header")
    scopes = svc.keys.scopes(hash_key(key))
    if scopes is None:
        raise Unauthorized("invalid API key")
    return Caller(id=hash_key(key)[:16], scopes=scopes)


AnyKey = Annotated[Caller, Depends(any_caller)]
EventsWriter = Annotated[Caller, Depends(caller_with("events:write"))]
NotificationsReader = Annotated[Caller, Depends(caller_with("notifications:read"))]
TemplatesReader = Annotated[Caller, Depends(caller_with("templates:read"))]
TemplatesWriter = Annotated[Caller, Depends(caller_with("templates:write"))]
CampaignsReader = Annotated[Caller, Depends(caller_with("campaigns:read"))]
CampaignsWriter = Annotated[Caller, Depends(caller_with("campaigns:write"))]
PreferencesReader = Annotated[Caller, Depends(caller_with("preferences:read"))]
PreferencesWriter = Annotated[Caller, Depends(caller_with("preferences:write"))]
TokenIssuer = Annotated[Caller, Depends(caller_with("users:token"))]
LinksWriter = Annotated[Caller, Depends(caller_with("links:write"))]
WebhooksReader = Annotated[Caller, Depends(caller_with("webhooks:read"))]
WebhooksWriter = Annotated[Caller, Depends(caller_with("webhooks:write"))]
Admin = Annotated[Caller, Depends(caller_with("admin"))]


# Who may read a short link: its maker (links:write, its own links only) or a key that reads notifications (any link,
# a job's included, whose clicks the job shows anyway).
LINK_READING_SCOPES = ("links:write", "notifications:read")


def link_reader(request: Request, svc: Svc) -> Caller:
    """A dependency that authorizes the request's X-API-Key for ``links:write`` or ``notifications:read``."""
    key = request.headers.get("x-api-key")
    if not key:
        raise Unauthorized("missing X-API-Key header")
    scopes = svc.keys.scopes(hash_key(key))
    if scopes is None:
        raise Unauthorized("invalid API key")
    if not scopes & {*LINK_READING_SCOPES, "admin"}:
        raise Forbidden("this API key lacks the 'links:write' or the 'notifications:read' scope")
    return Caller(id=hash_key(key)[:16], scopes=scopes)


LinkReader = Annotated[Caller, Depends(link_reader)]


def _from_services(part: str) -> Callable[[Services], object]:
    """A dependency that gives a route the container's ``part`` (one service, built once by ``services()``).

    The alias that uses it names the part's type for the route (tests/unit/test_deps.py checks it is the type of
    the ``Services`` field), so each route's signature stays typed.
    """

    def dependency(svc: Svc) -> object:
        return getattr(svc, part)

    dependency.__name__ = dependency.__qualname__ = part
    return dependency


Ingest = Annotated[IngestService, Depends(_from_services("ingest"))]
Queries = Annotated[StatusQueries, Depends(_from_services("status"))]
Templates = Annotated[TemplateService, Depends(_from_services("templates"))]
Throttles = Annotated[ThrottleService, Depends(_from_services("throttles"))]  # throttle rules (templates' scopes)
# Digest rules (templates' scopes).
DigestRuleAdmin = Annotated[DigestRuleService, Depends(_from_services("digest_rules"))]
DeadLetters = Annotated[DeadLetterService, Depends(_from_services("dlq"))]
Campaigns = Annotated[CampaignService, Depends(_from_services("campaigns"))]
Segments = Annotated[SegmentService, Depends(_from_services("segments"))]
Preferences = Annotated[PreferenceService, Depends(_from_services("preferences"))]
Links = Annotated[UnsubscribeLinks, Depends(_from_services("unsubscribe"))]  # reads one-click unsubscribe tokens
ShortLinkService = Annotated[LinkService, Depends(_from_services("links"))]  # short links: followed, made and read
Overviews = Annotated[OverviewService, Depends(_from_services("overview"))]  # the console's first page
Rendered = Annotated[RenderedJobs, Depends(_from_services("rendered"))]  # renders a job's message again
Inbox = Annotated[InboxService, Depends(_from_services("inbox"))]
Tokens = Annotated[UserTokens, Depends(_from_services("user_tokens"))]  # issues and verifies user tokens
Webhooks = Annotated[WebhookAdmin, Depends(_from_services("webhooks"))]  # status webhook endpoints (issue 24)

# What a user token looks like (notify.signing): base64url, a dot, base64url. Anything else is refused before
# any signature is computed, so a header of any size or script is a 401, never an error of the code.
_BEARER = re.compile(r"Bearer +([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+) *", re.IGNORECASE)


def bearer_user(request: Request, svc: Svc) -> str:
    """The user an ``Authorization: Bearer <user token>`` header names (BearerRefused, a 401, otherwise)."""
    header = request.headers.get("authorization")
    if not header:
        raise BearerRefused("missing Authorization: Bearer <user token> header", invalid=False)
    found = _BEARER.fullmatch(header) if len(header) <= MAX_TOKEN_CHARS + 16 else None
    if found is None:
        raise BearerRefused("the Authorization header is not Bearer <user token>")
    try:
        return svc.user_tokens.verify(found.group(1), svc.clock())
    except BadToken as exc:
        raise BearerRefused(str(exc)) from None


# The user whose inbox a request may read and change: the one its bearer token names, never a path's.
InboxUser = Annotated[str, Depends(bearer_user)]


# What a browser says of a request's initiator when it sends no Origin: this origin's page, or the user (typed URL).
_OWN_FETCH_SITES = ("same-origin", "none")


def dev_token_caller(request: Request, svc: Svc) -> None:
    """The dev token route's gate, before it issues anything: a 404 wherever ``DEV_USER_TOKENS`` is off (every
    deployed stack); a 403 for a browser's request from a page not on the stack's own origins
    (``DEV_USER_TOKEN_ORIGINS``): an Origin not listed, or none with a ``Sec-Fetch-Site`` naming another site;
    a 415 unless the request says ``Content-Type: application/json``, which no page can send to another origin
    without a CORS preflight, and CORS answers the stack's own pages only. A client with no Origin (curl, a
    script) passes."""
    if not svc.dev_user_tokens:
        raise NotFound(f"no operation at {request.resolved_event.path}")
    origin = request.headers.get("origin")
    own = ", ".join(svc.dev_token_origins) or "none configured"
    if origin is not None and origin.lower() not in {o.lower() for o in svc.dev_token_origins}:
        raise Forbidden(f"the dev token route answers the local stack's own pages ({own}), not {origin[:100]!r}")
    site = (request.headers.get("sec-fetch-site") or "none").lower()
    if origin is None and site not in _OWN_FETCH_SITES:
        raise Forbidden(f"the dev token route answers the local stack's own pages ({own}), not a {site[:20]} page")
    if (request.headers.get("content-type") or "").split(";")[0].strip().lower() != JSON_MEDIA_TYPE:
        message = f"send Content-Type: {JSON_MEDIA_TYPE} (with or without a body): a browser then asks CORS first"
        raise UnreadableBody(BodyProblem(415, "unsupported_media_type", message))


# The dev token route's caller: the local stack's own page or no browser at all (see ``dev_token_caller``).
DevTokenCaller = Annotated[None, Depends(dev_token_caller)]
