"""Status webhooks end to end (issue 24): the demo receiver registered through the API for every type gets an email's
notification.sent and notification.delivered (SES's feedback, through the feedback function), an in-app
notification's notification.sent and, once the user reads it, inbox.read, each signed as Standard Webhooks say
(the receiver verifies every one with the standardwebhooks library)."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from typing import Any

import pytest

from local.launch import StackProcess

pytestmark = pytest.mark.e2e
LOCAL_CACHE_SECONDS = 1  # the local stack's PreferencesCacheSeconds (local/stack.py), hence WEBHOOK_CACHE_SECONDS
CEILING = 120  # a ceiling for a loaded machine: each wait returns as soon as what it waits for has arrived


def _received(stack: StackProcess) -> dict[str, Any]:
    with urllib.request.urlopen(f"{stack.receiver}/messages.json", timeout=10) as resp:
        return dict(json.loads(resp.read()))


def _wait_for(stack: StackProcess, wanted: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """The receiver's messages once every (type, job id) of ``wanted`` is among them."""
    deadline = time.monotonic() + CEILING
    messages: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        messages = _received(stack)["messages"]
        seen = {(m["type"], (m["data"] or {}).get("job_id")) for m in messages}
        if wanted <= seen:
            return messages
        time.sleep(0.5)
    raise AssertionError(f"missing {wanted - seen}; received {[(m['type'], m['id']) for m in messages]}")


def test_the_demo_receiver_gets_signed_status_changes_of_an_email_and_an_in_app_notification(
    live_stack: StackProcess,
) -> None:
    status, hook = live_stack.call("POST", "/api/v1/webhooks", {"url": f"{live_stack.receiver}/hooks", "events": ["*"]})
    assert status == 201, hook
    assert hook["secret"].startswith("whsec_") and hook["status"] == "enabled"
    # A new endpoint applies to changes from at most WEBHOOK_CACHE_SECONDS after (1 s on the local stack): the
    # functions of this shared stack may have read the endpoints, none yet, just before.
    time.sleep(LOCAL_CACHE_SECONDS + 0.5)
    try:
        user = "demo-user-9"
        event = {
            "event_type": "review_liked",
            "payload": {
                "review_id": "r-" + uuid.uuid4().hex[:8],
                "movie_id": "m-1",
                "movie_title": "Webhooks",
                "liked_by": "Grace",
                "likes_count": 2,
            },
            "recipients": {"user_ids": [user]},
            "channels": ["email", "websocket"],
        }
        status, accepted = live_stack.call("POST", "/api/v1/events", event)
        assert status == 202, accepted
        status, detail = live_stack.call("GET", f"/api/v1/events/{accepted['event_id']}")
        jobs = {j["channel"]: j["job_id"] for j in detail["jobs"]}
        email, in_app = jobs["email"], jobs["websocket"]
        _wait_for(
            live_stack,
            {("notification.sent", email), ("notification.delivered", email), ("notification.sent", in_app)},
        )

        status, token = live_stack.call("POST", f"/api/v1/users/{user}/tokens")
        assert status == 201, token
        bearer = f"Bearer {token['token']}"
        status, inbox = live_stack.call("GET", "/api/v1/inbox", key=None, authorization=bearer)
        (item,) = [i for i in inbox["items"] if i["job_id"] == in_app]
        status, _ = live_stack.call("POST", f"/api/v1/inbox/{item['id']}/read", key=None, authorization=bearer)
        assert status == 200
        messages = _wait_for(live_stack, {("inbox.read", in_app)})

        ours = [m for m in messages if (m["data"] or {}).get("job_id") in (email, in_app)]
        assert ours and all(m["valid"] for m in ours), [m for m in ours if not m["valid"]]
        sent = next(m for m in ours if m["type"] == "notification.sent" and m["data"]["job_id"] == email)
        assert sent["data"]["status"] == "SENT" and sent["data"]["provider_message_id"]
        assert "payload" not in sent["data"] and sent["id"].startswith("msg_")
        status, log = live_stack.call("GET", f"/api/v1/webhooks/{hook['webhook_id']}/deliveries?limit=50")
        assert status == 200 and any(d["outcome"] == "delivered" for d in log["items"]), log
    finally:
        live_stack.call("DELETE", f"/api/v1/webhooks/{hook['webhook_id']}")
