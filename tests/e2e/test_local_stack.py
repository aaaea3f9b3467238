"""The local stack as a black box: `python -m local` in a subprocess, driven over HTTP as a user would.

The end-to-end slice (an accepted event ending in its final status: one email, a batch of every channel and a
failure, a segment's fan-out, a campaign's run) runs in both transports (issue 25): on this module's Kafka stack,
and on the session's TRANSPORT=sqs stack (tests/e2e/conftest.py), each test once per stack through
``slice_stack``, the campaign on both at once. The rest is of one stack: Kafka's, whose poison test writes to the
topic, and whose last test stops it."""

from __future__ import annotations

import base64
import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Optional

import pytest

from local.cfn import ROOT
from local.emails import sent_emails
from local.launch import StackProcess, start

from .jobs import new_film_emails
from .waits import poll

pytestmark = pytest.mark.e2e
# Every wait below is a ceiling that returns as soon as its condition holds: a loaded machine gets the time, a fast
# one loses none. A test whose ceilings add up past pytest's 300 s carries its own timeout mark, above their sum,
# so a slow run fails with the test's own message rather than pytest-timeout's.


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    """The module's own stack (its last test stops it), away from a `make local` of the developer's; 240 s: a
    ceiling for its start on a loaded machine."""
    launched = start(tmp_path_factory.mktemp("e2e"), timeout=240, SCHEDULE_SECONDS="5")
    yield launched
    launched.stop()


@pytest.fixture(params=["kafka", "sqs"])
def slice_stack(request: pytest.FixtureRequest) -> StackProcess:
    """The slice's tests run on each transport's stack in turn: this module's (Kafka), then the session's sqs one."""
    found: StackProcess = request.getfixturevalue("stack" if request.param == "kafka" else "sqs_stack")
    assert found.transport == request.param
    return found


@pytest.mark.timeout(600)  # each stack may start in this test's time (240 s), then two waits of 120 s
def test_a_user_registered_event_is_emailed_and_its_status_is_sent(slice_stack: StackProcess) -> None:
    stack = slice_stack
    status, accepted = stack.call(
        "POST",
        "/api/v1/events",
        {
            "event_type": "user_registered",
            "payload": {"confirmation_url": "https://example.com/confirm/e2e", "first_name": "Ada"},
            "recipients": {"user_ids": ["demo-user-1"]},
        },
    )
    assert status == 202 and accepted["status"] == "accepted"
    (job_id,) = accepted["job_ids"]
    job = stack.wait_status(job_id, "SENT")
    statuses = [h["status"] for h in job["history"]]
    sent = statuses.index("SENT")
    # Accepted, taken, sent once. A loaded machine may see an attempt fail for a passing reason (the Auth call
    # timing out, say): then RETRYING and another attempt come between, and the last attempt is the one that sent.
    assert statuses[0] == "ACCEPTED" and statuses[sent - 2 : sent] == ["PROCESSING", "SENDING"], statuses
    assert set(statuses[1:sent]) <= {"PROCESSING", "SENDING", "RETRYING", "SCHEDULED"}, statuses
    assert statuses.count("SENT") == 1, statuses
    delivered = stack.wait_status(job_id, "DELIVERED")  # SES's Delivery event, through the simulator
    assert delivered["history"][-1]["detail"]["feedback"] == "Delivery"
    emails = stack.emails("https://example.com/confirm/e2e")
    assert len(emails) == 1
    assert emails[0]["destinations"]["ToAddresses"] == ["demo-user-1@example.com"]
    assert emails[0]["subject"] == "Welcome, Ada! Please confirm your email"
    status, history = stack.call("GET", "/api/v1/users/demo-user-1/notifications")
    assert status == 200 and job_id in [item["job_id"] for item in history["items"]]


def test_a_user_registered_event_without_the_optional_first_name_is_sent(stack: StackProcess) -> None:
    status, accepted = stack.call(
        "POST",
        "/api/v1/events",
        {
            "event_type": "user_registered",
            "payload": {"confirmation_url": "https://example.com/confirm/no-name"},
            "recipients": {"user_ids": ["demo-user-2"]},
        },
    )
    assert status == 202
    job = stack.wait_status(accepted["job_ids"][0], "SENT")
    assert job["last_error"] is None


# One ceiling of 120 s for the four jobs, 60 s for the letter, and its stack's start (240 s): run alone or first, the
# test starts it (the session's sqs_stack, or this module's).
@pytest.mark.timeout(540)
def test_a_batch_of_an_email_a_push_an_in_app_and_an_unknown_users_event_ends_each_in_its_final_status(
    slice_stack: StackProcess,
) -> None:
    stack = slice_stack
    tag = uuid.uuid4().hex[:8]
    user, address, endpoint = f"batch-{tag}", f"batch-{tag}@example.com", stack.push_endpoint()
    like = {"review_id": f"r-{tag}", "movie_id": "m-1", "movie_title": "Dune", "liked_by": "Grace", "likes_count": 2}
    signup = {
        "event_type": "user_registered",
        "payload": {"confirmation_url": f"https://example.com/confirm/{tag}"},
        "channels": ["email"],
    }
    events = [
        {**signup, "recipients": {"users": [{"user_id": user, "email": address}]}},
        {
            "event_type": "review_liked",
            "payload": like,
            "recipients": {"users": [{"user_id": user, "push_endpoints": [endpoint]}]},
            "channels": ["push"],
        },
        {
            "event_type": "review_liked",
            "payload": like,
            "recipients": {"users": [{"user_id": user}]},  # inline: the Auth service is not asked
            "channels": ["websocket"],
        },
        # The Auth service does not know this user: a permanent failure, with its letter in the DLQ.
        {**signup, "recipients": {"user_ids": [f"nobody-{tag}"]}},
    ]
    status, answer = stack.call("POST", "/api/v1/events:batch", {"events": events})
    assert status == 207 and [r["status"] for r in answer["results"]] == [202] * len(events), answer
    email, push, in_app, unknown = (r["job_ids"] for r in answer["results"])
    deadline = time.monotonic() + 120  # one ceiling for all of them: they are worked on together
    for (job_id,), channel in ((email, "email"), (push, "push"), (in_app, "websocket")):
        job = stack.wait_status(job_id, "SENT", timeout=max(1, deadline - time.monotonic()))
        assert job["channel"] == channel
        assert [h["status"] for h in job["history"]].count("SENT") == 1, job["history"]
    failed = stack.wait_status(unknown[0], "FAILED", timeout=max(1, deadline - time.monotonic()))
    assert "does not exist" in failed["last_error"], failed
    assert [e["destinations"]["ToAddresses"] for e in sent_emails(stack.moto, to=address)] == [[address]]
    assert len(stack.pushes(endpoint)) == 1
    status, token = stack.call("POST", f"/api/v1/users/{user}/tokens")
    assert status == 201, token
    status, inbox = stack.call("GET", "/api/v1/inbox", key=None, authorization=f"Bearer {token['token']}")
    assert status == 200 and [item["job_id"] for item in inbox["items"]] == in_app, inbox
    # A listing hides the letters it returns for 2 s (dlq.LIST_VISIBILITY_SECONDS): gather what each one shows.
    seen: set[str] = set()

    def lettered() -> set[str]:
        status, body = stack.call("GET", "/api/v1/dlq?limit=200")
        assert status == 200, body
        seen.update(x["job_id"] for x in body["items"] if x.get("job_id") in unknown)
        return seen

    poll(lettered, lambda found: found == set(unknown), timeout=60, every=1)


@pytest.mark.timeout(420)  # a 240 s ceiling for 100 deliveries, and the requests around it
def test_a_segment_event_reaches_every_demo_user_once(slice_stack: StackProcess) -> None:
    stack = slice_stack
    marker = f"https://example.com/watch/{time.time_ns()}"
    status, accepted = stack.call(
        "POST",
        "/api/v1/events",
        {
            "event_type": "new_film",
            "payload": {"film_id": "f-1", "title": "Dune", "release_date": "2026-12-01", "watch_url": marker},
            "recipients": {"segment_id": "all"},
            "channels": ["email"],
        },
    )
    assert status == 202 and accepted["segment_id"] == "all"
    deadline = time.monotonic() + 240  # a ceiling: 100 deliveries
    while time.monotonic() < deadline:
        sent = stack.emails(marker)
        if len(sent) >= 100:
            break
        time.sleep(1)
    recipients = sorted(e["destinations"]["ToAddresses"][0] for e in sent)
    assert recipients == sorted(f"demo-user-{n}@example.com" for n in range(1, 101))
    status, event = stack.call("GET", f"/api/v1/events/{accepted['event_id']}")
    assert (status, event["recipients"]) == (200, 100)


def _campaign(stack: StackProcess, marker: str) -> str:
    """A campaign due every minute, emailing the segment ``all`` a new_film whose link is ``marker``, run once."""
    status, campaign = stack.call(
        "POST",
        "/api/v1/campaigns",
        {
            "name": "e2e",
            "cron": "* * * * *",
            "timezone": "Europe/Berlin",
            "segment_id": "all",
            "event_type": "new_film",
            "payload": {"film_id": "f-2", "title": "Arrival", "release_date": "2026-12-24", "watch_url": marker},
            "channels": ["email"],
            "max_runs": 1,
        },
    )
    assert status == 201 and campaign["status"] == "ACTIVE"
    return str(campaign["campaign_id"])


def _ran_once(stack: StackProcess, campaign_id: str, marker: str, deadline: float) -> None:
    """The campaign ran once, by ``deadline`` (a ceiling: the next minute, a 5-second tick, then 100 deliveries),
    and every demo user got its email once."""
    sent: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        sent = stack.emails(marker)
        if len(sent) >= 100:
            break
        time.sleep(2)
    # The scheduler records the run (and, max_runs reached, INACTIVE) just after it hands the run's event in, so
    # the emails may come first: wait for the record.
    stored = poll(
        lambda: stack.call("GET", f"/api/v1/campaigns/{campaign_id}")[1],
        lambda found: found["status"] != "ACTIVE",
        timeout=max(60, deadline - time.monotonic()),
    )
    assert (stored["status"], stored["runs_count"]) == ("INACTIVE", 1)  # max_runs reached: it cannot fire again
    final = ("SENT", "DELIVERED", "BOUNCED", "COMPLAINED", "FAILED", "EXPIRED", "SKIPPED")

    def runs() -> list[dict[str, Any]]:
        status, body = stack.call("GET", f"/api/v1/campaigns/{campaign_id}/runs")
        assert status == 200, body
        return list(body["items"])

    def ended(items: list[dict[str, Any]]) -> bool:  # every job of the one run: then nothing more may arrive
        counts = (items[0]["status_counts"] or {}) if items else {}
        return sum(n for s, n in counts.items() if s in final) >= 100

    items = poll(runs, ended, timeout=max(60, deadline - time.monotonic()), every=1)
    assert [run["recipients"] for run in items] == [100]
    counts = items[0]["status_counts"]
    assert counts.get("SENT", 0) + counts.get("DELIVERED", 0) == 100, counts
    sent = stack.emails(marker)
    recipients = sorted(e["destinations"]["ToAddresses"][0] for e in sent)
    assert recipients == sorted(f"demo-user-{n}@example.com" for n in range(1, 101))


# 300 s for both runs and their deliveries, then up to 60 s each for a record and its jobs; and each stack's start
# (240 s each): run alone or first, the test starts the session's sqs_stack, and this module's stack too.
@pytest.mark.timeout(1080)
def test_a_campaign_due_within_a_minute_emails_the_whole_segment_once(
    stack: StackProcess, sqs_stack: StackProcess
) -> None:
    """On each transport's stack (the slice's campaign: the scheduler publishes the run). Both campaigns are made
    due together, so they wait for the same minute: the sqs half does not add a minute of its own."""
    marker = f"https://example.com/campaign/{time.time_ns()}"
    made = [(each, _campaign(each, f"{marker}/{each.transport}")) for each in (stack, sqs_stack)]
    deadline = time.monotonic() + 300  # one ceiling for both: they run in the same minute, or the next
    for each, campaign_id in made:
        _ran_once(each, campaign_id, f"{marker}/{each.transport}", deadline)


def test_bad_requests_get_clear_4xx_answers(stack: StackProcess) -> None:
    body = {"event_type": "user_registered", "payload": {}, "recipients": {"user_ids": ["demo-user-1"]}}
    assert stack.call("POST", "/api/v1/events", body, key=None)[0] == 401
    status, error = stack.call("POST", "/api/v1/events", body)
    assert status == 422
    assert error["error"]["fields"][0]["loc"] == "payload.confirmation_url"
    status, spec = stack.call("GET", "/openapi.json", key=None)
    assert status == 200 and "/api/v1/events" in spec["paths"]


@pytest.mark.timeout(480)  # 60 s to produce, 180 s for the good jobs, 120 s for the letters
def test_poison_records_on_the_topic_never_stop_the_jobs_behind_them(stack: StackProcess) -> None:
    """Bad bytes written straight to the stack's topic, between good jobs, as any producer could."""
    from kafka import KafkaProducer

    jobs = new_film_emails([f"demo-user-{n}" for n in range(60, 66)])
    poison = [b"\xff\xfe not text", b'{"key":"value"}', b"[1, 2]", b"[" * 5000 + b"]" * 5000, b""]
    producer = KafkaProducer(bootstrap_servers=f"127.0.0.1:{stack.env['KAFKA_PORT']}", api_version=(2, 8, 0))
    for i, job in enumerate(jobs):  # one partition: good, bad, good, bad, ...
        producer.send("notification-jobs", value=job.model_dump_json().encode(), key=b"k", partition=0)
        if i < len(poison):
            producer.send("notification-jobs", value=poison[i], key=b"k", partition=0)
    producer.flush(timeout=60)
    producer.close()
    deadline = time.monotonic() + 180  # one ceiling for all of them: they are worked on together
    for job in jobs:
        stack.wait_status(job.job_id, "SENT", timeout=max(1, deadline - time.monotonic()))
    # A listing hides the letters it returns for 2 s (dlq.LIST_VISIBILITY_SECONDS), so one listing may show only
    # part of the queue: gather what every listing saw, by message id, listing again only once they are back.
    kept: dict[str, bytes] = {}  # by message id

    def lettered() -> set[int]:
        """Which poison records (their index) the listings so far have shown as letters."""
        status, body = stack.call("GET", "/api/v1/dlq?limit=200")
        assert status == 200, body
        for x in body["items"]:
            if x["reason"] == "invalid_job" and x["source"].startswith("kafka:"):
                raw = base64.b64decode(x["raw_base64"]) if x["raw_base64"] else (x["raw"] or "").encode()
                kept[x["message_id"]] = raw
        return {i for i, record in enumerate(poison) if record in kept.values()}

    poll(lettered, lambda found: len(found) == len(poison), timeout=120, every=3)


def _event(stack: StackProcess, event_type: str, user: str, email: str = "") -> str:
    """The one email job of an event for ``user``: a user of the demo Auth service, or an inline recipient when
    ``email`` is given."""
    film = {"film_id": "f-9", "title": "Dune", "release_date": "2026-12-01", "watch_url": "https://e.x/f"}
    payloads = {
        "new_film": film,
        "password_reset": {"reset_url": "https://example.com/reset/e2e", "expires_in_minutes": 30},
        # A campaign's run as the scheduler hands it in: marketing mail, rendered with new_film's templates.
        "campaign_triggered": {"campaign_id": "e2e", "run_id": "e2e#run", "event_type": "new_film", "payload": film},
    }
    status, accepted = stack.call(
        "POST",
        "/api/v1/events",
        {
            "event_type": event_type,
            "payload": payloads[event_type],
            "recipients": {"users": [{"user_id": user, "email": email}]} if email else {"user_ids": [user]},
            "channels": ["email"],
        },
    )
    assert status == 202, accepted
    (job_id,) = accepted["job_ids"]
    return str(job_id)


def _preferences(stack: StackProcess, user: str) -> dict[str, Any]:
    status, body = stack.call("GET", f"/api/v1/users/{user}/preferences")
    assert status == 200, body
    return dict(body)


@pytest.mark.timeout(420)  # 120 s to bounce, 60 s for the suppression, 120 s to be skipped
def test_a_hard_bounce_from_the_mailbox_simulator_suppresses_the_address(stack: StackProcess) -> None:
    first = stack.wait_status(_event(stack, "new_film", "demo-bounce"), "BOUNCED")
    assert first["history"][-1]["detail"]["bounceType"] == "Permanent"
    # The feedback function records the status first, then the suppression: wait until it is stored.
    prefs = poll(lambda: _preferences(stack, "demo-bounce"), lambda p: bool(p["suppressed"]), timeout=60)
    assert prefs["suppressed"] == ["bounce@simulator.amazonses.com"]
    time.sleep(1.5)  # the local worker keeps preferences 1 s: a copy read before the suppression is gone by now
    second = stack.wait_status(_event(stack, "new_film", "demo-bounce"), "SKIPPED")
    assert second["history"][-1]["detail"] == {"reason": "suppressed", "address": "bounce@simulator.amazonses.com"}
    assert _preferences(stack, "demo-bounce")["suppressed"] == ["bounce@simulator.amazonses.com"]


def test_a_complaint_suppresses_and_opts_out_of_marketing(stack: StackProcess) -> None:
    stack.wait_status(_event(stack, "new_film", "demo-complaint"), "COMPLAINED")
    # The feedback function records the status first, then the suppression and the opt-out: wait for both.
    prefs = poll(
        lambda: _preferences(stack, "demo-complaint"),
        lambda p: bool(p["suppressed"]) and p["categories"]["marketing"]["email"] is False,
        timeout=60,
    )
    assert prefs["suppressed"] == ["complaint@simulator.amazonses.com"]


def _form(url: str, method: str, body: Optional[bytes] = None) -> tuple[int, str]:
    headers = {"content-type": "application/x-www-form-urlencoded"} if body is not None else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.timeout(480)  # three waits of 120 s
def test_one_click_unsubscribe_from_the_emailed_link_stops_content_mail_but_not_account_mail(
    stack: StackProcess,
) -> None:
    user = "demo-user-42"
    sent = stack.wait_status(_event(stack, "new_film", user), "SENT")
    # The SENT entry says the email carried a link, never the link (its token opts the user out).
    assert next(h["detail"]["list_unsubscribe"] for h in sent["history"] if h["status"] == "SENT") is True
    # This job's email: other tests of the shared stack mail the whole segment, this user included.
    (email,) = [e for e in sent_emails(stack.moto, to=f"{user}@example.com") if e["id"] == sent["provider_message_id"]]
    found = re.search(r'href="([^"]+/u/[^"]+)"', email["body"])
    assert found is not None, email["body"]
    link = found.group(1)
    assert link.startswith(stack.api + "/u/") and link not in json.dumps(sent)
    status, page = _form(link, "GET")  # a mail scanner opening the link changes nothing
    assert status == 200 and "Unsubscribe" in page
    assert stack.call("GET", f"/api/v1/users/{user}/preferences")[1]["categories"]["content"]["email"] is True
    assert _form(link, "POST", b"List-Unsubscribe=One-Click")[0] == 200
    time.sleep(1.5)  # the local worker keeps preferences 1 s
    film = stack.wait_status(_event(stack, "new_film", user), "SKIPPED")
    assert film["history"][-1]["detail"] == {"reason": "opted_out", "category": "content"}
    stack.wait_status(_event(stack, "password_reset", user), "SENT")


@pytest.mark.timeout(360)  # two waits of 120 s
def test_quiet_hours_hold_content_mail_and_let_account_mail_through(stack: StackProcess) -> None:
    user = "demo-user-43"
    now = datetime.now(UTC)
    window = {"start": f"{(now - timedelta(hours=1)).hour:02d}:00", "end": f"{(now + timedelta(hours=2)).hour:02d}:00"}
    status, _ = stack.call("PUT", f"/api/v1/users/{user}/preferences", {"quiet_hours": {**window, "timezone": "UTC"}})
    assert status == 200
    time.sleep(1.5)
    film = stack.wait_status(_event(stack, "new_film", user), "SCHEDULED")
    assert film["history"][-1]["detail"]["reason"] == "quiet_hours"
    stack.wait_status(_event(stack, "password_reset", user), "SENT")


@pytest.mark.timeout(420)  # three waits of 120 s
def test_a_marketing_throttle_of_one_a_day_skips_the_second_new_film_and_lets_account_mail_through(
    stack: StackProcess,
) -> None:
    user = f"throttled-{uuid.uuid4().hex[:8]}"  # no counter yet, whatever ran on this stack before
    email = f"{user}@example.com"
    rule = {"channel": "email", "limit": 1, "period_seconds": 86400}
    assert stack.call("PUT", "/api/v1/throttle-rules/marketing", rule)[0] == 200
    try:
        time.sleep(1.5)  # the local worker keeps the rules 1 s (PreferencesCacheSeconds), as it keeps preferences
        first = stack.wait_status(_event(stack, "campaign_triggered", user, email), "SENT")
        assert first["event_type"] == "campaign_triggered"
        second = stack.wait_status(_event(stack, "campaign_triggered", user, email), "SKIPPED")
        detail = second["history"][-1]["detail"]
        assert {k: detail[k] for k in ("reason", "category", "limit", "period_seconds")} == {
            "reason": "throttled",
            "category": "marketing",
            "limit": 1,
            "period_seconds": 86400,
        }
        stack.wait_status(_event(stack, "password_reset", user, email), "SENT")
    finally:
        assert stack.call("DELETE", "/api/v1/throttle-rules/marketing?channel=email")[0] == 204


@pytest.mark.timeout(420)  # 120 s for the members, 120 s for the digest's email, 60 s for its status
def test_five_likes_of_a_review_make_one_email_listing_them_after_a_ten_second_window(stack: StackProcess) -> None:
    user = f"digest-{uuid.uuid4().hex[:8]}"
    email = f"{user}@example.com"
    rule = {"channels": ["email"], "window": {"seconds": 10}, "key": ["review_id"]}
    assert stack.call("PUT", "/api/v1/digest-rules/review_liked", rule)[0] == 200
    try:
        time.sleep(1.5)  # the local worker keeps the rules 1 s (PreferencesCacheSeconds)
        likers = [f"Liker{i}-{user}" for i in range(5)]
        members: list[str] = []
        for liker in likers:
            payload = {"review_id": f"r-{user}", "movie_id": "m-1", "movie_title": "Dune", "liked_by": liker}
            body = {
                "event_type": "review_liked",
                "payload": {**payload, "likes_count": len(members) + 1},
                "recipients": {"users": [{"user_id": user, "email": email}]},
                "channels": ["email"],
            }
            status, accepted = stack.call("POST", "/api/v1/events", body)
            assert status == 202, accepted
            members.extend(accepted["job_ids"])
        digested = [stack.wait_status(job_id, "DIGESTED") for job_id in members]
        (digest_id,) = {m["history"][-1]["detail"]["digest_job_id"] for m in digested}
        (mail,) = poll(lambda: sent_emails(stack.moto, to=email), lambda found: len(found) >= 1, 120)
        assert mail["subject"] == f"{likers[-1]} and 4 others liked your review of Dune"
        assert all(liker in mail["body"] for liker in likers)
        digest = stack.wait_status(digest_id, "SENT", timeout=60)
        assert digest["template_version"] and len(sent_emails(stack.moto, to=email)) == 1
    finally:
        assert stack.call("DELETE", "/api/v1/digest-rules/review_liked")[0] == 204


def test_a_second_stack_on_the_same_ports_refuses_clearly(stack: StackProcess) -> None:
    second = subprocess.run(
        [sys.executable, "-m", "local"], cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 2
    assert f"already running as pid {stack.process.pid}" in second.stderr
    assert f"API_PORT={stack.api.rsplit(':', 1)[1]}" in second.stderr


def test_stopping_the_stack_stops_everything_it_started(stack: StackProcess) -> None:
    children = _children(stack.process.pid)
    assert len(children) >= 2  # moto server and Tansu
    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(90) == 0

    def running() -> list[int]:
        """The children still running: neither gone nor a zombie (one that has exited, waiting to be reaped)."""
        alive = []
        for pid in children:
            try:
                state = Path(f"/proc/{pid}/status").read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if "zombie" not in state.lower():
                alive.append(pid)
        return alive

    assert poll(running, lambda alive: not alive, timeout=30) == []
