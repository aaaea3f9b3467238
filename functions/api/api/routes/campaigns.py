"""Campaigns: cron-scheduled sends to a segment."""
# No `from __future__ import annotations`: the Event Handler reads route annotations at runtime.

from typing import Annotated, Optional

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.models import Example
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from notify.catalog import EVENT_TYPES
from notify.clock import iso
from notify.services.campaigns import CampaignInput, CampaignUpdate

from api.deps import Campaigns, CampaignsReader, CampaignsWriter
from api.openapi import links_to, responses
from api.params import PercentDecoded
from api.views import CampaignPage, CampaignView, NextRuns, RunList, Schedule

tracer = Tracer()
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
        "payload": EVENT_TYPES["new_film"].sample_payload(),
        "channels": ["email"],
        "max_runs": 10,
    },
)


@router.post(
    "/api/v1/campaigns", tags=["campaigns"], responses=responses(201, "Created, ACTIVE", 409, links=ON_CAMPAIGN)
)
@tracer.capture_method
def create_campaign(
    _: CampaignsWriter,
    campaigns: Campaigns,
    campaign: Annotated[CampaignInput, Body(embed=False, openapi_examples={"weekly": WEEKLY})],
) -> Response[CampaignView]:
    """Create an ACTIVE campaign; its first run is the cron's next fire time in its time zone."""
    created = campaigns.create(campaign)
    return Response(201, content_types.APPLICATION_JSON, CampaignView.model_validate(created.view()))


@router.get("/api/v1/campaigns:schedule", tags=["campaigns"], responses=responses(200, "The next fire times"))
@tracer.capture_method
def schedule(
    _: CampaignsReader,
    campaigns: Campaigns,
    cron: Annotated[str, Query(min_length=1, max_length=200, examples=["0 9 * * 1"])],
    timezone: Annotated[str, Query(min_length=1, max_length=64, examples=["Europe/Berlin"])] = "UTC",
    count: Annotated[int, Query(ge=1, le=50)] = 5,
) -> Schedule:
    """The next fire times of a cron in a time zone, before any campaign has them (a form's, as it is typed).

    A bad cron or zone is a 422 on ``cron`` or ``timezone``, with the message a save would give.
    """
    return Schedule.model_validate(campaigns.schedule(cron, timezone, count))


@router.get("/api/v1/campaigns", tags=["campaigns"], responses=responses(200, "A page of campaigns"))
@tracer.capture_method
def list_campaigns(
    _: CampaignsReader,
    campaigns: Campaigns,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[Optional[str], Query(max_length=2048)] = None,
) -> CampaignPage:
    items, next_cursor = campaigns.page(limit, cursor)
    return CampaignPage.model_validate({"items": [c.view() for c in items], "next_cursor": next_cursor})


@router.get("/api/v1/campaigns/<campaign_id>", tags=["campaigns"], responses=responses(200, "The campaign", 404))
@tracer.capture_method
def get_campaign(_: CampaignsReader, campaigns: Campaigns, campaign_id: CampaignId) -> CampaignView:
    return CampaignView.model_validate(campaigns.get(campaign_id).view())


@router.put("/api/v1/campaigns/<campaign_id>", tags=["campaigns"], responses=responses(200, "Updated", 404, 409))
@tracer.capture_method
def update_campaign(
    _: CampaignsWriter,
    campaigns: Campaigns,
    campaign_id: CampaignId,
    changes: Annotated[CampaignUpdate, Body(embed=False)],
) -> CampaignView:
    """Change fields; a new cron or time zone of an ACTIVE campaign recomputes the next run from now.

    max_runs moves the status: raised above runs_count (or null), an INACTIVE campaign is ACTIVE again, its next run
    computed from now; lowered to runs_count, the campaign is INACTIVE (409 while a run is under way); below
    runs_count, a 422. A run under way is counted whatever the edit.
    """
    return CampaignView.model_validate(campaigns.update(campaign_id, changes).view())


@router.delete(
    "/api/v1/campaigns/<campaign_id>",
    tags=["campaigns"],
    responses=responses(204, "Deleted", 404, 409),
)
@tracer.capture_method
def delete_campaign(_: CampaignsWriter, campaigns: Campaigns, campaign_id: CampaignId) -> Response[None]:
    campaigns.delete(campaign_id)
    return Response(204)


@router.post("/api/v1/campaigns/<campaign_id>/pause", tags=["campaigns"], responses=responses(200, "PAUSED", 404, 409))
@tracer.capture_method
def pause_campaign(_: CampaignsWriter, campaigns: Campaigns, campaign_id: CampaignId) -> CampaignView:
    """PAUSED campaigns never fire; pausing a PAUSED one changes nothing. 409 for an INACTIVE campaign: it has used
    its max_runs, so there is nothing to pause (raise max_runs with PUT to run it again)."""
    return CampaignView.model_validate(campaigns.pause(campaign_id).view())


@router.post("/api/v1/campaigns/<campaign_id>/resume", tags=["campaigns"], responses=responses(200, "ACTIVE", 404, 409))
@tracer.capture_method
def resume_campaign(_: CampaignsWriter, campaigns: Campaigns, campaign_id: CampaignId) -> CampaignView:
    """ACTIVE again; the next run is computed from now (runs missed while paused are not fired). Resuming an ACTIVE
    campaign changes nothing; 409 for an INACTIVE one (raise max_runs with PUT to run it again)."""
    return CampaignView.model_validate(campaigns.resume(campaign_id).view())


@router.get("/api/v1/campaigns/<campaign_id>/preview", tags=["campaigns"], responses=responses(200, "Next runs", 404))
@tracer.capture_method
def preview_campaign(
    _: CampaignsReader, campaigns: Campaigns, campaign_id: CampaignId, count: Annotated[int, Query(ge=1, le=50)] = 5
) -> NextRuns:
    """The next fire times, in UTC."""
    return NextRuns(next_runs=[iso(t) for t in campaigns.preview(campaign_id, count)])


@router.get(
    "/api/v1/campaigns/<campaign_id>/runs", tags=["campaigns"], responses=responses(200, "Runs, newest first", 404)
)
@tracer.capture_method
def list_runs(
    _: CampaignsReader, campaigns: Campaigns, campaign_id: CampaignId, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> RunList:
    """Each run, newest first, with its recipients and delivery counts so far."""
    return RunList.model_validate({"items": campaigns.run_summaries(campaign_id, limit)})
