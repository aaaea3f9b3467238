"""Templates: versioned CRUD and previews."""
# No `from __future__ import annotations`: the Event Handler reads route annotations at runtime.

from typing import Annotated, Any, Optional

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from notify.models import Channel
from notify.templates import PreviewInput, TemplateContent, TemplateInput, view

from api.context import require, services
from api.openapi import responses

router = Router()
TemplateId = Annotated[str, Path(max_length=200, description="<event_type>.<channel>.<locale>")]


@router.post(
    "/api/v1/templates", tags=["templates"], responses=responses(409, s201={"description": "Created a new version"})
)
def create_template(template: Annotated[TemplateInput, Body(embed=False)]) -> Response[dict[str, Any]]:
    """Create a template, or a new version when the event type × channel × locale already has one."""
    require(router, "templates:write")
    saved = services().templates.save(template)
    return Response(201, content_types.APPLICATION_JSON, view(saved))


@router.get("/api/v1/templates", tags=["templates"], responses=responses())
def list_templates(
    event_type: Annotated[Optional[str], Query(max_length=64)] = None,
    channel: Annotated[Optional[Channel], Query()] = None,
) -> dict[str, Any]:
    """The newest version of every template, optionally filtered."""
    require(router, "templates:read")
    return {"items": [view(t) for t in services().templates.list(event_type, channel)]}


@router.get("/api/v1/templates/<template_id>", tags=["templates"], responses=responses(404))
def get_template(template_id: TemplateId, version: Annotated[Optional[int], Query(ge=1)] = None) -> dict[str, Any]:
    """The newest version, or the one asked for."""
    require(router, "templates:read")
    return view(services().templates.get(template_id, version))


@router.get("/api/v1/templates/<template_id>/versions", tags=["templates"], responses=responses(404))
def list_versions(template_id: TemplateId) -> dict[str, Any]:
    """Every version, newest first."""
    require(router, "templates:read")
    return {"items": [view(t) for t in services().templates.versions(template_id)]}


@router.put("/api/v1/templates/<template_id>", tags=["templates"], responses=responses(404, 409))
def update_template(template_id: TemplateId, content: Annotated[TemplateContent, Body(embed=False)]) -> dict[str, Any]:
    """A new version: the parts sent replace the current ones, the others are kept."""
    require(router, "templates:write")
    return view(services().templates.update(template_id, content))


@router.delete(
    "/api/v1/templates/<template_id>",
    tags=["templates"],
    responses=responses(404, 409, s204={"description": "Retired"}),
)
def delete_template(template_id: TemplateId) -> Response[None]:
    """Retire a template; its versions stay readable for the jobs that used them."""
    require(router, "templates:write")
    services().templates.delete(template_id)
    return Response(204)


@router.post("/api/v1/templates/<template_id>/preview", tags=["templates"], responses=responses(404, 409))
def preview_template(
    template_id: TemplateId,
    data: Annotated[PreviewInput, Body(embed=False)],
    version: Annotated[Optional[int], Query(ge=1)] = None,
) -> dict[str, Any]:
    """Render with the given (or the event type's sample) payload and user."""
    require(router, "templates:read")
    rendered = services().templates.preview(template_id, data, version)
    return {k: v for k, v in rendered.__dict__.items() if v is not None}
