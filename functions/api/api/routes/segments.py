"""Static segments: lists of user ids managed here (other segment ids are resolved by the Auth service)."""
# No `from __future__ import annotations`: the Event Handler reads route annotations at runtime.

from typing import Annotated

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.models import Example
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from notify.models import UserId
from pydantic import BaseModel, Field, StringConstraints, field_validator

from api.deps import CampaignsReader, CampaignsWriter, Segments
from api.openapi import links_to, responses
from api.params import PercentDecoded
from api.views import SegmentList, SegmentView

tracer = Tracer()
router = Router()
SEGMENT_ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"
# The pattern as a separate constraint: inside Path(), Powertools would drop it from the document once the
# parameter has a validator (PercentDecoded).
SegmentId = Annotated[str, Path(max_length=128), StringConstraints(pattern=SEGMENT_ID_PATTERN), PercentDecoded]
MAX_USERS_PER_CALL = 10_000


# A new segment's id, as the document states it: the pattern, but not `.` nor `..` (no look-ahead: pydantic's
# regex engine has none). The validator below refuses them with a message of its own.
NEW_SEGMENT_ID_PATTERN = r"^(?:[A-Za-z0-9_.:-]*[A-Za-z0-9_:-][A-Za-z0-9_.:-]*|\.{3,})$"


class SegmentInput(BaseModel):
    segment_id: str = Field(
        min_length=1, max_length=128, pattern=SEGMENT_ID_PATTERN, json_schema_extra={"pattern": NEW_SEGMENT_ID_PATTERN}
    )
    name: str = Field(min_length=1, max_length=200)
    user_ids: list[UserId] = Field(default_factory=list, max_length=MAX_USERS_PER_CALL)

    @field_validator("segment_id")
    @classmethod
    def addressable(cls, value: str) -> str:
        """URL parsers (WHATWG) read ``.`` and ``..``, even percent-encoded, as path steps, so no URL could name
        such a segment: /api/v1/segments/.. is /api/v1/."""
        if value in (".", ".."):
            raise ValueError(f"{value!r} cannot be a segment id: a URL reads it as a path step, not a name")
        return value


class Members(BaseModel):
    user_ids: list[UserId] = Field(min_length=1, max_length=MAX_USERS_PER_CALL)


ON_SEGMENT = links_to(
    "segment_id",
    "/segment_id",
    ("get", "/api/v1/segments/{segment_id}"),
    ("post", "/api/v1/segments/{segment_id}/users"),
    ("delete", "/api/v1/segments/{segment_id}/users"),
    ("delete", "/api/v1/segments/{segment_id}"),
)
VIPS = Example(value={"segment_id": "vips", "name": "VIPs", "user_ids": ["demo-user-1", "demo-user-2"]})


@router.post("/api/v1/segments", tags=["segments"], responses=responses(201, "Created", 409, links=ON_SEGMENT))
@tracer.capture_method
def create_segment(
    _: CampaignsWriter,
    segments: Segments,
    segment: Annotated[SegmentInput, Body(embed=False, openapi_examples={"vips": VIPS})],
) -> Response[SegmentView]:
    """A static segment, optionally with its first members (up to 10,000 per call)."""
    created = segments.create(segment.segment_id, segment.name, segment.user_ids)
    return Response(201, content_types.APPLICATION_JSON, SegmentView.model_validate(created))


@router.get("/api/v1/segments", tags=["segments"], responses=responses(200, "Every static segment"))
@tracer.capture_method
def list_segments(_: CampaignsReader, segments: Segments) -> SegmentList:
    return SegmentList.model_validate({"items": segments.list()})


@router.get("/api/v1/segments/<segment_id>", tags=["segments"], responses=responses(200, "The segment", 404))
@tracer.capture_method
def get_segment(_: CampaignsReader, segments: Segments, segment_id: SegmentId) -> SegmentView:
    return SegmentView.model_validate(segments.get(segment_id))


@router.post(
    "/api/v1/segments/<segment_id>/users", tags=["segments"], responses=responses(200, "The segment", 404, 409)
)
@tracer.capture_method
def add_members(
    _: CampaignsWriter, segments: Segments, segment_id: SegmentId, members: Annotated[Members, Body(embed=False)]
) -> SegmentView:
    """Bulk add (idempotent), up to 10,000 ids per call."""
    return SegmentView.model_validate(segments.add(segment_id, members.user_ids))


@router.delete(
    "/api/v1/segments/<segment_id>/users", tags=["segments"], responses=responses(200, "The segment", 404, 409)
)
@tracer.capture_method
def remove_members(
    _: CampaignsWriter, segments: Segments, segment_id: SegmentId, members: Annotated[Members, Body(embed=False)]
) -> SegmentView:
    return SegmentView.model_validate(segments.remove(segment_id, members.user_ids))


@router.delete("/api/v1/segments/<segment_id>", tags=["segments"], responses=responses(204, "Deleted", 404, 409))
@tracer.capture_method
def delete_segment(_: CampaignsWriter, segments: Segments, segment_id: SegmentId) -> Response[None]:
    segments.delete(segment_id)
    return Response(204)
