"""Short links (docs/API.md#short-links): followed without an API key, made and read with one.

``GET /l/{code}`` answers 302 to the URL the link stored (only ever an http or https URL the service stored itself:
no open redirect) and counts the click; ``HEAD`` and known link scanners (``notify.links.SCANNER_MARKERS``) get the
same redirect uncounted. An unknown, malformed or expired code is a 404 page. Both send ``Referrer-Policy:
no-referrer`` (the target never learns the link, whose code is the recipient's) and ``Cache-Control: no-store`` (no
cache may answer a later click, which would then not count); the pages carry the ``/u/`` pages' strict policy.

``POST /api/v1/links`` (scope ``links:write``) makes a link for a caller's own messages; ``GET /api/v1/links/{code}``
shows a link and its clicks to the key that made it, or to any key that reads notifications.
"""
# No `from __future__ import annotations`: the Event Handler reads route annotations at runtime.

from typing import Annotated, Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.models import Example
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from notify.errors import StoreUnavailable
from notify.links import MAX_URL_CHARS, is_scanner, target
from notify.models import Strict
from notify.services.links import DEFAULT_TTL_DAYS, MAX_TTL_DAYS
from pydantic import Field, field_validator

from api.deps import LinkReader, LinksWriter, ShortLinkService
from api.openapi import links_to, responses
from api.routes.unsubscribe import HTML, PAGE_HEADERS, page
from api.views import LinkView

tracer = Tracer()
router = Router()
TAGS = ["links"]
Code = Annotated[str, Path(min_length=1, max_length=64)]
# The redirect's headers: the short link is the recipient's, so neither the target (a Referer) nor a cache sees it.
REDIRECT_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex",
}


class LinkRequest(Strict):
    """A URL to shorten and how many days the link works."""

    url: str = Field(
        min_length=1,
        max_length=MAX_URL_CHARS,
        examples=["https://example.com/sale"],
        description="an http or https URL with a host and no credentials",
    )
    ttl_days: int = Field(default=DEFAULT_TTL_DAYS, ge=1, le=MAX_TTL_DAYS, description="how long the link works")

    @field_validator("url")
    @classmethod
    def _http_or_https(cls, value: str) -> str:
        return target(value)


LinkBody = Annotated[
    LinkRequest,
    Body(
        embed=False,
        openapi_examples={"a_sale": Example(value={"url": "https://example.com/sale", "ttl_days": 30})},
    ),
]


@router.post(
    "/api/v1/links",
    tags=TAGS,
    summary="Make a short link",
    description=(
        "A short link for your own messages (an SMS, a chat message): `short_url` redirects to `url` for `ttl_days` "
        "(1 to 365, default 90) and counts its clicks. Only http and https URLs with a host are accepted (a 422 on "
        "`url` otherwise). Notifications' templates make theirs with the `short` filter."
    ),
    responses=responses(
        201, "The link", links=links_to("code", "/code", ("get", "/api/v1/links/{code}"), ("get", "/l/{code}"))
    ),
)
@tracer.capture_method
def make_link(caller: LinksWriter, links: ShortLinkService, request: LinkBody) -> Response[LinkView]:
    """A short link to an http(s) URL, for the caller's own messages."""
    made = links.create(request.url, ttl_days=request.ttl_days, caller_id=caller.id, base=_own_base())
    return Response(201, content_types.APPLICATION_JSON, LinkView.model_validate(made))


@router.get(
    "/api/v1/links/<code>",
    tags=TAGS,
    summary="A short link and its clicks",
    description=(
        "Scope `links:write` (the links this key made) or `notifications:read` (any link, a notification's "
        "included). An unknown or expired link, or one another key made, is a 404."
    ),
    responses=responses(200, "The link", 404),
)
@tracer.capture_method
def get_link(caller: LinkReader, links: ShortLinkService, code: Code) -> LinkView:
    """A short link with its clicks."""
    read_all = bool(caller.scopes & {"notifications:read", "admin"})
    return LinkView.model_validate(links.get(code, caller_id=caller.id, read_all=read_all, base=_own_base()))


def _own_base() -> str:
    """Where this request came to (the HTTP API's execute-api domain): the links' base when SHORT_LINK_BASE is not
    set, as the worker's default names that same domain."""
    context = router.current_event.raw_event.get("requestContext") or {}
    return f"https://{context.get('domainName', '')}"


def _follow_responses() -> dict[int, Any]:
    page_content = {"text/html": {"schema": {"type": "string"}}}
    redirect = {name: {"schema": {"type": "string"}, "description": value} for name, value in REDIRECT_HEADERS.items()}
    out = responses(302, "To the link's URL", public=True)
    out[302] = {
        "description": "To the URL the link stored (the click counted, unless HEAD or a link scanner)",
        "content": {},  # no body: an explicit empty content keeps the return annotation out of it
        "headers": {"Location": {"schema": {"type": "string"}, "description": "the link's URL"}, **redirect},
    }
    headers = {name: {"schema": {"type": "string"}, "description": value} for name, value in PAGE_HEADERS.items()}
    out[404] = {"description": "No such link, or it expired", "content": page_content, "headers": headers}
    out[503] = {"description": "The links cannot be read right now", "content": page_content, "headers": headers}
    return out


def _follow(links: ShortLinkService, code: str, count: bool) -> Response[str]:
    try:
        url = links.follow(code, count=count)
    except StoreUnavailable:
        unavailable = page(503, "Try again in a moment", "<p>This link cannot be opened right now.</p>")
        unavailable.headers["Retry-After"] = "5"
        return unavailable
    if url is None:
        return page(404, "This link does not work", "<p>It does not exist, or it has expired.</p>")
    return Response(302, HTML, "", headers={"Location": url, **REDIRECT_HEADERS})


@router.get("/l/<code>", tags=TAGS, summary="Follow a short link", security=[], responses=_follow_responses())
@tracer.capture_method
def follow_link(links: ShortLinkService, code: Code) -> Response[str]:
    """302 to the link's URL; the click counts unless a link scanner or a preview made it."""
    return _follow(links, code, count=not is_scanner(router.current_event.headers.get("user-agent")))


@router.head("/l/<code>", tags=TAGS, summary="Check a short link", security=[], responses=_follow_responses())
@tracer.capture_method
def check_link(links: ShortLinkService, code: Code) -> Response[str]:
    """The same 302 as GET, never counted (scanners check links with HEAD)."""
    return _follow(links, code, count=False)
