"""The operator console (docs/CONSOLE.md): static files served at ``/admin/``, no API key of their own.

The console is plain HTML, CSS and JavaScript modules in ``api/console`` (shipped with the function's code); in
the browser it asks for an API key, keeps it in sessionStorage and calls the JSON API with it, so it can do
exactly what that key may. These routes serve only the files of that directory, by name (a fixed table built
at import: no path is ever joined from the request, so nothing outside it can be named), each with a strict
Content-Security-Policy (scripts, styles and requests only from this origin, no inline script or style, no
framing by others; ``frame.html``, the frame an email's HTML is shown in, has a policy of its own), ``nosniff``,
no referrer, and an ETag with ``Cache-Control: no-cache`` (a browser revalidates and gets a 304 while the file is
unchanged, so a deployment shows at once).
"""
# No `from __future__ import annotations`: the Event Handler reads route annotations at runtime.

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam

from api.openapi import responses

tracer = Tracer()
router = Router()

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# frame.html, the frame the console shows an email's HTML in (sandboxed to scripts only: an opaque origin): the
# email's inline styles and its data: images apply, no script runs but frame.js, nothing is fetched or submitted, and
# only the console may frame it. Remote images are tracking pixels as often as not: fetching one tells the sender's
# host that the message was opened, when and from where. frame-images.html, the same file, is what the console loads
# instead once the operator asks for them ("Load remote images"): its policy also lets HTTPS images in.
FRAME_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'"
)
FRAME_IMAGES_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src data: https:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
POLICIES = {"frame.html": FRAME_CSP, "frame-images.html": FRAME_IMAGES_CSP}  # a file's own policy, instead of CSP
ALIASES = {"frame-images.html": "frame.html"}  # names served with another file's body (and their own policy)
HTML = CONTENT_TYPES[".html"]
_NOT_FOUND = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Not found</title></head>'
    '<body><h1>Not found</h1><p>The console has no such file. <a href="./">Open the console</a>.</p></body></html>'
)


@dataclass(frozen=True)
class Asset:
    """One file of the console, read once per container."""

    body: str
    content_type: str
    etag: str


def _load(directory: Path) -> dict[str, Asset]:
    """Every servable file directly in ``directory``, by name (no subdirectories, no hidden files)."""
    assets = {}
    for path in sorted(directory.iterdir()) if directory.is_dir() else []:
        if path.is_file() and not path.name.startswith(".") and path.suffix in CONTENT_TYPES:
            text = path.read_text(encoding="utf-8")
            digest = hashlib.sha256(text.encode()).hexdigest()[:20]
            assets[path.name] = Asset(text, CONTENT_TYPES[path.suffix], f'"{digest}"')
    return assets


ASSETS = _load(CONSOLE_DIR)
AssetName = Annotated[str, PathParam(min_length=1, max_length=100, description="a file of the console, e.g. app.js")]


def _responses(success: str) -> dict[int, Any]:
    """A file (or 304 while the browser's copy is current), a page for a name the console does not have, and the
    one error shape for what no browser sends."""
    out = responses(200, success, public=True)
    text = {"schema": {"type": "string"}}
    headers = {name: {"schema": {"type": "string"}, "description": value} for name, value in SECURITY_HEADERS.items()}
    headers["Content-Security-Policy"]["description"] = (
        f"{CSP} (frame.html, the email preview's frame: {FRAME_CSP}; frame-images.html, the same frame once the "
        f"operator asks for remote images: {FRAME_IMAGES_CSP})"
    )
    headers["ETag"] = {"schema": {"type": "string"}, "description": "the file's version; send it as If-None-Match"}
    out[200] = {
        "description": success,
        "content": {"text/html": text, "text/css": text, "text/javascript": text, "image/svg+xml": text},
        "headers": headers,
    }
    out[304] = {"description": "Not modified: the If-None-Match ETag is the file's current one", "content": {}}
    out[404] = {"description": "The console has no such file", "content": {"text/html": text}}
    return out


def _serve(name: str) -> Response[str]:
    asset = ASSETS.get(ALIASES.get(name, name))
    if asset is None:
        return Response(404, HTML, _NOT_FOUND, headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache", "ETag": asset.etag}
    headers["Content-Security-Policy"] = POLICIES.get(name, CSP)
    if router.current_event.headers.get("if-none-match") == asset.etag:
        return Response(304, None, "", headers=headers)
    return Response(200, asset.content_type, asset.body, headers=headers, compress=True)


@router.get("/admin/", tags=["console"], security=[], responses=_responses("The console's page"))
@tracer.capture_method
def console_page() -> Response[str]:
    """The operator console: a page that asks for an API key and uses the JSON API with it (docs/CONSOLE.md)."""
    return _serve("index.html")


@router.get("/admin/<asset>", tags=["console"], security=[], responses=_responses("The file"))
@tracer.capture_method
def console_asset(asset: AssetName) -> Response[str]:
    """One of the console's files (its scripts, styles and icon); any other name is a 404."""
    return _serve(asset)


@router.get("/admin", include_in_schema=False)
@tracer.capture_method
def console_redirect() -> Response[str]:
    """``/admin`` without its slash: the console's page is ``/admin/`` (its files are relative to it)."""
    return Response(308, None, "", headers={"Location": "admin/", "Cache-Control": "no-cache"})
