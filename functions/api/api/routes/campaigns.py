"""Campaigns: cron-scheduled sends to a segment."""
# No `from __future__ import annotations`: the Event Handler reads route annotations at runtime.

from typing import Annotated, Optional

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.models import Example
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from notify.campaigns import CampaignInput, CampaignUpdate
from notify.clock import iso

from api.context import require, services
from api.openapi import links_to, responses
from api.params import PercentDecoded
from api.views import CampaignPage, CampaignView, NextRuns, RunList

router = Router()
CampaignId = Annotated[str, Path(max_length=64), PercentDecoded]


ON_CAMPAIGN = links_to(
    "campaign_id",
    "/campaign_id",
    *(
        (method, f"/api/v1/campaigns/{{campaign_id}}{suffix}")
        for method, suffix in (
            ("get", ""),
            ("put", ""),
            ("post", "/pause"),
            ("post", "/resume"),
            ("get", "/preview"),
            ("get", "/runs"),
            ("delete", ""),
        )
    ),
)
WEEKLY = Example(
    summary="Every Monday at 09:00 in Berlin, to the demo segment",
    value={
        "name": "Weekly picks",
        "cron": "0 9 * * 1",
        "timezone": "Europe/Berlin",
        "segment_id": "all",
        "event_type": "new_film",
        "payload": {
            "film_id": "f-1",
            "title": "Dune",
            "release_date": "2026-12-01",
            "watch_url": "https://example.com/watch/f-1",
        },
        "channels": ["email"],
        "max_runs": 10,
    },
)


@router.post(
    "/api/v1/campaigns", tags=["campaigns"], responses=responses(201, "Created, ACTIVE", 409, links=ON_CAMPAIGN)
)
def create_campaign(
    campaign: Annotated[CampaignInput, Body(embed=False, openapi_examples={"weekly": WEEKLY})],
) -> Response[CampaignView]:
    """Create an ACTIVE campaign; its first run is the cron's next fire time in its time zone."""
    require(router, "campaigns:write")
    created = services().campaigns.create(campaign)
    return Response(201, content_types.APPLICATION_JSON, CampaignView.model_validate(created.view()))


@router.get("/api/v1/campaigns", tags=["campaigns"], responses=responses(200, "A page of campaigns"))
def list_campaigns(
    limit: Annotated[int, Query(ge=1, le=100)] = 50, cursor: Annotated[Optional[str], Query(max_length=2048)] = None
) -> CampaignPage:
    require(router, "campaigns:read")
    items, next_cursor = services().campaigns.page(limit, cursor)
    return CampaignPage.model_validate({"items": [c.view() for c in items], "next_cursor": next_cursor})


@router.get("/api/v1/campaigns/<campaign_id>", tags=["campaigns"], responses=responses(200, "The campaign", 404))
def get_campaign(campaign_id: CampaignId) -> CampaignView:
    require(router, "campaigns:read")
    return CampaignView.model_validate(services().campaigns.get(campaign_id).view())


@router.put("/api/v1/campaigns/<campaign_id>", tags=["campaigns"], responses=responses(200, "Updated", 404, 409))
def update_campaign(campaign_id: CampaignId, changes: Annotated[CampaignUpdate, Body(embed=False)]) -> CampaignView:
    """Change fields; a new cron or time zone recomputes the next run from now."""
    require(router, "campaigns:write")
    return CampaignView.model_validate(services().campaigns.update(campaign_id, changes).view())


@router.delete(
    "/api/v1/campaigns/<campaign_id>",
    tags=["campaigns"],
    responses=responses(204, "Deleted", 404, 409),
)
def delete_campaign(campaign_id: CampaignId) -> Response[None]:
    require(router, "campaigns:write")
    services().campaigns.delete(campaign_id)
    return Response(204)


@router.post("/api/v1/campaigns/<campaign_id>/pause", tags=["campaigns"], responses=responses(200, "PAUSED", 404, 409))
def pause_campaign(campaign_id: CampaignId) -> CampaignView:
    """PAUSED campaigns never fire."""
    require(router, "campaigns:write")
    return CampaignView.model_validate(services().campaigns.pause(campaign_id).view())


@router.post("/api/v1/campaigns/<campaign_id>/resume", tags=["campaigns"], responses=responses(200, "ACTIVE", 404, 409))
def resume_campaign(campaign_id: CampaignId) -> CampaignView:
    """ACTIVE again; the next run is computed from now (runs missed while paused are not fired)."""
    require(router, "campaigns:write")
    return CampaignView.model_validate(services().campaigns.resume(campaign_id).view())


@router.get("/api/v1/campaigns/<campaign_id>/preview", tags=["campaigns"], responses=responses(200, "Next runs", 404))
def preview_campaign(campaign_id: CampaignId, count: Annotated[int, Query(ge=1, le=50)] = 5) -> NextRuns:
    """The next fire times, in UTC."""
    require(router, "campaigns:read")
    return NextRuns(next_runs=[iso(t) for t in services().campaigns.preview(campaign_id, count)])


@router.get(
    "/api/v1/campaigns/<campaign_id>/runs", tags=["campaigns"], responses=responses(200, "Runs, newest first", 404)
)
def list_runs(campaign_id: CampaignId, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> RunList:
    """Each run, newest first, with its recipients and delivery counts so far."""
    require(router, "campaigns:read")
    svc = services()
    items = []
    for run in svc.campaigns.runs(campaign_id, limit):
        summary = svc.status.event(run.event_id)
        items.append(
            {
                "run_id": run.run_id,
                "fire_time": iso(run.fire_time),
                "triggered_at": iso(run.triggered_at),
                "event_id": run.event_id,
                "recipients": summary.get("recipients", 0),
                "pages_expanded": summary.get("pages_expanded", 0),
                "status_counts": summary.get("status_counts"),
            }
        )
    return RunList.model_validate({"items": items})
