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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from aws_lambda_powertools.event_handler import Depends, Request
from notify.services.access import authorize, hash_key
from notify.services.campaigns import CampaignService
from notify.services.dlq import DeadLetterService
from notify.services.ingest import IngestService
from notify.services.preferences import PreferenceService
from notify.services.segments import SegmentService
from notify.services.status import StatusQueries
from notify.services.templates import TemplateService
from notify.unsubscribe import UnsubscribeLinks

from api.context import Services, services

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


EventsWriter = Annotated[Caller, Depends(caller_with("events:write"))]
NotificationsReader = Annotated[Caller, Depends(caller_with("notifications:read"))]
TemplatesReader = Annotated[Caller, Depends(caller_with("templates:read"))]
TemplatesWriter = Annotated[Caller, Depends(caller_with("templates:write"))]
CampaignsReader = Annotated[Caller, Depends(caller_with("campaigns:read"))]
CampaignsWriter = Annotated[Caller, Depends(caller_with("campaigns:write"))]
PreferencesReader = Annotated[Caller, Depends(caller_with("preferences:read"))]
PreferencesWriter = Annotated[Caller, Depends(caller_with("preferences:write"))]
Admin = Annotated[Caller, Depends(caller_with("admin"))]


def ingest_service(svc: Svc) -> IngestService:
    """The container's ingest service."""
    return svc.ingest


def status_queries(svc: Svc) -> StatusQueries:
    """The container's status queries."""
    return svc.status


def template_service(svc: Svc) -> TemplateService:
    """The container's template service."""
    return svc.templates


def dead_letter_service(svc: Svc) -> DeadLetterService:
    """The container's dead-letter service."""
    return svc.dlq


def campaign_service(svc: Svc) -> CampaignService:
    """The container's campaign service."""
    return svc.campaigns


def segment_service(svc: Svc) -> SegmentService:
    """The container's segment service."""
    return svc.segments


Ingest = Annotated[IngestService, Depends(ingest_service)]
Queries = Annotated[StatusQueries, Depends(status_queries)]
Templates = Annotated[TemplateService, Depends(template_service)]
DeadLetters = Annotated[DeadLetterService, Depends(dead_letter_service)]
Campaigns = Annotated[CampaignService, Depends(campaign_service)]
Segments = Annotated[SegmentService, Depends(segment_service)]


def preference_service(svc: Svc) -> PreferenceService:
    """The container's preference service."""
    return svc.preferences


Preferences = Annotated[PreferenceService, Depends(preference_service)]


def unsubscribe_links(svc: Svc) -> UnsubscribeLinks:
    """What reads one-click unsubscribe tokens."""
    return svc.unsubscribe


Links = Annotated[UnsubscribeLinks, Depends(unsubscribe_links)]
