"""The in-app channel end to end: a real WebSocket client on the local stack's gateway, events sent over HTTP."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from local.launch import StackProcess

pytestmark = pytest.mark.e2e
# Ceilings, not expected times: each wait returns as soon as what it waits for happens, so a loaded machine is
# given time and a fast one loses none. How fast the frame arrives is `make bench`'s to measure (bench/inapp.py).
CEILING = 60


def _token(stack: StackProcess, user: str) -> str:
    status, body = stack.call("POST", f"/api/v1/users/{user}/tokens")
    assert status == 201, body
    return str(body["token"])


def _send_review_liked(stack: StackProcess, user: str, title: str, channels: list[str] | None = None) -> str:
    event: dict[str, Any] = {
        "event_type": "review_liked",
        "payload": {
            "review_id": "r-" + uuid.uuid4().hex[:8],
            "movie_id": "m-1",
            "movie_title": title,
            "liked_by": "Grace",
            "likes_count": 2,
        },
        "recipients": {"user_ids": [user]},
    }
    if channels is not None:
        event["channels"] = channels
    status, accepted = stack.call("POST", "/api/v1/events", event)
    assert status == 202, accepted
    status, detail = stack.call("GET", f"/api/v1/events/{accepted['event_id']}")
    assert status == 200, detail
    (job,) = [j for j in detail["jobs"] if j["channel"] == "websocket"]
    return str(job["job_id"])


def _inbox(stack: StackProcess, token: str, path: str = "/api/v1/inbox", method: str = "GET") -> tuple[int, Any]:
    return stack.call(method, path, key=None, authorization=f"Bearer {token}")


def _connect(url: str) -> Any:
    """A WebSocket client given a loaded machine's time to open, and no keepalive pings of its own.

    The tests make blocking HTTP calls between frames, which hold up the client's event loop; a ping sent just
    before one could miss its pong's deadline and close a healthy connection (API Gateway pings no one either).
    """
    return websockets.connect(url, open_timeout=CEILING, ping_interval=None)


async def _frame(socket: Any, kind: str, timeout: float) -> dict[str, Any]:
    """The next frame of ``kind`` (other kinds are skipped) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {kind} frame within {timeout} s")
        frame = json.loads(await asyncio.wait_for(socket.recv(), left))
        if frame.get("type") == kind:
            return dict(frame)


def _wait_sent(stack: StackProcess, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: Any = None
    while time.monotonic() < deadline:
        status, body = stack.call("GET", f"/api/v1/notifications/{job_id}")
        if status == 200 and body["status"] in ("SENT", "FAILED", "SKIPPED", "EXPIRED"):
            return dict(body)
        time.sleep(0.2)
    raise AssertionError(f"{job_id} did not end: {body}")


def test_a_connected_user_gets_the_frame_reads_it_and_the_counts_follow(live_stack: StackProcess) -> None:
    user = "demo-user-5"
    token = _token(live_stack, user)
    # A cold stack's first job waits for the Kafka consumer to join its group: warm the path first.
    _wait_sent(live_stack, _send_review_liked(live_stack, "demo-user-4", "warm-up", channels=["websocket"]))

    async def scenario() -> None:
        async with _connect(f"{live_stack.ws}/?token={token}") as socket:
            title = f"Arrival {uuid.uuid4().hex[:6]}"
            job_id = _send_review_liked(live_stack, user, title)
            # Pushed, not polled: the frame comes on its own (its latency is measured by bench/inapp.py, not here).
            frame = await _frame(socket, "notification", timeout=CEILING)
            item = frame["item"]
            assert item["job_id"] == job_id and title in item["body"] and item["read_at"] is None
            assert frame["counts"]["unread"] >= 1

            status, page = _inbox(live_stack, token, "/api/v1/inbox?status=unread")
            assert status == 200
            assert item["id"] in [i["id"] for i in page["items"]]
            before = page["counts"]

            status, marked = _inbox(live_stack, token, f"/api/v1/inbox/{item['id']}/read", "POST")
            assert status == 200 and marked["item"]["read_at"] is not None
            assert marked["counts"]["unread"] == before["unread"] - 1
            counts = await _frame(socket, "counts", timeout=CEILING)
            assert counts["unread"] == before["unread"] - 1

            job = _wait_sent(live_stack, job_id)
            assert job["status"] == "SENT"
            sent_entry = job["history"][-1]["detail"]
            assert sent_entry["inbox_item_id"] == item["id"] and sent_entry["connections_reached"] == 1

    asyncio.run(scenario())


def test_a_forged_or_missing_token_is_refused_at_the_handshake(live_stack: StackProcess) -> None:
    token = _token(live_stack, "demo-user-6")
    body, _, signature = token.partition(".")
    forged = body + "." + ("A" if signature[0] != "A" else "B") + signature[1:]

    async def refused(url: str) -> int:
        with pytest.raises(InvalidStatus) as caught:
            async with _connect(url):
                pass
        return caught.value.response.status_code

    assert asyncio.run(refused(f"{live_stack.ws}/?token={forged}")) == 401
    assert asyncio.run(refused(f"{live_stack.ws}/")) == 401
    status, _ = _inbox(live_stack, forged)
    assert status == 401


def test_a_user_without_a_connection_finds_the_item_waiting_in_the_inbox(live_stack: StackProcess) -> None:
    user = "demo-user-8"
    token = _token(live_stack, user)

    async def connect_and_leave() -> None:
        async with _connect(f"{live_stack.ws}/?token={token}") as socket:
            await socket.send(json.dumps({"action": "ping"}))
            assert (await _frame(socket, "pong", timeout=CEILING))["type"] == "pong"

    asyncio.run(connect_and_leave())  # connected once, closed since: $disconnect forgot the connection
    title = f"Offline {uuid.uuid4().hex[:6]}"
    job_id = _send_review_liked(live_stack, user, title, channels=["websocket"])
    job = _wait_sent(live_stack, job_id)
    assert job["status"] == "SENT"
    assert job["history"][-1]["detail"]["connections_reached"] == 0
    status, page = _inbox(live_stack, token)
    assert status == 200
    (item,) = [i for i in page["items"] if i["job_id"] == job_id]
    assert title in item["body"] and item["read_at"] is None and item["seen_at"] is None
    status, dlq = live_stack.call("GET", "/api/v1/dlq?limit=50")
    assert status == 200 and job_id not in json.dumps(dlq)
