"""Templates: versioned CRUD and previews."""
# No `from __future__ import annotations`: the Event Handler reads route annotations at runtime.

from typing import Annotated, Optional

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.models import Example
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from notify.models import Channel
from notify.services.templates import PreviewInput, TemplateContent, TemplateDraft, TemplateInput, view

from api.deps import Templates, TemplatesReader, TemplatesWriter
from api.openapi import links_to, responses
from api.params import PercentDecoded
from api.views import RenderedPreview, TemplateList, TemplateView

tracer = Tracer()
router = Router()
TemplateId = Annotated[
    str,
    Path(
        max_length=200,
        description="<event_type>.<channel>.<locale>, or a digest variant's <event_type>.digest.<channel>.<locale>",
    ),
    PercentDecoded,
]


ON_TEMPLATE = links_to(
    "template_id",
    "/template_id",
    ("get", "/api/v1/templates/{template_id}"),
    ("put", "/api/v1/templates/{template_id}"),
    ("get", "/api/v1/templates/{template_id}/versions"),
    ("post", "/api/v1/templates/{template_id}/preview"),
    ("delete", "/api/v1/templates/{template_id}"),
)
TEMPLATE_EXAMPLES = {
    "push": Example(
        summary="A push template",
        value={"event_type": "new_film", "channel": "push", "locale": "pt", "title": "{{ title }}", "body": "Já está"},
    ),
    "email": Example(
        summary="An email template",
        value={
            "event_type": "new_film",
            "channel": "email",
            "locale": "de",
            "subject": "{{ title }} ist da",
            "body_text": "Hallo {{ user.first_name }}: {{ watch_url }}",
        },
    ),
}


@router.post(
    "/api/v1/templates",
    tags=["templates"],
    responses=responses(201, "Created a new version", 409, links=ON_TEMPLATE),
)
@tracer.capture_method
def create_template(
    _: TemplatesWriter,
    templates: Templates,
    template: Annotated[TemplateInput, Body(embed=False, openapi_examples=TEMPLATE_EXAMPLES)],
) -> Response[TemplateView]:
    """Create a template, or a new version when the event type × channel × locale already has one."""
    saved = templates.save(template)
    return Response(201, content_types.APPLICATION_JSON, TemplateView.model_validate(view(saved)))


DRAFT_EXAMPLE = Example(
    summary="An email being written, rendered with the type's sample payload",
    value={
        "event_type": "new_film",
        "channel": "email",
        "locale": "en",
        "subject": "{{ title }} is out",
        "body_text": "Hi {{ user.first_name }},\n{{ title }} is on {{ release_date }}: {{ watch_url }}",
    },
)


@router.post(
    "/api/v1/templates:preview",
    tags=["templates"],
    responses=responses(200, "Rendered (version 0: not saved)"),
)
@tracer.capture_method
def preview_draft(
    _: TemplatesReader,
    templates: Templates,
    draft: Annotated[TemplateDraft, Body(embed=False, openapi_examples={"draft": DRAFT_EXAMPLE})],
) -> RenderedPreview:
    """Render content that is not saved (an editor's, as it is typed) with the payload given or the type's sample.

    Nothing is stored. Every problem is one 422 field error on its part, with the ``line`` of the part it is on
    (syntax errors, unknown variables, a part that fails to render), the checks a save makes.
    """
    rendered = templates.preview_draft(draft)
    return RenderedPreview.model_validate({k: v for k, v in rendered.__dict__.items() if v is not None})


@router.get("/api/v1/templates", tags=["templates"], responses=responses(200, "The newest version of each"))
@tracer.capture_method
def list_templates(
    _: TemplatesReader,
    templates: Templates,
    event_type: Annotated[
        Optional[str], Query(max_length=64, description="an event type, or a digest variant: review_liked.digest")
    ] = None,
    channel: Annotated[Optional[Channel], Query()] = None,
) -> TemplateList:
    """The newest version of every template, optionally filtered."""
    return TemplateList.model_validate({"items": [view(t) for t in templates.list(event_type, channel)]})


@router.get("/api/v1/templates/<template_id>", tags=["templates"], responses=responses(200, "One version", 404))
@tracer.capture_method
def get_template(
    _: TemplatesReader,
    templates: Templates,
    template_id: TemplateId,
    version: Annotated[Optional[int], Query(ge=1)] = None,
) -> TemplateView:
    """The newest version, or the one asked for."""
    return TemplateView.model_validate(view(templates.get(template_id, version)))


@router.get(
    "/api/v1/templates/<template_id>/versions", tags=["templates"], responses=responses(200, "Newest first", 404)
)
@tracer.capture_method
def list_versions(_: TemplatesReader, templates: Templates, template_id: TemplateId) -> TemplateList:
    """Every version, newest first."""
    return TemplateList.model_validate({"items": [view(t) for t in templates.versions(template_id)]})


@router.put(
    "/api/v1/templates/<template_id>", tags=["templates"], responses=responses(200, "The new version", 404, 409)
)
@tracer.capture_method
def update_template(
    _: TemplatesWriter,
    templates: Templates,
    template_id: TemplateId,
    content: Annotated[TemplateContent, Body(embed=False)],
) -> TemplateView:
    """A new version: the parts sent replace the current ones, the others are kept."""
    return TemplateView.model_validate(view(templates.update(template_id, content)))


@router.delete(
    "/api/v1/templates/<template_id>",
    tags=["templates"],
    responses=responses(204, "Retired", 404, 409),
)
@tracer.capture_method
def delete_template(_: TemplatesWriter, templates: Templates, template_id: TemplateId) -> Response[None]:
    """Retire a template; its versions stay readable for the jobs that used them."""
    templates.delete(template_id)
    return Response(204)


@router.post("/api/v1/templates/<template_id>/preview", tags=["templates"], responses=responses(200, "Rendered", 404))
@tracer.capture_method
def preview_template(
    _: TemplatesReader,
    templates: Templates,
    template_id: TemplateId,
    data: Annotated[PreviewInput, Body(embed=False)],
    version: Annotated[Optional[int], Query(ge=1)] = None,
) -> RenderedPreview:
    """Render with the given (or the event type's sample) payload and user."""
    rendered = templates.preview(template_id, data, version)
    return RenderedPreview.model_validate({k: v for k, v in rendered.__dict__.items() if v is not None})
