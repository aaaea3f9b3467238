"""WebSocketFunction: the routes of the in-app channel's WebSocket API ($connect, $disconnect, $default).

``$connect`` checks the user token the client put in its URL (``wss://…/?token=<token>``): a missing, forged,
altered or expired one answers 401, and API Gateway refuses the handshake with it; a valid one records the
connection under its user and closes the user's oldest connections beyond ``MAX_CONNECTIONS_PER_USER``.
``$disconnect`` forgets the connection. ``$default`` answers the client's frames on its own connection:
``{"action": "ping"}`` → ``{"type": "pong"}``, ``{"action": "counts"}`` → the user's counts frame, anything else
(not UTF-8, not JSON, an unknown action) → ``{"type": "error", "message": …}``; no frame makes the function raise.
A store or the user-token keys out of reach (or unusable) at $connect (before the connection is recorded) or
$disconnect does raise: Lambda counts the error (the function's Errors alarm) and API Gateway refuses the
handshake. Closing the oldest connections never refuses a handshake: what could not be closed is logged, and the
next connect tries again.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from notify import snapstart
from notify.adapters.apigw import ApiGatewayConnectionPoster
from notify.adapters.aws import SEND_CONFIG
from notify.adapters.dynamodb.connections import DynamoConnectionStore
from notify.adapters.dynamodb.inbox import DynamoInboxStore
from notify.adapters.secrets import SsmSecret
from notify.clock import utc_now
from notify.errors import NotifyError
from notify.ports import ConnectionStore
from notify.services.inbox import InboxService, counts_frame
from notify.settings import WebSocketSettings, load
from notify.signing import BadToken
from notify.usertokens import UserTokens

logger = Logger()
tracer = Tracer()
metrics = Metrics()

USAGE = 'send {"action": "ping"} or {"action": "counts"}'
# How long to wait before each further look at a connection the index does not show yet (GSIs lag by well under 1 s).
USER_OF_WAITS = (0.1, 0.25, 0.5)


@dataclass(frozen=True)
class Services:
    inbox: InboxService
    connections: ConnectionStore
    tokens: UserTokens


def build_services(settings: WebSocketSettings) -> Services:
    """The composition root: every client is built here, once per container."""
    dynamodb = boto3.client("dynamodb", config=Config(parameter_validation=False))
    connections = DynamoConnectionStore(dynamodb, settings.connections_table)
    # Replies go back through the management API, one HTTP attempt each (a lost reply is not worth a retry).
    poster = (
        ApiGatewayConnectionPoster(
            boto3.client("apigatewaymanagementapi", endpoint_url=settings.websocket_endpoint, config=SEND_CONFIG)
        )
        if settings.websocket_endpoint
        else None
    )
    inbox = InboxService(
        DynamoInboxStore(dynamodb, settings.inbox_table),
        connections,
        poster,
        utc_now,
        max_connections=settings.max_connections_per_user,
    )
    return Services(inbox, connections, UserTokens(SsmSecret(settings.user_token_keys_parameter)))


@cache
def services() -> Services:
    return build_services(load(WebSocketSettings))


# SnapStart (template.yaml): the snapshot holds the built services; each restored environment builds its own.
snapstart.register(services)


@tracer.capture_method
def connect(event: APIGatewayWebSocketEvent) -> dict[str, Any]:
    token = (event.query_string_parameters or {}).get("token") or ""
    try:
        user = services().tokens.verify(token, utc_now())
    except BadToken as exc:
        logger.info("handshake refused", extra={"reason": str(exc)})
        metrics.add_metric(name="WebSocketRefused", unit=MetricUnit.Count, value=1)
        return {"statusCode": 401}
    connected = services().inbox.connect(user, event.request_context.connection_id)
    metrics.add_metric(name="WebSocketConnected", unit=MetricUnit.Count, value=1)
    if connected.closed:
        metrics.add_metric(name="WebSocketConnectionsReplaced", unit=MetricUnit.Count, value=len(connected.closed))
    details = {"closed": connected.closed, "gone": connected.gone, "kept": connected.kept}
    logger.info("connected", extra={"user_id": user, **{k: v for k, v in details.items() if v}})
    return {"statusCode": 200}


@tracer.capture_method
def disconnect(event: APIGatewayWebSocketEvent) -> dict[str, Any]:
    context = event.request_context
    services().inbox.disconnect(context.connection_id)
    logger.info("disconnected", extra={"code": context.disconnect_status_code, "reason": context.disconnect_reason})
    return {"statusCode": 200}


@tracer.capture_method
def message(event: APIGatewayWebSocketEvent) -> dict[str, Any]:
    connection = event.request_context.connection_id
    try:
        frame = answer(event.body, event.is_base64_encoded, connection)
        services().inbox.reply(connection, frame)
    except NotifyError as exc:  # a store or the management API out of reach: the client may ask again
        logger.exception("a frame could not be answered", extra={"error": str(exc)})
    return {"statusCode": 200}


def answer(body: str | None, is_base64: bool, connection: str) -> dict[str, Any]:
    """The frame that answers one client frame (an error frame for anything but a known action)."""
    try:
        text = base64.b64decode(body or "", validate=True).decode() if is_base64 else body or ""
        request = json.loads(text)
    except (ValueError, binascii.Error, RecursionError):  # not base64, not UTF-8, not JSON, or absurdly nested
        return {"type": "error", "message": f"a frame is a JSON object: {USAGE}"}
    action = request.get("action") if isinstance(request, dict) else None
    if action == "ping":
        return {"type": "pong"}
    if action == "counts":
        user = _user_of(connection)
        if user is None:
            return {"type": "error", "message": "this connection is not known any more: connect again"}
        return counts_frame(services().inbox.counts(user))
    return {"type": "error", "message": f"unknown action: {USAGE}"}


def _user_of(connection: str) -> str | None:
    """The connection's user. It is found through a global secondary index, which DynamoDB cannot read
    consistently: a client asking right after $connect may be ahead of the index, so look again briefly."""
    for wait in USER_OF_WAITS:
        user = services().connections.user_of(connection)
        if user is not None:
            return user
        time.sleep(wait)
    return services().connections.user_of(connection)


ROUTES: dict[str, Callable[[APIGatewayWebSocketEvent], dict[str, Any]]] = {
    "$connect": connect,
    "$disconnect": disconnect,
}


@logger.inject_lambda_context(correlation_id_path="requestContext.connectionId")
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=APIGatewayWebSocketEvent)
def lambda_handler(event: APIGatewayWebSocketEvent, context: LambdaContext) -> dict[str, Any]:
    return ROUTES.get(event.request_context.route_key, message)(event)
