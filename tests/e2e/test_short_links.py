"""Short links end to end on the local stack (issue 21, item 1): a push (the SNS publish moto stored) and an in-app
notification (the inbox item) carry short links; ``GET /l/{code}`` through the local gateway redirects to the target;
three clicks leave one ``CLICKED`` entry and a counter of 3; ``HEAD`` does not count; an unknown code is a 404."""

from __future__ import annotations

import http.client
import json
import re
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest

from local.launch import StackProcess

pytestmark = pytest.mark.e2e
CEILING = 120  # seconds: a ceiling for a loaded machine, not an expected time
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
SHORT = re.compile(r"https?://[^\s/]+/l/[A-Za-z0-9_-]{16}")


def _until(check: Any, what: str) -> Any:
    deadline = time.monotonic() + CEILING
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"no {what} within {CEILING} s"
        time.sleep(0.3)


def _open(url: str, method: str = "GET", agent: str = CHROME) -> http.client.HTTPResponse:
    """One request to a short link, its redirect not followed (the target is not on this machine)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    connection.request(method, parts.path, headers={"User-Agent": agent})
    answer = connection.getresponse()
    answer.read()
    connection.close()
    return answer


def test_push_and_in_app_carry_short_links_that_redirect_and_count_clicked_once(live_stack: StackProcess) -> None:
    endpoint = live_stack.push_endpoint()
    user = f"e2e-links-{uuid.uuid4().hex[:8]}"
    watch = f"https://example.com/films/{uuid.uuid4().hex[:8]}?from=app"
    status, accepted = live_stack.call(
        "POST",
        "/api/v1/events",
        {
            "event_type": "new_film",
            "payload": {"film_id": "f-1", "title": "Short Cuts", "release_date": "2026-12-01", "watch_url": watch},
            "recipients": {"users": [{"user_id": user, "push_endpoints": [endpoint]}]},
            "channels": ["push", "websocket"],
        },
    )
    assert status == 202, accepted
    status, event = live_stack.call("GET", f"/api/v1/events/{accepted['event_id']}")
    jobs = {j["channel"]: j["job_id"] for j in event["jobs"]}
    push_job, inapp_job = (
        live_stack.wait_status(jobs["push"], "SENT"),
        live_stack.wait_status(jobs["websocket"], "SENT"),
    )

    # The push as SNS took it: the short link in its text, not the URL.
    (push,) = _until(lambda: live_stack.pushes(endpoint), "push in moto")
    message = json.loads(push["message"])
    pushed = SHORT.search(json.loads(message["GCM"])["notification"]["body"])
    assert pushed is not None and watch not in message["default"], message
    # The in-app item as the user's inbox shows it.
    status, token = live_stack.call("POST", f"/api/v1/users/{user}/tokens")
    assert status == 201, token
    status, inbox = live_stack.call("GET", "/api/v1/inbox", key=None, authorization=f"Bearer {token['token']}")
    assert status == 200, inbox
    (item,) = inbox["items"]
    in_app = SHORT.search(item["body"])
    assert in_app is not None and in_app.group(0) != pushed.group(0), item  # one code per job

    link = pushed.group(0)
    head = _open(link, "HEAD")
    assert (head.status, head.getheader("Location")) == (302, watch)
    for _ in range(3):
        answer = _open(link)
        assert (answer.status, answer.getheader("Location")) == (302, watch)
        assert answer.getheader("Referrer-Policy") == "no-referrer" and answer.getheader("Cache-Control") == "no-store"
    job = live_stack.wait_status(push_job["job_id"], "SENT")
    clicked = [h for h in job["history"] if (h.get("detail") or {}).get("feedback") == "CLICKED"]
    assert len(clicked) == 1 and job["clicks"] == 3, job  # HEAD redirected, not counted

    assert _open(in_app.group(0)).getheader("Location") == watch
    assert live_stack.wait_status(inapp_job["job_id"], "SENT")["clicks"] == 1

    missing = _open(link[:-16] + "NoSuchCode000000")
    assert missing.status == 404 and missing.getheader("Content-Type", "").startswith("text/html")
    assert "frame-ancestors 'none'" in missing.getheader("Content-Security-Policy", "")
