"""Issue 20: what SES's feedback may leave on a job, against moto server and Tansu, through the real handlers.

No secret-bearing link is stored or shown (a click on a password-reset link, the one-click unsubscribe link), and
feedback stays bounded (1,000 opens of one email, 10,000 with FEEDBACK_OPENS=10000; a history at its cap with
writers racing).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from notify.adapters.dynamodb.api_keys import DynamoApiKeyStore
from notify.adapters.dynamodb.jobs import DynamoJobLedger
from notify.clock import iso, utc_now
from notify.models import Status
from notify.records import Transition
from notify.services.access import hash_key

from local.auth_service import AuthService
from local.events import ses_event, sns_event
from local.invoke import LambdaContext

from .helpers import JobsTransport, call_api, emails_to

pytestmark = pytest.mark.usefixtures("local_stack", "purge_queues", "fresh_services")


def _key(*scopes: str) -> str:
    key = f"feedback-test-{uuid.uuid4().hex}"
    DynamoApiKeyStore(boto3.client("dynamodb"), os.environ["API_KEYS_TABLE"]).put(
        hash_key(key), "feedback test", list(scopes), iso(utc_now())
    )
    return key


def _user(auth: AuthService) -> tuple[str, str]:
    user = f"feedback-{uuid.uuid4().hex[:12]}"
    auth.add_user(user, segments=(), email=f"{user}@example.com", first_name="Ada")
    return user, f"{user}@example.com"


@pytest.fixture
def send_calls() -> Iterator[list[dict[str, Any]]]:
    """Each SendEmail's parameters, as the worker's SES client makes it (moto keeps no configuration set)."""
    from worker.app import services

    calls: list[dict[str, Any]] = []

    def seen(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))

    session = boto3._get_default_session()
    session.events.register("provide-client-params.sesv2.SendEmail", seen, unique_id="feedback-send-calls")
    services.cache_clear()  # a client made from here on carries the hook
    yield calls
    session.events.unregister("provide-client-params.sesv2.SendEmail", unique_id="feedback-send-calls")


def _sent(transport: JobsTransport, event: dict[str, Any]) -> dict[str, Any]:
    """POST the event, hand its job from the transport to WorkerFunction, and return the job's status once SENT."""
    status, accepted = call_api("POST", "/api/v1/events", event)
    assert status == 202, accepted
    (job_id,) = accepted["job_ids"]
    assert transport.deliver([job_id]) == {"sent": 1}
    status, body = call_api("GET", f"/api/v1/notifications/{job_id}")
    assert status == 200 and body["status"] == "SENT", body
    return dict(body)


def _film_email(user: str, film_id: str) -> dict[str, Any]:
    """A new_film event to one user by email: mail that is tracked and carries an unsubscribe link."""
    payload = {"film_id": film_id, "title": "Dune", "release_date": "2026-12-01", "watch_url": "https://x.io/f"}
    return {"event_type": "new_film", "payload": payload, "recipients": {"user_ids": [user]}, "channels": ["email"]}


def _feedback(*events: dict[str, Any]) -> dict[str, Any]:
    """FeedbackFunction's handler with SNS's delivery of these SES events."""
    from feedback.app import lambda_handler

    return lambda_handler(sns_event([json.dumps(e) for e in events]), LambdaContext("FeedbackFunction"))


def _reads(job: dict[str, Any], key: str) -> dict[str, Any]:
    """Everything a key may read about the job: its status, its user's list, its event, the rendered message."""
    out = {}
    for name, path in (
        ("status", f"/api/v1/notifications/{job['job_id']}"),
        ("user", f"/api/v1/users/{job['user_id']}/notifications"),
        ("event", f"/api/v1/events/{job['event_id']}"),
        ("rendered", f"/api/v1/notifications/{job['job_id']}/rendered"),
    ):
        out[name] = call_api("GET", path, key=key)
    return out


def test_a_click_on_a_reset_link_leaves_no_token_anywhere_a_key_reads_the_job(
    auth_service: AuthService, transport: JobsTransport, send_calls: list[dict[str, Any]]
) -> None:
    user, address = _user(auth_service)
    secret = uuid.uuid4().hex
    reset_url = f"https://auth.example.com/reset?token={secret}"
    event = {
        "event_type": "password_reset",
        "payload": {"reset_url": reset_url, "expires_in_minutes": 15},
        "recipients": {"user_ids": [user]},
    }
    job = _sent(transport, event)
    # A Click (from an email sent before account mail had its own configuration set): the link is cut.
    tags = {"job_id": job["job_id"], "event_type": "password_reset"}
    click = {"timestamp": "2026-11-25T12:00:04.000Z", "link": reset_url, "ipAddress": "192.0.2.7", "userAgent": "x"}
    assert _feedback(ses_event("Click", job["provider_message_id"], address, tags, click)) == {
        "outcomes": {"applied": 1}
    }
    reader = _key("notifications:read")  # a support or reporting key
    reads = _reads(job, reader)
    assert [status for status, _ in reads.values()] == [200, 200, 200, 403]  # the message itself: admin only
    admin = _reads(job, _key("admin"))
    del admin["rendered"]  # an admin reads the event's payload, the reset link in it, by design (docs/API.md)
    for name, (_, body) in [*reads.items(), *admin.items()]:
        text = json.dumps(body)
        assert "token=" not in text and secret not in text, f"{name}: {text}"
    assert reads["status"][1]["clicks"] == 1
    # Account mail goes through the configuration set that tracks nothing: SES wraps none of its links.
    (send,) = [c for c in send_calls if c["Destination"]["ToAddresses"] == [address]]
    assert send["ConfigurationSetName"] == os.environ.get("SES_UNTRACKED_CONFIGURATION_SET")
    assert send["ConfigurationSetName"] != os.environ["SES_CONFIGURATION_SET"]


def test_the_unsubscribe_link_is_not_in_the_history_only_that_the_email_carried_one(
    auth_service: AuthService, transport: JobsTransport, moto_endpoint: str
) -> None:
    user, address = _user(auth_service)
    job = _sent(transport, _film_email(user, "f-9"))
    (email,) = emails_to(moto_endpoint, address)
    token = re.search(r"/u/([A-Za-z0-9_.-]+)", email["body"])
    assert token is not None, email["body"]  # the email carries it (body and List-Unsubscribe header)
    (sent,) = [h for h in job["history"] if h["status"] == "SENT"]
    assert sent["detail"]["list_unsubscribe"] is True
    _, listed = call_api("GET", f"/api/v1/users/{user}/notifications", key=_key("notifications:read"))
    # The console's message as rendered (admin) shows a sample link, never the one the email carried.
    status, rendered = call_api("GET", f"/api/v1/notifications/{job['job_id']}/rendered", key=_key("admin"))
    assert status == 200 and "/u/" in json.dumps(rendered)
    for body in (job, listed, rendered):
        assert token.group(1) not in json.dumps(body)


def _item(stack_env: dict[str, str], job_id: str) -> dict[str, Any]:
    return boto3.client("dynamodb").get_item(
        TableName=stack_env["NOTIFICATIONS_TABLE"], Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}}
    )["Item"]


def _item_bytes(item: dict[str, Any]) -> int:
    """An upper bound of the item's size as DynamoDB counts it (names and values, in UTF-8)."""
    return len(json.dumps(item, separators=(",", ":")).encode())


# How many opens the test applies: 1,000 in `make test` (about 15 s: each costs two round trips to moto), and the
# issue's 10,000 with FEEDBACK_OPENS=10000 (about 150 s on 2 cores; 7 Dec 2026: 2,252 bytes after 10,000). What
# makes 1,000 enough: after the first open the item does not grow (the test checks that from open 100 to the end).
OPENS = int(os.environ.get("FEEDBACK_OPENS", "1000"))


@pytest.mark.timeout(240 + OPENS // 40)
@pytest.mark.parametrize("transport", ["kafka"], indirect=True)  # the feedback's bounds: one transport is enough
def test_many_opens_leave_the_item_under_64_kb_not_growing_and_every_later_write_succeeding(
    auth_service: AuthService, stack_env: dict[str, str], transport: JobsTransport
) -> None:
    user, address = _user(auth_service)
    job = _sent(transport, _film_email(user, "f-8"))
    tags = {"job_id": job["job_id"], "event_type": "new_film"}
    message_id = job["provider_message_id"]

    def opened(n: int) -> dict[str, Any]:  # a recipient reloading the email: each pixel load is a new Open
        at = f"2026-11-25T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}.{n % 1000:03d}Z"
        section = {"timestamp": at, "ipAddress": "192.0.2.1", "userAgent": "Mail/1.0"}
        return ses_event("Open", message_id, address, tags, section)

    started = time.monotonic()
    # The first 100 as SNS delivers them, one record an invocation of the handler; the rest straight to the
    # function's FeedbackService (its composition root: the real DynamoDB adapter, on moto server), four at a time
    # as concurrent invocations would: a round trip to moto costs milliseconds, and the handler adds only parsing.
    for n in range(100):
        assert _feedback(opened(n)) == {"outcomes": {"applied": 1}}, f"open {n}"
    after_100 = _item_bytes(_item(stack_env, job["job_id"]))
    from feedback.app import services

    last_open = OPENS - 1
    with ThreadPoolExecutor(4) as pool:
        for first in range(100, last_open, 1_000):
            last = min(first + 1_000, last_open)
            outcomes = Counter(a.value for a in pool.map(services().apply, map(opened, range(first, last))))
            assert outcomes == {"applied": last - first}, f"opens {first}-{last - 1}: {outcomes}"
            size = _item_bytes(_item(stack_env, job["job_id"]))
            assert size < 64 * 1024, f"after {last} opens the job's item is {size} bytes"
    assert _feedback(opened(last_open)) == {"outcomes": {"applied": 1}}
    assert _feedback(opened(last_open)) == {"outcomes": {"duplicate": 1}}  # SNS delivering it again: counted once
    elapsed = time.monotonic() - started
    size = _item_bytes(_item(stack_env, job["job_id"]))
    print(f"{OPENS:,} opens applied in {elapsed:.1f} s; the job's item is {size} bytes ({after_100} after 100)")
    assert size < 64 * 1024
    # Only the counter's digits may grow: an open adds no entry and no id to the item.
    assert size - after_100 < 64, f"the item grew from {after_100} to {size} bytes between open 100 and {OPENS}"
    # Later writes still succeed: delivery, a click, a complaint, each read back.
    delivered = ses_event("Delivery", message_id, address, tags, {"timestamp": "2026-11-25T23:59:58.000Z"})
    click = ses_event(
        "Click", message_id, address, tags, {"timestamp": "2026-11-25T23:59:59.000Z", "link": "https://x.io/f"}
    )
    complaint = {"timestamp": "2026-11-26T00:00:00.000Z", "feedbackId": f"c-{job['job_id']}"}
    complaint["complainedRecipients"] = [{"emailAddress": address}]  # type: ignore[assignment]
    result = _feedback(delivered, click, ses_event("Complaint", message_id, address, tags, complaint))
    assert result == {"outcomes": {"applied": 3}}
    status, body = call_api("GET", f"/api/v1/notifications/{job['job_id']}")
    assert status == 200 and body["status"] == "COMPLAINED"
    assert (body["opens"], body["clicks"]) == (OPENS, 1)
    feedback = [h["detail"]["feedback"] for h in body["history"] if "feedback" in (h.get("detail") or {})]
    assert feedback == ["Open", "Delivery", "Click", "Complaint"]


CAP = 100  # a job's history holds at most this many entries (notify.records.MAX_HISTORY)


def test_a_history_at_its_cap_counts_what_it_leaves_out_with_writers_racing(stack_env: dict[str, str]) -> None:
    store = DynamoJobLedger(boto3.client("dynamodb"), stack_env["NOTIFICATIONS_TABLE"])
    job_id = str(uuid.uuid4())
    boto3.client("dynamodb").put_item(
        TableName=stack_env["NOTIFICATIONS_TABLE"],
        Item={
            "pk": {"S": f"JOB#{job_id}"},
            "sk": {"S": "JOB"},
            "job_id": {"S": job_id},
            "event_id": {"S": str(uuid.uuid4())},
            "event_type": {"S": "new_film"},
            "user_id": {"S": "u"},
            "channel": {"S": "email"},
            "status": {"S": "SENT"},
            "created_at": {"S": "2026-11-25T12:00:00.000Z"},
            "updated_at": {"S": "2026-11-25T12:00:00.000Z"},
            "history": {"L": []},
        },
    )
    writers, each = 6, 30  # 180 entries wanted, racing
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            for n in range(each):
                entry = Transition(Status.SENT, f"2026-11-25T12:{w:02d}:{n:02d}.000Z", 0, detail={"feedback": "x"})
                assert store.record_feedback(job_id, f"DeliveryDelay:{w}:{n}", Status.SENT, Status.SENT, entry)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    record = store.get_job(job_id)
    assert record is not None
    assert len(record.history) == CAP
    assert getattr(record, "history_omitted", None) == writers * each - CAP
