"""The local stack as a black box: `python -m local` in a subprocess, driven over HTTP as a user would."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Optional

import pytest

from local.cfn import ROOT
from local.emails import sent_emails
from local.launch import pythonpath
from local.processes import free_port

pytestmark = pytest.mark.e2e
KEY = "local-dev-key"


@dataclass
class Stack:
    api: str
    moto: str
    env: dict[str, str]
    process: subprocess.Popen[str]

    def call(self, method: str, path: str, body: Any = None, key: Optional[str] = KEY) -> tuple[int, Any]:
        headers = {"content-type": "application/json"}
        if key:
            headers["x-api-key"] = key
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.api + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def emails(self, contains: str) -> list[dict[str, Any]]:
        """The emails moto accepted holding ``contains`` (its SES store's index, not a dump of every backend)."""
        return sent_emails(self.moto, contains=contains)

    def wait_status(self, job_id: str, want: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        body: Any = None
        while time.monotonic() < deadline:
            status, body = self.call("GET", f"/api/v1/notifications/{job_id}")
            # SES's feedback moves a sent email on (the local stack publishes it, as SES would): SENT was reached.
            reached = {want, *(("DELIVERED", "BOUNCED", "COMPLAINED") if want == "SENT" else ())}
            if status == 200 and body["status"] in reached:
                return dict(body)
            if status == 200 and body["status"] in ("FAILED", "EXPIRED", "SKIPPED"):
                break  # final: waiting longer cannot help
            time.sleep(0.5)
        raise AssertionError(f"{job_id} never became {want}: {body}")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    ports = {name: str(free_port()) for name in ("API_PORT", "MOTO_PORT", "KAFKA_PORT", "AUTH_PORT", "WS_PORT")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KAFKA_"))}
    state = tmp_path_factory.mktemp("e2e")  # logs and the pid file, away from a `make local` of the developer's
    env.update(ports, SCHEDULE_SECONDS="5", LOCAL_STATE_DIR=str(state))
    env["PYTHONPATH"] = pythonpath()
    log = (state / "local.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "local"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
    )
    stack = Stack(f"http://127.0.0.1:{ports['API_PORT']}", f"http://127.0.0.1:{ports['MOTO_PORT']}", env, process)
    deadline = time.monotonic() + 240  # a ceiling: 100 deliveries
    while True:
        try:
            if stack.call("GET", "/health", key=None) == (200, {"status": "ok"}):
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the local stack did not come up: {Path(log.name).read_text()[-3000:]}")
        time.sleep(0.5)
    yield stack
    if process.poll() is None:
        process.terminate()
        process.wait(30)
    log.close()


def test_a_user_registered_event_is_emailed_and_its_status_is_sent(stack: Stack) -> None:
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
    assert [h["status"] for h in job["history"]][:4] == ["ACCEPTED", "PROCESSING", "SENDING", "SENT"]
    delivered = stack.wait_status(job_id, "DELIVERED")  # SES's Delivery event, through the simulator
    assert delivered["history"][-1]["detail"]["feedback"] == "Delivery"
    emails = stack.emails("https://example.com/confirm/e2e")
    assert len(emails) == 1
    assert emails[0]["destinations"]["ToAddresses"] == ["demo-user-1@example.com"]
    assert emails[0]["subject"] == "Welcome, Ada! Please confirm your email"
    status, history = stack.call("GET", "/api/v1/users/demo-user-1/notifications")
    assert status == 200 and job_id in [item["job_id"] for item in history["items"]]


def test_a_user_registered_event_without_the_optional_first_name_is_sent(stack: Stack) -> None:
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


def test_a_segment_event_reaches_every_demo_user_once(stack: Stack) -> None:
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


def test_a_campaign_due_within_a_minute_emails_the_whole_segment_once(stack: Stack) -> None:
    marker = f"https://example.com/campaign/{time.time_ns()}"
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
    deadline = time.monotonic() + 300  # a ceiling: the next minute, a 5-second tick, then 100 deliveries
    sent: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        sent = stack.emails(marker)
        if len(sent) >= 100:
            break
        time.sleep(2)
    status, stored = stack.call("GET", f"/api/v1/campaigns/{campaign['campaign_id']}")
    assert (stored["status"], stored["runs_count"]) == ("INACTIVE", 1)  # max_runs reached: it cannot fire again
    final = ("SENT", "DELIVERED", "BOUNCED", "COMPLAINED", "FAILED", "EXPIRED", "SKIPPED")
    while True:  # until every job of the one run has ended: then nothing more may arrive
        status, runs = stack.call("GET", f"/api/v1/campaigns/{campaign['campaign_id']}/runs")
        assert status == 200 and [run["recipients"] for run in runs["items"]] == [100]
        counts = runs["items"][0]["status_counts"] or {}
        if sum(n for s, n in counts.items() if s in final) == 100 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert counts.get("SENT", 0) + counts.get("DELIVERED", 0) == 100, counts
    sent = stack.emails(marker)
    recipients = sorted(e["destinations"]["ToAddresses"][0] for e in sent)
    assert recipients == sorted(f"demo-user-{n}@example.com" for n in range(1, 101))


def test_bad_requests_get_clear_4xx_answers(stack: Stack) -> None:
    body = {"event_type": "user_registered", "payload": {}, "recipients": {"user_ids": ["demo-user-1"]}}
    assert stack.call("POST", "/api/v1/events", body, key=None)[0] == 401
    status, error = stack.call("POST", "/api/v1/events", body)
    assert status == 422
    assert error["error"]["fields"][0]["loc"] == "payload.confirmation_url"
    status, spec = stack.call("GET", "/openapi.json", key=None)
    assert status == 200 and "/api/v1/events" in spec["paths"]


def test_poison_records_on_the_topic_never_stop_the_jobs_behind_them(stack: Stack) -> None:
    """Bad bytes written straight to the stack's topic, between good jobs, as any producer could."""
    from kafka import KafkaProducer
    from notify.catalog import EVENT_TYPES
    from notify.jobs import EventPlan, new_event_id
    from notify.models import Channel

    spec = EVENT_TYPES["new_film"]
    now = datetime.now(UTC)
    users = [f"demo-user-{n}" for n in range(60, 66)]
    plan = EventPlan(
        new_event_id(),
        spec,
        spec.sample_payload(),
        users,
        [Channel.EMAIL],
        spec.priority,
        now,
        now + timedelta(hours=1),
    )
    jobs = plan.jobs()
    poison = [b"\xff\xfe not text", b'{"key":"value"}', b"[1, 2]", b"[" * 5000 + b"]" * 5000, b""]
    producer = KafkaProducer(bootstrap_servers=f"127.0.0.1:{stack.env['KAFKA_PORT']}", api_version=(2, 8, 0))
    for i, job in enumerate(jobs):  # one partition: good, bad, good, bad, ...
        producer.send("notification-jobs", value=job.model_dump_json().encode(), key=b"k", partition=0)
        if i < len(poison):
            producer.send("notification-jobs", value=poison[i], key=b"k", partition=0)
    producer.flush(timeout=10)
    producer.close()
    for job in jobs:
        stack.wait_status(job.job_id, "SENT")
    deadline = time.monotonic() + 30
    letters: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        status, body = stack.call("GET", "/api/v1/dlq?limit=200")
        assert status == 200
        letters = [x for x in body["items"] if x["reason"] == "invalid_job" and x["source"].startswith("kafka:")]
        if len(letters) >= len(poison):
            break
        time.sleep(1)
    kept = {base64.b64decode(x["raw_base64"]) if x["raw_base64"] else (x["raw"] or "").encode() for x in letters}
    assert set(poison) <= kept


def _event(stack: Stack, event_type: str, user: str) -> str:
    payloads = {
        "new_film": {"film_id": "f-9", "title": "Dune", "release_date": "2026-12-01", "watch_url": "https://e.x/f"},
        "password_reset": {"reset_url": "https://example.com/reset/e2e", "expires_in_minutes": 30},
    }
    status, accepted = stack.call(
        "POST",
        "/api/v1/events",
        {
            "event_type": event_type,
            "payload": payloads[event_type],
            "recipients": {"user_ids": [user]},
            "channels": ["email"],
        },
    )
    assert status == 202, accepted
    (job_id,) = accepted["job_ids"]
    return str(job_id)


def test_a_hard_bounce_from_the_mailbox_simulator_suppresses_the_address(stack: Stack) -> None:
    first = stack.wait_status(_event(stack, "new_film", "demo-bounce"), "BOUNCED")
    assert first["history"][-1]["detail"]["bounceType"] == "Permanent"
    time.sleep(1.5)  # the local worker keeps preferences 1 s
    second = stack.wait_status(_event(stack, "new_film", "demo-bounce"), "SKIPPED")
    assert second["history"][-1]["detail"] == {"reason": "suppressed", "address": "bounce@simulator.amazonses.com"}
    assert stack.call("GET", "/api/v1/users/demo-bounce/preferences")[1]["suppressed"] == [
        "bounce@simulator.amazonses.com"
    ]


def test_a_complaint_suppresses_and_opts_out_of_marketing(stack: Stack) -> None:
    stack.wait_status(_event(stack, "new_film", "demo-complaint"), "COMPLAINED")
    prefs = stack.call("GET", "/api/v1/users/demo-complaint/preferences")[1]
    assert prefs["categories"]["marketing"]["email"] is False and prefs["suppressed"] == [
        "complaint@simulator.amazonses.com"
    ]


def _form(url: str, method: str, body: Optional[bytes] = None) -> tuple[int, str]:
    headers = {"content-type": "application/x-www-form-urlencoded"} if body is not None else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_one_click_unsubscribe_from_the_recorded_link_stops_content_mail_but_not_account_mail(stack: Stack) -> None:
    user = "demo-user-42"
    sent = stack.wait_status(_event(stack, "new_film", user), "SENT")
    link = next(h["detail"]["list_unsubscribe"] for h in sent["history"] if h["status"] == "SENT")
    assert link.startswith(stack.api + "/u/")
    status, page = _form(link, "GET")  # a mail scanner opening the link changes nothing
    assert status == 200 and "Unsubscribe" in page
    assert stack.call("GET", f"/api/v1/users/{user}/preferences")[1]["categories"]["content"]["email"] is True
    assert _form(link, "POST", b"List-Unsubscribe=One-Click")[0] == 200
    time.sleep(1.5)  # the local worker keeps preferences 1 s
    film = stack.wait_status(_event(stack, "new_film", user), "SKIPPED")
    assert film["history"][-1]["detail"] == {"reason": "opted_out", "category": "content"}
    stack.wait_status(_event(stack, "password_reset", user), "SENT")


def test_quiet_hours_hold_content_mail_and_let_account_mail_through(stack: Stack) -> None:
    user = "demo-user-43"
    now = datetime.now(UTC)
    window = {"start": f"{(now - timedelta(hours=1)).hour:02d}:00", "end": f"{(now + timedelta(hours=2)).hour:02d}:00"}
    status, _ = stack.call("PUT", f"/api/v1/users/{user}/preferences", {"quiet_hours": {**window, "timezone": "UTC"}})
    assert status == 200
    time.sleep(1.5)
    film = stack.wait_status(_event(stack, "new_film", user), "SCHEDULED")
    assert film["history"][-1]["detail"]["reason"] == "quiet_hours"
    stack.wait_status(_event(stack, "password_reset", user), "SENT")


def test_a_second_stack_on_the_same_ports_refuses_clearly(stack: Stack) -> None:
    second = subprocess.run(
        [sys.executable, "-m", "local"], cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=60
    )
    assert second.returncode == 2
    assert f"already running as pid {stack.process.pid}" in second.stderr
    assert f"API_PORT={stack.api.rsplit(':', 1)[1]}" in second.stderr


def test_stopping_the_stack_stops_everything_it_started(stack: Stack) -> None:
    children = _children(stack.process.pid)
    assert len(children) >= 2  # moto server and Tansu
    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(30) == 0
    time.sleep(0.5)
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
