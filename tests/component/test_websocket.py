"""WebSocketFunction's handler with the sample events in events/, against moto server and the local WebSocket
gateway (the management API its replies go through)."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from notify.adapters.dynamodb.connections import DynamoConnectionStore
from notify.adapters.dynamodb.inbox import DynamoInboxStore
from notify.adapters.secrets import SsmSecret
from notify.clock import iso, utc_now
from notify.records import InboxItem
from notify.usertokens import UserTokens
from websockets.sync.client import ClientConnection, connect

from local.events import load_event, websocket_id
from local.invoke import Function, LambdaContext
from local.stack import LocalStack
from local.ws_gateway import WebSocketGateway, wait_connected

from .helpers import connections

HANDLER = "websocket.app.lambda_handler"


@pytest.fixture(autouse=True)
def fresh_websocket_services(local_stack: LocalStack) -> Iterator[None]:
    """The function's clients are built from the stack's environment, once per test."""
    from websocket import app

    app.services.cache_clear()
    yield
    app.services.cache_clear()


@pytest.fixture(scope="module")
def gateway(local_stack: LocalStack) -> Iterator[WebSocketGateway]:
    """The local WebSocket API on the stack's WS port, which WEBSOCKET_ENDPOINT names: replies reach sockets."""
    assert os.environ["WEBSOCKET_ENDPOINT"] == local_stack.ws_management_url
    served = WebSocketGateway(Function("WebSocketFunction", HANDLER), local_stack.config.ws_port).start()
    yield served
    served.stop()


def invoke(event: dict[str, Any]) -> Any:
    from websocket.app import lambda_handler

    return lambda_handler(event, LambdaContext("WebSocketFunction"))


def tokens() -> UserTokens:
    """User tokens under the stack's own user-token keys (in SSM, as the API reads them)."""
    return UserTokens(SsmSecret(os.environ["USER_TOKEN_KEYS_PARAMETER"]))


def connect_event(token: str | None, connection_id: str) -> dict[str, Any]:
    """events/ws_connect.json for another connection, with ``token`` in its URL (or none)."""
    event = load_event("ws_connect")
    event["requestContext"]["connectionId"] = connection_id
    if token is None:
        del event["queryStringParameters"], event["multiValueQueryStringParameters"]
    else:
        event["queryStringParameters"] = {"token": token}
        event["multiValueQueryStringParameters"] = {"token": [token]}
    return event


def message_event(connection_id: str, body: str, is_base64: bool = False) -> dict[str, Any]:
    event = load_event("ws_message")
    event["requestContext"]["connectionId"] = connection_id
    event["body"], event["isBase64Encoded"] = body, is_base64
    return event


def user() -> str:
    return f"ws-user-{uuid.uuid4().hex[:10]}"


# --- $connect and $disconnect ----------------------------------------------------------------------------


def test_a_valid_token_connects_and_the_connection_is_recorded_under_its_user() -> None:
    someone, connection = user(), websocket_id()
    token, _ = tokens().issue(someone, utc_now())
    assert invoke(connect_event(token, connection)) == {"statusCode": 200}
    assert connections().user_of(connection) == someone
    (recorded,) = connections().of_user(someone, utc_now(), 10)
    assert recorded.connection_id == connection
    # API Gateway closes a connection after 2 hours: the record expires with it.
    lifetime = datetime.fromisoformat(recorded.expires_at) - datetime.fromisoformat(recorded.connected_at)
    assert lifetime == timedelta(hours=2)


def _altered(token: str) -> str:
    body, _, signature = token.partition(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["u"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
    return f"{forged}.{signature}"


@pytest.mark.parametrize("case", ["missing", "empty", "forged", "altered", "expired", "garbage", "non-ascii"])
def test_a_bad_token_is_refused_with_401_and_nothing_is_recorded(case: str) -> None:
    someone, connection = user(), websocket_id()
    now = utc_now()
    token: str | None = {
        "missing": None,
        "empty": "",
        "forged": load_event("ws_connect")["queryStringParameters"]["token"],  # another key signed it
        "altered": _altered(tokens().issue(someone, now)[0]),
        "expired": tokens().issue(someone, now - timedelta(hours=2), ttl=timedelta(hours=1))[0],
        "garbage": "\u00e9" * 5000,
        "non-ascii": "abc.\u00e9",  # a signature that is not ASCII (compare_digest raised TypeError on it)
    }[case]
    assert invoke(connect_event(token, connection)) == {"statusCode": 401}
    assert connections().user_of(connection) is None
    assert connections().of_user(someone, now, 10) == []


def test_the_sample_connect_event_is_refused_here() -> None:
    # Its token was signed with a stand-in key (tools/sample_events.py), not this stack's.
    assert invoke(load_event("ws_connect")) == {"statusCode": 401}


def test_disconnect_forgets_the_connection() -> None:
    someone, connection = user(), websocket_id()
    assert invoke(connect_event(tokens().issue(someone, utc_now())[0], connection)) == {"statusCode": 200}
    event = load_event("ws_disconnect")
    event["requestContext"]["connectionId"] = connection
    assert invoke(event) == {"statusCode": 200}
    assert connections().user_of(connection) is None
    assert connections().of_user(someone, utc_now(), 10) == []
    assert invoke(event) == {"statusCode": 200}  # $disconnect is best effort and may come twice


# --- $default: frames from the client, answered on its own connection ------------------------------------


@pytest.fixture
def socket(gateway: WebSocketGateway) -> Iterator[tuple[ClientConnection, str, str]]:
    """A client connected through the gateway (so its $connect ran the handler): (socket, connection id, user)."""
    someone = user()
    before = set(gateway.connection_ids())
    with connect(f"{gateway.url}?token={tokens().issue(someone, utc_now())[0]}", open_timeout=60) as client:
        connection = wait_connected(gateway, before)
        yield client, connection, someone


def reply(client: ClientConnection) -> dict[str, Any]:
    return dict(json.loads(client.recv(timeout=60)))


def test_a_ping_is_answered_with_a_pong(socket: tuple[ClientConnection, str, str]) -> None:
    client, connection, _ = socket
    assert invoke(message_event(connection, '{"action": "ping"}')) == {"statusCode": 200}
    assert reply(client) == {"type": "pong"}


def test_counts_are_the_users_own(socket: tuple[ClientConnection, str, str]) -> None:
    client, connection, someone = socket
    store = DynamoInboxStore(boto3.client("dynamodb"), os.environ["INBOX_TABLE"])
    now = utc_now()
    for n in range(3):
        stored = InboxItem(
            id=f"{n:032x}",
            user_id=someone,
            job_id=str(uuid.uuid4()),
            event_type="review_liked",
            created_at=iso(now),
            expires_at=iso(now + timedelta(days=1)),
            title=f"t{n}",
        )
        assert store.put(stored)
    store.put(InboxItem(**{**stored.__dict__, "id": "f" * 32, "user_id": user()}))  # someone else's
    event = load_event("ws_message")  # the sample asks for counts
    event["requestContext"]["connectionId"] = connection
    assert invoke(event) == {"statusCode": 200}
    assert reply(client) == {"type": "counts", "unseen": 3, "unread": 3, "total": 3}


class LaggingIndex:
    """The connections store as DynamoDB's by-connection index may answer right after $connect: not yet."""

    def __init__(self, store: DynamoConnectionStore, misses: int) -> None:
        self.store, self.misses, self.calls = store, misses, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def user_of(self, connection_id: str) -> str | None:
        self.calls += 1
        return None if self.calls <= self.misses else self.store.user_of(connection_id)


def test_counts_asked_before_the_index_shows_the_connection_still_answer(
    socket: tuple[ClientConnection, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from websocket import app

    client, connection, _ = socket
    lagging = LaggingIndex(app.services().connections, misses=2)
    patched = dataclasses.replace(app.services(), connections=lagging)
    monkeypatch.setattr(app, "services", lambda: patched)
    assert invoke(message_event(connection, '{"action": "counts"}')) == {"statusCode": 200}
    assert reply(client) == {"type": "counts", "unseen": 0, "unread": 0, "total": 0}
    assert lagging.calls == 3


BAD_FRAMES = {
    "not JSON": ("hello", False),
    "a JSON array": ('[{"action": "ping"}]', False),
    "no action": ('{"type": "ping"}', False),
    "an unknown action": ('{"action": "sendmessage"}', False),
    "an action that is no string": ('{"action": ["ping"]}', False),
    "empty": ("", False),
    "bytes that are not UTF-8": (base64.b64encode(b"\xff\xfe\x00").decode(), True),
    "base64 that is not base64": ("%%%", True),
    "JSON nested 50,000 deep": ("[" * 50_000 + "]" * 50_000, False),
}


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
def test_anything_else_is_answered_with_an_error_frame(socket: tuple[ClientConnection, str, str], case: str) -> None:
    client, connection, _ = socket
    body, is_base64 = BAD_FRAMES[case]
    assert invoke(message_event(connection, body, is_base64)) == {"statusCode": 200}
    answer = reply(client)
    assert answer["type"] == "error" and '{"action": "ping"}' in answer["message"]


def test_counts_for_a_connection_it_does_not_know_is_an_error_frame(socket: tuple[ClientConnection, str, str]) -> None:
    client, connection, _ = socket
    connections().remove(connection)  # say its record expired
    assert invoke(message_event(connection, '{"action": "counts"}')) == {"statusCode": 200}
    answer = reply(client)
    assert answer["type"] == "error" and "connect again" in answer["message"]


def test_a_frame_from_a_connection_that_is_gone_changes_nothing(gateway: WebSocketGateway) -> None:
    # The gateway has no such socket, so the reply is a 410: the handler forgets the connection, answers 200.
    someone, connection = user(), websocket_id()
    assert invoke(connect_event(tokens().issue(someone, utc_now())[0], connection)) == {"statusCode": 200}
    assert invoke(message_event(connection, '{"action": "ping"}')) == {"statusCode": 200}
    assert connections().user_of(connection) is None
