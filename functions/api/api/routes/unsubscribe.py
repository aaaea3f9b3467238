"""One-click unsubscribe (RFC 8058): the links every non-account email carries, served without an API key.

``POST /u/{token}`` with the form body ``List-Unsubscribe=One-Click`` (what Gmail, Yahoo and other providers send
when the user clicks their Unsubscribe button) opts the user out of the token's category on its channel; it is
idempotent. ``GET`` answers a small page with a button that makes that same POST, and changes nothing: mail
scanners and link previews follow links. A token the service did not sign, or an altered one, is a 404.

Every answer carries ``PAGE_HEADERS``: no site may frame the page (a frame could trick the user into the click), the
URL, which carries the token, is sent to no one as a referrer and kept in no cache, and the page loads nothing and
posts its form only to itself.
"""
# No `from __future__ import annotations`: the Event Handler reads route annotations at runtime.

import base64
import html
from typing import Annotated, Any
from urllib.parse import parse_qs

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path
from notify.signing import BadToken
from notify.unsubscribe import Unsubscribe

from api.deps import Links, Preferences
from api.errors import error_body
from api.openapi import responses

tracer = Tracer()
router = Router()
Token = Annotated[str, Path(min_length=1, max_length=2048)]
HTML = "text/html; charset=utf-8"
ONE_CLICK = "List-Unsubscribe=One-Click"
# The page's only styles are inline attributes; its form posts back to its own URL.
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto; line-height: 1.5">
<h1 style="font-size: 1.4em">{title}</h1>{body}</body></html>"""


def _html_responses(success: str) -> dict[int, Any]:
    """The route's answers: pages for people (200, 404), the one error shape for what no browser sends."""
    out = responses(200, success, public=True)
    page = {"text/html": {"schema": {"type": "string"}}}
    headers = {name: {"schema": {"type": "string"}, "description": value} for name, value in PAGE_HEADERS.items()}
    out[200] = {"description": success, "content": page, "headers": headers}
    out[404] = {"description": "Not a link this service made, or it was altered", "content": page, "headers": headers}
    return out


def page(status: int, title: str, body: str) -> Response[str]:
    """A small HTML page with ``PAGE_HEADERS`` (the short links' 404 is one too); ``body`` is HTML, escaped by the
    caller."""
    return Response(status, HTML, _PAGE.format(title=html.escape(title), body=body), headers=dict(PAGE_HEADERS))


def _not_ours() -> Response[str]:
    return page(404, "This link does not work", "<p>It was not made by this service, or it was changed.</p>")


def _what(found: Unsubscribe) -> str:
    return f"{html.escape(found.category.value)} notifications by {html.escape(found.channel.value)}"


@router.get("/u/<token>", tags=["unsubscribe"], responses=_html_responses("A page asking to confirm"))
@tracer.capture_method
def confirm_page(links: Links, token: Token) -> Response[str]:
    """A page with a button that unsubscribes; opening it changes nothing."""
    try:
        found = links.read(token)
    except BadToken:
        return _not_ours()
    form = (
        f"<p>Stop receiving {_what(found)}?</p>"
        f'<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        f'<button type="submit">Unsubscribe</button></form>'
    )
    return page(200, "Unsubscribe", form)


@router.post("/u/<token>", tags=["unsubscribe"], responses=_html_responses("Unsubscribed (also when already)"))
@tracer.capture_method
def one_click(links: Links, preferences: Preferences, token: Token) -> Response[Any]:
    """RFC 8058 one-click unsubscribe: the form body must be ``List-Unsubscribe=One-Click``; idempotent."""
    try:
        found = links.read(token)
    except BadToken:
        return _not_ours()
    if not _is_one_click(router.current_event.body, bool(router.current_event.is_base64_encoded)):
        message = f"the body must be the form field {ONE_CLICK} (RFC 8058)"
        return Response(400, "application/json", error_body("invalid_body", message), headers=dict(PAGE_HEADERS))
    preferences.opt_out(found.user_id, found.category, found.channel)
    return page(200, "You are unsubscribed", f"<p>You will not receive {_what(found)} any more.</p>")


def _is_one_click(raw: str | None, is_base64: bool) -> bool:
    """The body carries List-Unsubscribe=One-Click, as a urlencoded form or a multipart form field."""
    if not raw:
        return False
    text = base64.b64decode(raw).decode("utf-8", "replace") if is_base64 else raw
    if parse_qs(text).get("List-Unsubscribe") == ["One-Click"]:
        return True
    # multipart/form-data: a part named List-Unsubscribe whose value is One-Click
    return 'name="List-Unsubscribe"' in text and "\r\n\r\nOne-Click\r\n" in text
