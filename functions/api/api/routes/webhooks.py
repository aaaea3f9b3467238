"""Status webhook endpoints (issue 24, docs/API.md#status-webhooks): where the service POSTs what happened to each
notification, signed per the Standard Webhooks specification.

Scopes ``webhooks:read`` (list, read, deliveries) and ``webhooks:write`` (create, change, delete, rotate, test). An
endpoint's signing secret is in two answers only, each once: the creation's and a rotation's; no GET, list or PATCH
carries it. A destination the service may not call (not https, or a host resolving to a private, loopback or
link-local address: the metadata service) is a 422 on ``url`` when it is given, not at the first delivery.
"""
# No `from __future__ import annotations`: the Event Handler reads route annotations at runtime.

from typing import Annotated, Optional

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.models import Example
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from notify.models import Strict
from notify.services.webhooks import MAX_DESCRIPTION
from notify.webhooks import ALL, EVENT_TYPES
from pydantic import Field

from api.deps import Webhooks, WebhooksReader, WebhooksWriter
from api.openapi import links_to, responses
from api.views import WebhookDeliveryPage, WebhookList, WebhookTestQueued, WebhookView, WebhookWithSecret

tracer = Tracer()
router = Router()
TAGS = ["webhooks"]
BASE = "/api/v1/webhooks"
WebhookId = Annotated[str, Path(min_length=1, max_length=64, description="wh_ and 24 hex characters")]
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[Optional[str], Query(max_length=2048, description="the previous page's next_cursor")]
# Any string passes to the service, which names every unknown type at once; the document lists the known ones.
EventName = Annotated[str, Field(min_length=1, max_length=64, json_schema_extra={"enum": [ALL, *EVENT_TYPES]})]
URL_DESCRIPTION = (
    "https:// whose host resolves, now, to public addresses only (no private, loopback or link-local address); "
    "no user or password, no #fragment; at most 2,048 characters"
)
EVENTS_DESCRIPTION = f'the message types to receive, or ["{ALL}"] for all of them: {", ".join(EVENT_TYPES)}'


class WebhookInput(Strict):
    """A new endpoint."""

    url: str = Field(max_length=2048, examples=["https://hooks.example.com/notify"], description=URL_DESCRIPTION)
    events: list[EventName] = Field(max_length=50, description=EVENTS_DESCRIPTION)
    description: Optional[str] = Field(default=None, max_length=MAX_DESCRIPTION)


class WebhookChange(Strict):
    """What to change of an endpoint: what is absent (or null) stays as it is."""

    url: Optional[str] = Field(default=None, max_length=2048, description=URL_DESCRIPTION)
    events: Optional[list[EventName]] = Field(default=None, max_length=50, description=EVENTS_DESCRIPTION)
    description: Optional[str] = Field(default=None, max_length=MAX_DESCRIPTION, description='"" removes it')
    enabled: Optional[bool] = Field(
        default=None, description="false disables it (reason by_user); true enables it again and forgets its failures"
    )


CRM = Example(
    summary="Bounces and complaints to a CRM",
    value={
        "url": "https://hooks.example.com/notify",
        "events": ["notification.bounced", "notification.complained"],
        "description": "CRM: mark bad addresses",
    },
)
EVERYTHING = Example(summary="Every message type", value={"url": "https://hooks.example.com/all", "events": [ALL]})
ON_WEBHOOK = links_to(
    "webhook_id",
    "/webhook_id",
    *(
        (method, f"{BASE}/{{webhook_id}}{suffix}")
        for method, suffix in (
            ("get", ""),
            ("patch", ""),
            ("delete", ""),
            ("post", "/rotate-secret"),
            ("post", "/test"),
            ("get", "/deliveries"),
        )
    ),
)


@router.post(
    BASE,
    tags=TAGS,
    summary="Register a status webhook endpoint",
    description=(
        "Answers the endpoint with its `secret` (`whsec_…`), shown in this answer only: keep it to verify the "
        "`webhook-signature` of each message. Each message the endpoint subscribes to is POSTed to `url` as "
        "`{type, timestamp, data}` and retried for about 24 h until a 2xx. A `url` the service may not call, an "
        "unknown event type or a description over 200 characters is a 422 naming each field."
    ),
    responses=responses(201, "Created, enabled, with its secret", 409, links=ON_WEBHOOK),
)
@tracer.capture_method
def create_webhook(
    _: WebhooksWriter,
    webhooks: Webhooks,
    webhook: Annotated[WebhookInput, Body(embed=False, openapi_examples={"crm": CRM, "everything": EVERYTHING})],
) -> Response[WebhookWithSecret]:
    created = webhooks.create(webhook.url, webhook.events, webhook.description)
    return Response(201, content_types.APPLICATION_JSON, WebhookWithSecret.model_validate(created))


@router.get(BASE, tags=TAGS, summary="Every webhook endpoint", responses=responses(200, "The endpoints"))
@tracer.capture_method
def list_webhooks(_: WebhooksReader, webhooks: Webhooks) -> WebhookList:
    """Oldest first, without their secrets."""
    return WebhookList.model_validate({"items": webhooks.list()})


@router.get(f"{BASE}/<webhook_id>", tags=TAGS, summary="A webhook endpoint", responses=responses(200, "It", 404))
@tracer.capture_method
def get_webhook(_: WebhooksReader, webhooks: Webhooks, webhook_id: WebhookId) -> WebhookView:
    """Without its secret."""
    return WebhookView.model_validate(webhooks.get(webhook_id))


@router.patch(
    f"{BASE}/<webhook_id>",
    tags=TAGS,
    summary="Change a webhook endpoint",
    description=(
        "Changes what the body gives. A new `url` is checked as at creation and forgets the old one's failures; "
        '`"enabled": true` enables a disabled endpoint (whatever disabled it) and `false` disables it '
        "(`disabled_reason` `by_user`). Messages already queued for a disabled endpoint are dropped."
    ),
    responses=responses(200, "Changed", 404, 409),
)
@tracer.capture_method
def update_webhook(
    _: WebhooksWriter,
    webhooks: Webhooks,
    webhook_id: WebhookId,
    change: Annotated[
        WebhookChange,
        Body(embed=False, openapi_examples={"disable": Example(summary="Disable it", value={"enabled": False})}),
    ],
) -> WebhookView:
    changed = webhooks.update(
        webhook_id, url=change.url, events=change.events, description=change.description, enabled=change.enabled
    )
    return WebhookView.model_validate(changed)


@router.delete(
    f"{BASE}/<webhook_id>",
    tags=TAGS,
    summary="Delete a webhook endpoint",
    responses=responses(204, "Deleted: its queued messages are dropped", 404),
)
@tracer.capture_method
def delete_webhook(_: WebhooksWriter, webhooks: Webhooks, webhook_id: WebhookId) -> Response[None]:
    webhooks.delete(webhook_id)
    return Response(204)


@router.post(
    f"{BASE}/<webhook_id>/rotate-secret",
    tags=TAGS,
    summary="Rotate a webhook endpoint's signing secret",
    description=(
        "Answers the endpoint with its new `secret`, shown in this answer only. For 24 h each message carries two "
        "signatures, the new secret's and the one it replaces, so a receiver can switch without missing one."
    ),
    responses=responses(200, "Rotated, with the new secret", 404, 409),
)
@tracer.capture_method
def rotate_webhook_secret(_: WebhooksWriter, webhooks: Webhooks, webhook_id: WebhookId) -> WebhookWithSecret:
    return WebhookWithSecret.model_validate(webhooks.rotate(webhook_id))


@router.post(
    f"{BASE}/<webhook_id>/test",
    tags=TAGS,
    summary="Send a test message to a webhook endpoint",
    description=(
        "Queues a `webhook.test` message (`data` empty) for this endpoint, whether or not it subscribes to it; it is "
        "delivered and retried like any other, and its attempts show in the deliveries under `message_id`. A "
        "disabled endpoint is a 409: enable it first."
    ),
    responses=responses(202, "Queued", 404, 409),
)
@tracer.capture_method
def send_webhook_test(_: WebhooksWriter, webhooks: Webhooks, webhook_id: WebhookId) -> Response[WebhookTestQueued]:
    queued = WebhookTestQueued.model_validate(webhooks.send_test(webhook_id))
    return Response(202, content_types.APPLICATION_JSON, queued)


@router.get(
    f"{BASE}/<webhook_id>/deliveries",
    tags=TAGS,
    summary="A webhook endpoint's delivery attempts",
    description="Newest first, one entry per attempt (kept 30 days). A cursor of another endpoint's is a 422.",
    responses=responses(200, "A page of attempts", 404),
)
@tracer.capture_method
def list_webhook_deliveries(
    _: WebhooksReader, webhooks: Webhooks, webhook_id: WebhookId, limit: Limit = 20, cursor: Cursor = None
) -> WebhookDeliveryPage:
    return WebhookDeliveryPage.model_validate(webhooks.deliveries(webhook_id, limit, cursor))
