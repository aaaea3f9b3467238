"""ApiFunction: the HTTP API (API Gateway HTTP API v2 → Powertools Event Handler)."""

# No `from __future__ import annotations`: the Event Handler reads route annotations at runtime.

import json
import re
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from notify import snapstart

from api import errors
from api.body import parse_json
from api.context import IDEMPOTENCY, services
from api.openapi import SECURITY, SECURITY_SCHEMES, responses
from api.routes import (
    campaigns,
    console,
    digest_rules,
    dlq,
    events,
    inbox,
    links,
    overview,
    preferences,
    segments,
    templates,
    throttles,
    unsubscribe,
    users,
    webhooks,
)
from api.views import Health

TITLE = "Notification service"
VERSION = "1.0.0"

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=parse_json)
OPENAPI = {"title": TITLE, "version": VERSION, "security_schemes": SECURITY_SCHEMES, "security": SECURITY}
app.enable_swagger(path="/docs", **OPENAPI)  # type: ignore[arg-type]
app.include_router(events.router)
app.include_router(templates.router)
app.include_router(throttles.router)
app.include_router(digest_rules.router)
app.include_router(webhooks.router)
app.include_router(dlq.router)
app.include_router(campaigns.router)
app.include_router(segments.router)
app.include_router(preferences.router)
app.include_router(unsubscribe.router)
app.include_router(users.router)
app.include_router(inbox.router)
app.include_router(overview.router)
app.include_router(console.router)
app.include_router(links.router)


@app.get("/health", tags=["ops"], security=[], responses=responses(200, "The API is up", public=True))
@tracer.capture_method
def health() -> Health:
    return Health(status="ok")


@app.get("/openapi.json", include_in_schema=False)
@tracer.capture_method
def openapi() -> dict[str, Any]:
    return openapi_document()


# Operations anyone may call. Powertools drops an empty `security` list, which would leave them under the
# document's API key requirement; the document says so explicitly. (The dev token route answers only where
# DEV_USER_TOKENS is true: the local stack.)
PUBLIC_OPERATIONS = (
    ("/health", "get"),
    ("/u/{token}", "get"),
    ("/u/{token}", "post"),
    # Short links: the code is the only credential a link needs (docs/API.md#short-links).
    ("/l/{code}", "get"),
    ("/l/{code}", "head"),
    ("/dev/users/{user_id}/tokens", "post"),
    # The operator console's static files: it has no privileges of its own (the operator's key does).
    ("/admin/", "get"),
    ("/admin/{asset}", "get"),
)


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document the API serves (and docs/openapi.json holds)."""
    spec: dict[str, Any] = json.loads(app.get_openapi_json_schema(**OPENAPI))  # type: ignore[arg-type]
    for path, method in PUBLIC_OPERATIONS:
        spec["paths"][path][method]["security"] = []
    return spec


@cache
def _routes() -> list[tuple[re.Pattern[str], list[str]]]:
    """Each documented path as a pattern, with its methods (from the OpenAPI document itself)."""
    table = []
    for path, item in openapi_document()["paths"].items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path))
        methods = [m.upper() for m in ("get", "head", "put", "post", "delete", "patch") if m in item]
        table.append((re.compile(f"^{pattern}$"), methods))
    return table


def allowed_methods(path: str) -> list[str]:
    """The methods the OpenAPI document lists for ``path`` (none: no such path)."""
    return next((methods for pattern, methods in _routes() if pattern.match(path)), [])


errors.register(app, allowed_methods)
# SnapStart (template.yaml): the snapshot holds the built services; each restored environment builds its own.
snapstart.register(services)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    IDEMPOTENCY.register_lambda_context(context)
    return app.resolve(event, context)
