"""The local WebSocket gateway with a real client (the websockets library) and boto3's management API client, in
front of WebSocketFunction's real handler and moto; and what the local HTTP gateway adds for a front end (CORS and
the demo pages)."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
)
from botocore.config import Config
from notify.adapters.apigw import ApiGatewayConnectionPoster
from notify.adapters.aws import SEND_CONFIG
from notify.adapters.secrets import SsmSecret
from notify.clock import utc_now
from notify.errors import ConnectionGone
from notify.usertokens import UserTokens
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from local.cfn import template
from local.gateway import Cors, Gateway
from local.processes import free_port
from local.stack import LocalStack
from local.ws_gateway import FRAME_BYTES, MESSAGE_BYTES, WebSocketGateway, wait_connected

from .helpers import Recorded, connections, eventually, token_for


def management(endpoint: str) -> Any:
    """boto3's client for the management API, as the functions build it (one attempt), with a minute to answer: on
    a loaded machine the gateway's thread may wait its turn."""
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=endpoint,
        config=SEND_CONFIG.merge(Config(connect_timeout=60, read_timeout=60)),
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture
def opened(gateway: WebSocketGateway) -> Iterator[tuple[ClientConnection, str, str]]:
    """A connection of a fresh user: (client, its connection id, the user)."""
    user = f"gw-user-{uuid.uuid4().hex[:10]}"
    before = set(gateway.connection_ids())
    with connect(f"{gateway.url}?token={token_for(user)}", open_timeout=60, user_agent_header="probe/1.0") as client:
        connection = wait_connected(gateway, before)
        yield client, connection, user


# --- the handshake -----------------------------------------------------------------------------------------


def test_a_valid_token_opens_a_connection_recorded_for_its_user(
    gateway: WebSocketGateway, handler: Recorded, opened: tuple[ClientConnection, str, str]
) -> None:
    _, connection, user = opened
    assert connections().user_of(connection) == user
    (event,) = handler.of("$connect", connection)
    model = APIGatewayWebSocketConnectEventModel.model_validate(event)
    tokens = UserTokens(SsmSecret(os.environ["USER_TOKEN_KEYS_PARAMETER"]))
    assert tokens.verify(event["queryStringParameters"]["token"], utc_now()) == user
    assert str(model.request_context.identity.source_ip).startswith("127.0.0.1")
    assert model.request_context.stage == gateway.stage and len(connection) == 16
    assert event["headers"]["User-Agent"] == "probe/1.0" and event["multiValueHeaders"]["User-Agent"] == ["probe/1.0"]


@pytest.mark.parametrize("query", ["", "?token=", "?token=forged.token", "?other=1"])
def test_a_handshake_without_a_valid_token_is_refused_with_401(gateway: WebSocketGateway, query: str) -> None:
    before = set(gateway.connection_ids())
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{gateway.url}{query}", open_timeout=60)
    assert refused.value.response.status_code == 401
    # No new connection (one of an earlier test may still be closing, so the set can only shrink).
    assert set(gateway.connection_ids()) <= before


def test_the_stage_path_is_accepted_and_another_path_is_not(gateway: WebSocketGateway) -> None:
    with connect(f"ws://127.0.0.1:{gateway.port}/{gateway.stage}?token={token_for('gw-stage')}", open_timeout=60):
        pass
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{gateway.port}/elsewhere?token={token_for('gw-stage')}", open_timeout=60)
    assert refused.value.response.status_code == 403


# --- frames from the client ----------------------------------------------------------------------------------


def test_a_frame_goes_to_the_handler_and_its_reply_comes_back(
    handler: Recorded, opened: tuple[ClientConnection, str, str]
) -> None:
    client, connection, _ = opened
    client.send(json.dumps({"action": "ping"}))
    assert json.loads(client.recv(timeout=60)) == {"type": "pong"}
    client.send("not json")
    assert json.loads(client.recv(timeout=60))["type"] == "error"
    client.send(json.dumps({"action": "counts"}))
    assert json.loads(client.recv(timeout=60)) == {"type": "counts", "unseen": 0, "unread": 0, "total": 0}
    events = handler.of("$default", connection)
    assert [e["body"] for e in events] == ['{"action": "ping"}', "not json", '{"action": "counts"}']
    for event in events:
        model = APIGatewayWebSocketMessageEventModel.model_validate(event)
        assert model.request_context.event_type == "MESSAGE" and not model.is_base64_encoded
    assert len({e["requestContext"]["messageId"] for e in events}) == 3


@pytest.mark.parametrize(
    ("send", "code"),
    [
        (lambda c: c.send("x" * (FRAME_BYTES + 1)), 1009),  # one frame over API Gateway's 32 KB
        (lambda c: c.send("y" * FRAME_BYTES for _ in range(5)), 1009),  # frames within, a message over 128 KB
        (lambda c: c.send(b"\x00\x01"), 1003),  # API Gateway takes no binary frames in
    ],
    ids=["frame-over-32KiB", "message-over-128KiB", "binary"],
)
def test_what_api_gateway_refuses_closes_the_connection(
    handler: Recorded, opened: tuple[ClientConnection, str, str], send: Callable[[ClientConnection], None], code: int
) -> None:
    client, connection, _ = opened
    with pytest.raises(ConnectionClosed) as closed:
        send(client)  # the gateway may close it while the client is still sending the message's last frames
        client.recv(timeout=60)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code
    eventually(lambda: bool(handler.of("$disconnect", connection)))
    (event,) = handler.of("$disconnect", connection)
    assert APIGatewayWebSocketDisconnectEventModel.model_validate(event).request_context.disconnect_status_code == code
    assert not handler.of("$default", connection)
    eventually(lambda: connections().user_of(connection) is None)


def test_a_message_of_several_frames_within_the_limits_is_one_event(
    handler: Recorded, opened: tuple[ClientConnection, str, str]
) -> None:
    client, connection, _ = opened
    client.send(iter(['{"action": "ping", "pad": "', "z" * (FRAME_BYTES - 100), '"}']))
    assert json.loads(client.recv(timeout=60)) == {"type": "pong"}
    (event,) = handler.of("$default", connection)
    assert len(event["body"]) > FRAME_BYTES - 100


def test_a_close_from_the_client_is_a_disconnect_with_its_code_and_reason(
    gateway: WebSocketGateway, handler: Recorded
) -> None:
    user = f"gw-user-{uuid.uuid4().hex[:10]}"
    before = set(gateway.connection_ids())
    with connect(f"{gateway.url}?token={token_for(user)}", open_timeout=60) as client:
        connection = wait_connected(gateway, before)
        client.close(4001, "bye")
    eventually(lambda: bool(handler.of("$disconnect", connection)))
    (event,) = handler.of("$disconnect", connection)
    context = APIGatewayWebSocketDisconnectEventModel.model_validate(event).request_context
    assert (context.disconnect_status_code, context.disconnect_reason) == (
        4001,
        "Client-side close frame status code 4001 | reason: bye",
    )
    assert (
        context.connected_at
        == APIGatewayWebSocketConnectEventModel.model_validate(
            handler.of("$connect", connection)[0]
        ).request_context.connected_at
    )
    eventually(lambda: connections().user_of(connection) is None)


# --- the management API, through boto3 -------------------------------------------------------------------------


def test_post_to_connection_reaches_the_socket(
    gateway: WebSocketGateway, opened: tuple[ClientConnection, str, str]
) -> None:
    client, connection, _ = opened
    frame = {"type": "notification", "item": {"id": "x", "title": "h\u00e9llo"}}
    management(gateway.management_url).post_to_connection(ConnectionId=connection, Data=json.dumps(frame).encode())
    assert json.loads(client.recv(timeout=60)) == frame
    # The stage in the endpoint's path is optional, as on AWS's own domain.
    management(f"http://127.0.0.1:{gateway.port}").post_to_connection(ConnectionId=connection, Data=b"second")
    assert client.recv(timeout=60) == "second"
    # Up to 128 KiB in one message.
    big = "b" * MESSAGE_BYTES
    management(gateway.management_url).post_to_connection(ConnectionId=connection, Data=big.encode())
    assert client.recv(timeout=60) == big


def test_a_message_over_128_kib_is_refused_with_413(
    gateway: WebSocketGateway, opened: tuple[ClientConnection, str, str]
) -> None:
    _, connection, _ = opened
    api = management(gateway.management_url)
    with pytest.raises(api.exceptions.PayloadTooLargeException) as refused:
        api.post_to_connection(ConnectionId=connection, Data=b"x" * (MESSAGE_BYTES + 1))
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_get_connection_describes_it(gateway: WebSocketGateway, opened: tuple[ClientConnection, str, str]) -> None:
    client, connection, _ = opened
    api = management(gateway.management_url)
    first = api.get_connection(ConnectionId=connection)
    assert first["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "probe/1.0"}
    assert first["ConnectedAt"] <= first["LastActiveAt"]
    time.sleep(0.05)
    client.send(json.dumps({"action": "ping"}))
    client.recv(timeout=60)
    assert api.get_connection(ConnectionId=connection)["LastActiveAt"] > first["LastActiveAt"]


def test_delete_connection_closes_it_and_then_it_is_gone(
    gateway: WebSocketGateway, handler: Recorded, opened: tuple[ClientConnection, str, str]
) -> None:
    client, connection, _ = opened
    api = management(gateway.management_url)
    response = api.delete_connection(ConnectionId=connection)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ConnectionClosed) as closed:
        client.recv(timeout=60)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    eventually(lambda: bool(handler.of("$disconnect", connection)))
    assert (
        handler.of("$disconnect", connection)[0]["requestContext"]["disconnectReason"] == "Connection Closed Normally"
    )
    for call in (api.post_to_connection, api.get_connection, api.delete_connection):
        kwargs: dict[str, Any] = {"ConnectionId": connection}
        if call == api.post_to_connection:
            kwargs["Data"] = b"late"
        with pytest.raises(api.exceptions.GoneException) as gone:
            call(**kwargs)
        assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410


def test_an_unknown_connection_is_gone(gateway: WebSocketGateway) -> None:
    api = management(gateway.management_url)
    with pytest.raises(api.exceptions.GoneException):
        api.post_to_connection(ConnectionId="AAAAAAAAAAAAAAA=", Data=b"x")


def test_the_worker_s_poster_delivers_and_maps_410_to_connection_gone(
    gateway: WebSocketGateway, opened: tuple[ClientConnection, str, str]
) -> None:
    client, connection, _ = opened
    poster = ApiGatewayConnectionPoster(management(os.environ["WEBSOCKET_ENDPOINT"]))
    poster.post(connection, b'{"type": "counts", "unseen": 1, "unread": 1, "total": 1}')
    assert json.loads(client.recv(timeout=60))["unseen"] == 1
    client.close()
    eventually(lambda: connection not in gateway.connection_ids())
    with pytest.raises(ConnectionGone):
        poster.post(connection, b"{}")


def test_an_idle_connection_is_closed_with_1001(local_stack: LocalStack) -> None:
    recorded = Recorded()
    idle = WebSocketGateway(recorded, free_port(), idle_seconds=0.3).start()
    try:
        with connect(f"{idle.url}?token={token_for('gw-idle')}", open_timeout=60) as client:
            # From its $connect (recorded before the handshake completed): the connection may be closed as idle
            # before a look at the gateway's open connections would find it.
            (connected,) = [e for e in recorded.events if e["requestContext"]["routeKey"] == "$connect"]
            connection = connected["requestContext"]["connectionId"]
            with pytest.raises(ConnectionClosed) as closed:
                client.recv(timeout=60)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        eventually(lambda: bool(recorded.of("$disconnect", connection)))
    finally:
        idle.stop()


# --- the HTTP gateway: CORS as the HTTP API applies it, and the demo pages -------------------------------------


class Echo:
    """An ApiFunction stand-in that answers every request with a CORS header of its own (which API Gateway drops)."""

    def invoke(self, event: dict[str, Any]) -> Any:
        return {"statusCode": 200, "headers": {"access-control-allow-origin": "https://evil.example"}, "body": "{}"}


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    demo = tmp_path_factory.mktemp("demo")
    (demo / "index.html").write_text("<!doctype html><title>index</title>")
    (demo / "inbox.html").write_text("<!doctype html><title>inbox</title>")
    (demo / "app.js").write_text("console.log('inbox')")
    (demo / ".secret").write_text("hidden")
    (demo.parent / "outside.txt").write_text("outside")
    tpl = template()
    cors = Cors.from_template(
        tpl.http_cors("ApiFunction", {**tpl.parameter_defaults(), "CorsAllowedOrigins": "https://app.example"})
    )
    served = Gateway(Echo(), free_port(), tpl.http_routes("ApiFunction"), cors=cors, static=demo)  # type: ignore[arg-type]
    served.start()
    yield f"http://127.0.0.1:{served.port}", demo
    served.stop()


def fetch(url: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers={k.replace("_", "-"): v for k, v in headers.items()})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def test_a_preflight_is_answered_by_the_gateway_with_the_templates_cors(http: tuple[str, Path]) -> None:
    url, _ = http
    status, headers, body = fetch(
        f"{url}/api/v1/inbox",
        "OPTIONS",
        Origin="https://app.example",
        Access_Control_Request_Method="GET",
        Access_Control_Request_Headers="authorization",
    )
    assert (status, body) == (204, b"")
    assert headers["access-control-allow-origin"] == "https://app.example"
    assert set(headers["access-control-allow-headers"].split(",")) >= {"authorization", "x-api-key", "content-type"}
    assert "GET" in headers["access-control-allow-methods"].split(",")
    assert headers["access-control-max-age"] == "600"
    status, headers, _ = fetch(
        f"{url}/api/v1/inbox", "OPTIONS", Origin="https://other.example", Access_Control_Request_Method="GET"
    )
    assert status == 204 and not [h for h in headers if h.startswith("access-control-")]


def test_answers_carry_the_cors_headers_of_the_template_not_the_functions(http: tuple[str, Path]) -> None:
    url, _ = http
    _, headers, _ = fetch(f"{url}/api/v1/inbox", Origin="https://app.example")
    assert headers["access-control-allow-origin"] == "https://app.example"
    assert headers["access-control-expose-headers"] == "retry-after"
    _, headers, _ = fetch(f"{url}/api/v1/inbox", Origin="https://evil.example")
    assert "access-control-allow-origin" not in headers
    _, headers, _ = fetch(f"{url}/api/v1/inbox")  # no Origin: a server, nothing to add or drop
    assert "access-control-allow-origin" not in headers


def test_the_demo_pages_are_served_with_their_types(http: tuple[str, Path]) -> None:
    url, demo = http
    status, headers, body = fetch(f"{url}/demo/inbox.html")
    assert (status, body) == (200, (demo / "inbox.html").read_bytes())
    assert headers["content-type"] == "text/html; charset=utf-8"
    status, headers, _ = fetch(f"{url}/demo/app.js")
    assert status == 200 and headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert fetch(f"{url}/demo/")[2] == (demo / "index.html").read_bytes()
    status, headers, _ = fetch(f"{url}/demo")
    assert status == 200 and "index" in fetch(f"{url}/demo")[2].decode()  # redirected to /demo/


@pytest.mark.parametrize(
    "path", ["/demo/../outside.txt", "/demo/%2e%2e/outside.txt", "/demo/.secret", "/demo/missing.html", "/demo/..%2f"]
)
def test_nothing_outside_the_demo_directory_is_served(http: tuple[str, Path], path: str) -> None:
    url, _ = http
    status, _, body = fetch(url + path)
    assert status == 404 and b"outside" not in body and b"hidden" not in body


def test_the_demo_pages_are_read_only(http: tuple[str, Path]) -> None:
    url, _ = http
    status, headers, _ = fetch(f"{url}/demo/inbox.html", "POST")
    assert status == 405 and headers["allow"] == "GET, HEAD"
