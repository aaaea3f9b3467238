"""The demo inbox page in headless Chromium (Debian's package, driven by Playwright): live items, read, badges."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from local.launch import StackProcess

from .browser import chromium, new_context

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.mark.timeout(420)  # 60 s to connect, 120 s for the item, the page's 30 s waits
def test_the_demo_inbox_shows_a_new_item_live_and_marks_it_read(live_stack: StackProcess, browser: Any) -> None:
    from playwright.sync_api import expect

    user = "demo-user-7"
    context = new_context(browser)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_stack.api}/demo/inbox.html?ws={live_stack.ws}/")
    page.get_by_label("User id").fill(user)
    page.get_by_role("button", name="Connect").click()
    expect(page.locator("#connection")).to_have_text(f"Live as {user}", timeout=60_000)
    unread_before = int(page.locator("#unread-count").inner_text())

    title = f"Solaris {uuid.uuid4().hex[:6]}"
    status, _ = live_stack.call(
        "POST",
        "/api/v1/events",
        {
            "event_type": "review_liked",
            "payload": {
                "review_id": "r-browser",
                "movie_id": "m-2",
                "movie_title": title,
                "liked_by": "Stanisław",
                "likes_count": 1,
            },
            "recipients": {"user_ids": [user]},
            "channels": ["websocket"],
        },
    )
    assert status == 202
    item = page.locator("#items li", has_text=title)
    # Pushed over the WebSocket: no reload. A ceiling for a fresh stack, whose first job waits for the worker's
    # Kafka consumer to join its group (test_inbox.py warms that path; this test may run alone).
    expect(item).to_be_visible(timeout=120_000)
    expect(item).to_have_class("unread")
    expect(page.locator("#unread-count")).to_have_text(str(unread_before + 1))

    item.get_by_role("button", name="Mark read").click()
    expect(item).to_have_class("read")
    expect(page.locator("#unread-count")).to_have_text(str(unread_before))
    expect(page.locator("#unread-badge")).to_have_text(str(unread_before))
    assert errors == []
    context.close()


@pytest.mark.timeout(300)
def test_a_page_pushed_out_by_the_users_newer_connections_does_not_reconnect(
    live_stack: StackProcess, browser: Any
) -> None:
    """Two tabs over MaxConnectionsPerUser must not take turns: the page told it was replaced stays closed."""
    from playwright.sync_api import expect
    from websockets.sync.client import connect

    user = f"replaced-{uuid.uuid4().hex[:8]}"
    context = new_context(browser)
    page = context.new_page()
    page.goto(f"{live_stack.api}/demo/inbox.html?ws={live_stack.ws}/")
    page.get_by_label("User id").fill(user)
    page.get_by_role("button", name="Connect").click()
    expect(page.locator("#connection")).to_have_text(f"Live as {user}", timeout=60_000)

    status, minted = live_stack.call("POST", f"/dev/users/{user}/tokens", {}, key=None)
    assert status == 201, minted
    limit = 10  # the template's MaxConnectionsPerUser default, which the shared stack keeps
    clients = [connect(f"{live_stack.ws}/?token={minted['token']}", open_timeout=60) for _ in range(limit)]
    try:
        closed = "Closed: opened in another tab or device. Connect to take it back."
        expect(page.locator("#connection")).to_have_text(closed, timeout=60_000)
        # Its own reconnect would start within 0.5 s (the page's first backoff) and push out a newer one.
        page.wait_for_timeout(3_000)
        expect(page.locator("#connection")).to_have_text(closed)
        for client in clients:  # all still open: nothing pushed them out
            client.send('{"action": "ping"}')
            assert json.loads(client.recv(timeout=30)) == {"type": "pong"}
    finally:
        for client in clients:
            client.close()
        context.close()
