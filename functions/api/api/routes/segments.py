"""Static segments: lists of user ids managed here (other segment ids are resolved by the Auth service)."""
# No `from __future__ import annotations`: the Event Handler reads route annotations at runtime.

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.models import Example
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from notify.clock import iso, utc_now
from notify.errors import Conflict, NotFound
from notify.models import UserId
from pydantic import BaseModel, Field, StringConstraints

from api.context import require, services
from api.openapi import links_to, responses
from api.params import PercentDecoded
from api.views import SegmentList, SegmentView

router = Router()
SEGMENT_ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"
# The pattern as a separate constraint: inside Path(), Powertools would drop it from the document once the
# parameter has a validator (PercentDecoded).
SegmentId = Annotated[str, Path(max_length=128), StringConstraints(pattern=SEGMENT_ID_PATTERN), PercentDecoded]
MAX_USERS_PER_CALL = 10_000


class SegmentInput(BaseModel):
    segment_id: str = Field(min_length=1, max_length=128, pattern=SEGMENT_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    user_ids: list[UserId] = Field(default_factory=list, max_length=MAX_USERS_PER_CALL)


class Members(BaseModel):
    user_ids: list[UserId] = Field(min_length=1, max_length=MAX_USERS_PER_CALL)


def _view(segment_id: str) -> SegmentView:
    store = services().segments
    meta = store.meta(segment_id)
    if meta is None:
        raise NotFound(f"segment {segment_id} not found")
    return SegmentView(
        segment_id=segment_id, name=meta["name"], created_at=meta["created_at"], users=store.count(segment_id)
    )


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
def create_segment(
    segment: Annotated[SegmentInput, Body(embed=False, openapi_examples={"vips": VIPS})],
) -> Response[SegmentView]:
    """A static segment, optionally with its first members (up to 10,000 per call)."""
    require(router, "campaigns:write")
    store = services().segments
    if not store.create(segment.segment_id, segment.name, iso(utc_now())):
        raise Conflict(f"segment {segment.segment_id} already exists")
    if segment.user_ids:
        store.add(segment.segment_id, segment.user_ids)
    return Response(201, content_types.APPLICATION_JSON, _view(segment.segment_id))


@router.get("/api/v1/segments", tags=["segments"], responses=responses(200, "Every static segment"))
def list_segments() -> SegmentList:
    require(router, "campaigns:read")
    return SegmentList.model_validate(
        {
            "items": [
                {"segment_id": m["segment_id"], "name": m["name"], "created_at": m["created_at"]}
                for m in services().segments.all()
            ]
        }
    )


@router.get("/api/v1/segments/<segment_id>", tags=["segments"], responses=responses(200, "The segment", 404))
def get_segment(segment_id: SegmentId) -> SegmentView:
    require(router, "campaigns:read")
    return _view(segment_id)


@router.post(
    "/api/v1/segments/<segment_id>/users", tags=["segments"], responses=responses(200, "The segment", 404, 409)
)
def add_members(segment_id: SegmentId, members: Annotated[Members, Body(embed=False)]) -> SegmentView:
    """Bulk add (idempotent), up to 10,000 ids per call."""
    require(router, "campaigns:write")
    _view(segment_id)
    services().segments.add(segment_id, members.user_ids)
    return _view(segment_id)


@router.delete(
    "/api/v1/segments/<segment_id>/users", tags=["segments"], responses=responses(200, "The segment", 404, 409)
)
def remove_members(segment_id: SegmentId, members: Annotated[Members, Body(embed=False)]) -> SegmentView:
    require(router, "campaigns:write")
    _view(segment_id)
    services().segments.remove(segment_id, members.user_ids)
    return _view(segment_id)


@router.delete("/api/v1/segments/<segment_id>", tags=["segments"], responses=responses(204, "Deleted", 404, 409))
def delete_segment(segment_id: SegmentId) -> Response[None]:
    require(router, "campaigns:write")
    _view(segment_id)
    services().segments.delete(segment_id)
    return Response(204)
