"""What the API accepts as a request body: JSON, UTF-8, at most 1 MiB, at most 32 levels deep.

API Gateway hands over any bytes (base64-encoded when they are not text); the Event Handler parses
the body before any middleware runs. ``parse_json`` is its JSON deserializer, and ``body_problem``
tells, from the request alone, why a body cannot be read — so a failure while parsing one is
answered as the client's 4xx, never as a 5xx.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Optional

from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

MAX_BODY_BYTES = 1024 * 1024
# DynamoDB nests maps at most 32 deep; nothing the API stores needs more.
MAX_JSON_DEPTH = 32
JSON_MEDIA_TYPE = "application/json"
# One-click unsubscribe (RFC 8058): mail providers POST a form to /u/{token}, not JSON.
FORM_PATHS = ("/u/",)
FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True)
class BodyProblem:
    """Why a request body is refused: the status and the error code and message to answer with."""

    status: int
    code: str
    message: str


class UnreadableBody(Exception):
    """Raised by the middleware that refuses a body before the route runs."""

    def __init__(self, problem: BodyProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def body_problem(event: BaseProxyEvent) -> Optional[BodyProblem]:
    """Too large (413), not JSON (415) or not UTF-8 text (400); None for no body or a readable one."""
    raw = event.body
    if not raw:
        return None
    try:
        data = base64.b64decode(raw) if event.is_base64_encoded else raw.encode("utf-8", "surrogatepass")
    except (binascii.Error, ValueError):
        return BodyProblem(400, "invalid_body", "the body is marked base64 but is not valid base64")
    if len(data) > MAX_BODY_BYTES:
        return BodyProblem(413, "payload_too_large", f"the body is {len(data)} bytes; the limit is {MAX_BODY_BYTES}")
    media_type = (event.headers.get("content-type") or "").split(";")[0].strip().lower()
    if str(event.get("rawPath") or event.path or "").startswith(FORM_PATHS):
        if media_type not in FORM_MEDIA_TYPES:
            expected = " or ".join(FORM_MEDIA_TYPES)
            return BodyProblem(415, "unsupported_media_type", f"send the body as {expected}, not {media_type}")
    elif media_type not in ("", JSON_MEDIA_TYPE):
        return BodyProblem(415, "unsupported_media_type", f"send the body as {JSON_MEDIA_TYPE}, not {media_type}")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return BodyProblem(400, "invalid_body", f"the body is not UTF-8 text (byte {exc.start})")
    return None


def parse_json(text: str) -> Any:
    """``json.loads`` for request bodies: nesting past MAX_JSON_DEPTH is a JSON error, not a RecursionError."""
    too_deep = f"nested deeper than {MAX_JSON_DEPTH} levels"
    try:
        value = json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError(too_deep, text, 0) from None
    if _deeper_than(value, MAX_JSON_DEPTH):
        raise json.JSONDecodeError(too_deep, text, 0)
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False
