"""At most N live connections per user, through the local WebSocket gateway with real clients (the websockets
library) in front of WebSocketFunction's real handler and moto: with MAX_CONNECTIONS_PER_USER=2, a third connect
closes the first socket as API Gateway's DeleteConnection does (close code 1000) and the store holds two."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

import pytest
from notify.clock import iso, utc_now
from notify.records import Connection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State
from websockets.sync.client import ClientConnection, connect

from local.ws_gateway import WebSocketGateway, wait_connected

from .helpers import Recorded, connections, eventually, token_for

LIMIT = 2


@pytest.fixture
def limit_of_two(handler: Recorded) -> Iterator[None]:
    """WebSocketFunction built with MAX_CONNECTIONS_PER_USER=2 (the template's default is 10).

    The environment changes between invocations only: the previous test's $disconnects may still be running, and
    one that read the old environment would otherwise cache its services after the clear (limit 10 for this test).
    """
    from websocket import app

    saved = os.environ.get("MAX_CONNECTIONS_PER_USER")
    with handler.idle():
        os.environ["MAX_CONNECTIONS_PER_USER"] = str(LIMIT)
        app.services.cache_clear()
    yield
    with handler.idle():
        if saved is None:
            os.environ.pop("MAX_CONNECTIONS_PER_USER", None)
        else:
            os.environ["MAX_CONNECTIONS_PER_USER"] = saved
        app.services.cache_clear()


def _user() -> str:
    return f"limit-user-{uuid.uuid4().hex[:10]}"


def _open(gateway: WebSocketGateway, user: str, stack: ExitStack) -> tuple[ClientConnection, str]:
    """A connection of ``user``, once open: (client, its connection id)."""
    before = set(gateway.connection_ids())
    client = stack.enter_context(connect(f"{gateway.url}?token={token_for(user)}", open_timeout=60))
    return client, wait_connected(gateway, before)


def _recorded(user: str) -> set[str]:
    return {c.connection_id for c in connections().records_of(user, 100)}


def _pong(client: ClientConnection) -> bool:
    client.send(json.dumps({"action": "ping"}))
    return bool(json.loads(client.recv(timeout=60)) == {"type": "pong"})


@pytest.mark.usefixtures("limit_of_two")
def test_the_third_connection_of_a_user_closes_the_first_with_1000(
    gateway: WebSocketGateway,
    handler: Recorded,
) -> None:
    user = _user()
    with ExitStack() as stack:
        first, c1 = _open(gateway, user, stack)
        second, c2 = _open(gateway, user, stack)
        other, theirs = _open(gateway, _user(), stack)  # another user's connections do not count
        assert _recorded(user) == {c1, c2}
        third, c3 = _open(gateway, user, stack)
        # First the reason, so that a client does not reconnect and push out the newer connection in turn.
        assert json.loads(first.recv(timeout=60)) == {"type": "closed", "reason": "connection_limit"}
        with pytest.raises(ConnectionClosed) as closed:
            first.recv(timeout=60)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000  # API Gateway's DeleteConnection
        eventually(lambda: bool(handler.of("$disconnect", c1)))
        assert handler.of("$disconnect", c1)[0]["requestContext"]["disconnectStatusCode"] == 1000
        assert _recorded(user) == {c2, c3}
        assert _pong(second) and _pong(third) and _pong(other)
        assert c1 not in gateway.connection_ids() and theirs in gateway.connection_ids()


@pytest.mark.usefixtures("limit_of_two")
def test_a_record_whose_disconnect_was_lost_is_forgotten_on_its_410(gateway: WebSocketGateway) -> None:
    user = _user()
    an_hour_ago = utc_now() - timedelta(hours=1)
    stale = f"stale-{uuid.uuid4().hex[:10]}="  # recorded, but API Gateway has no such connection any more
    connections().add(Connection(stale, user, iso(an_hour_ago), iso(an_hour_ago + timedelta(hours=2))))
    with ExitStack() as stack:
        first, c1 = _open(gateway, user, stack)  # room for it and the stale record: nothing is closed
        assert _recorded(user) == {stale, c1}
        second, c2 = _open(gateway, user, stack)  # one too many: the oldest, the stale one, answers 410
        # Its record goes once the 410 comes back, which a loaded machine may see after the socket opens.
        eventually(lambda: _recorded(user) == {c1, c2})
        assert _pong(first) and _pong(second)


@pytest.mark.usefixtures("limit_of_two")
def test_connects_at_once_end_at_the_limit_once_the_next_connect_has_trimmed(
    gateway: WebSocketGateway,
    handler: Recorded,
) -> None:
    user = _user()
    token = token_for(user)
    with ExitStack() as stack, ThreadPoolExecutor(max_workers=5) as pool:
        opening = [pool.submit(connect, f"{gateway.url}?token={token}", open_timeout=60) for _ in range(5)]
        clients = [stack.enter_context(future.result(timeout=120)) for future in opening]

        def open_ids() -> set[str]:
            mine = {e["requestContext"]["connectionId"] for e in handler.events if _is_connect_of(e, token)}
            return mine & set(gateway.connection_ids())

        # A connect may have closed a connection still completing its handshake (410): that record is kept, and
        # the next connect closes it. Connections stay over the limit until then, never more. The next connect
        # must come once the gateway has every open one on record (a loaded machine finishes handshakes late).
        eventually(lambda: len(open_ids()) == sum(c.protocol.state is State.OPEN for c in clients))
        clients.append(stack.enter_context(connect(f"{gateway.url}?token={token}", open_timeout=60)))

        eventually(lambda: sum(c.protocol.state is State.OPEN for c in clients) == LIMIT and len(open_ids()) == LIMIT)
        assert _recorded(user) == open_ids()
        assert clients[-1].protocol.state is State.OPEN  # the newest is never the one closed
        for client in clients:
            if client.protocol.state is State.OPEN:
                assert _pong(client)


def _is_connect_of(event: dict[str, Any], token: str) -> bool:
    query = event.get("queryStringParameters") or {}
    return bool(event["requestContext"]["routeKey"] == "$connect" and query.get("token") == token)
