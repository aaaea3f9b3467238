"""WorkerFunction with MSK and SQS events against moto server, the demo Auth service over HTTP, and SES faults.

SES faults are injected with a botocore ``before-call`` hook on the default
session (moto cannot throttle or reject an address); everything else is real.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from notify.adapters.dynamodb.cursors import CursorCodec
from notify.adapters.dynamodb.items import to_item
from notify.adapters.dynamodb.preferences import DynamoPreferenceStore
from notify.catalog import EVENT_TYPES
from notify.jobs import EventPlan, new_event_id
from notify.models import Channel, NotificationJob
from notify.records import UserPreferences

from local.auth_service import AuthService
from local.events import (
    http_api_event,
    load_event,
    ses_event,
    sns_event,
    sqs_event,
    sqs_record,
)
from local.invoke import LambdaContext

from .helpers import (
    call_api,
    dies_after,
    emails_to,
    expire_lease,
    hooked,
    job_for,
    job_id_of,
    job_status,
    kafka_batch,
    push_endpoints,
    queue_bodies,
    run_worker,
    sqs_sends,
    worker_outcomes,
)

pytestmark = pytest.mark.usefixtures("local_stack", "purge_queues", "fresh_services")
_users = itertools.count(10)


def _user(auth: AuthService) -> str:
    """A demo user no other test has used, so caches and counters start clean."""
    n = next(_users)
    user = f"demo-user-{n}"
    assert user in auth.users
    return user


def _redeliver_from_delay_queue(stack_env: dict[str, str], job_id: str) -> dict[str, Any]:
    """Receive the job's message from the delay queue once its DelaySeconds have passed, and give it to the worker
    (other tests' messages stay where they are)."""
    bodies = queue_bodies(stack_env["DELAY_QUEUE_URL"], [job_id], count=1)
    records = [sqs_record(json.dumps(b), "arn:aws:sqs:us-east-1:123456789012:DelayQueue") for b in bodies]
    return run_worker(sqs_event(records))


@pytest.fixture
def ses_faults() -> Iterator[list[str]]:
    """Append SES error codes; each SendEmail call pops one and fails with it."""
    codes: list[str] = []

    def fail(**_: Any) -> Any:
        if not codes:
            return None
        code = codes.pop(0)
        status = 400
        return AWSResponse("https://email", status, {}, None), {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }

    with hooked("before-call.sesv2.SendEmail", fail):
        yield codes


def test_the_sample_msk_batch_is_delivered(moto_endpoint: str) -> None:
    assert worker_outcomes(load_event("msk_batch")) == {"sent": 1}
    job = json.loads(base64.b64decode(load_event("msk_batch")["records"]["notification-jobs-0"][0]["value"]))
    assert [h["status"] for h in job_status(job["job_id"])["history"]] == ["ACCEPTED", "PROCESSING", "SENDING", "SENT"]
    (email,) = emails_to(moto_endpoint, "demo-user-1@example.com")[-1:]
    assert "https://example.com/confirm/abc" in email["body"]


def test_the_sample_sqs_batch_is_delivered_with_no_failures() -> None:
    assert run_worker(load_event("sqs_delay_batch")) == {"batchItemFailures": []}


def test_a_redelivered_batch_is_sent_once(auth_service: AuthService, moto_endpoint: str) -> None:
    user = _user(auth_service)
    event = kafka_batch(job_for(user))
    assert worker_outcomes(event) == {"sent": 1}
    assert worker_outcomes(event) == {"duplicate": 1}  # Kafka redelivers after a crash before the commit
    assert len(emails_to(moto_endpoint, f"{user}@example.com")) == 1


def test_a_crash_mid_send_is_not_sent_again(auth_service: AuthService, moto_endpoint: str, stack_env: dict) -> None:
    user = _user(auth_service)
    job = job_for(user)
    with dies_after("sesv2.SendEmail", "the worker died right after SES accepted the email"):
        run_worker(kafka_batch(job))
    assert job_status(job.job_id)["status"] == "SENDING"
    assert worker_outcomes(kafka_batch(job)) == {"deferred": 1}  # the lease is still live
    expire_lease(stack_env, job.job_id)  # (the deferral, delayed past the lease, is left in the delay queue)
    assert worker_outcomes(kafka_batch(job)) == {"failed": 1}
    assert len(emails_to(moto_endpoint, f"{user}@example.com")) == 1
    body = job_status(job.job_id)
    assert (body["status"], body["history"][-1]["detail"]["reason"]) == ("FAILED", "outcome_unknown")
    (letter,) = queue_bodies(stack_env["DLQ_URL"], [job.job_id], count=1)
    assert letter["reason"] == "outcome_unknown"


def test_an_expired_job_is_never_sent(auth_service: AuthService, moto_endpoint: str) -> None:
    user = _user(auth_service)
    job = job_for(user, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert worker_outcomes(kafka_batch(job)) == {"expired": 1}
    assert job_status(job.job_id)["status"] == "EXPIRED"
    assert emails_to(moto_endpoint, f"{user}@example.com") == []


def test_send_after_is_honoured(
    auth_service: AuthService, moto_endpoint: str, stack_env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker import app as worker_app

    user = _user(auth_service)
    now = datetime.now(UTC)
    due = now + timedelta(seconds=3)
    job = job_for(user, send_after=due)
    # The worker's clock (its composition root's) reads `now` when it looks at the job, however long a loaded
    # machine takes to get there: it must hold the job for the 3 s to its due time.
    monkeypatch.setattr(worker_app, "utc_now", lambda: now)
    with sqs_sends() as sent:
        assert worker_outcomes(kafka_batch(job)) == {"scheduled": 1}
    monkeypatch.undo()
    worker_app.services.cache_clear()  # the next container runs on the real clock
    hops = [m for m in sent if job_id_of(m.body) == job.job_id]
    assert [(m.queue_url, m.delay_seconds) for m in hops] == [(stack_env["DELAY_QUEUE_URL"], 3)]
    assert job_status(job.job_id)["status"] == "SCHEDULED"
    assert emails_to(moto_endpoint, f"{user}@example.com") == []
    _redeliver_from_delay_queue(stack_env, job.job_id)  # visible once SQS has held it 3 s
    assert datetime.now(UTC) >= due
    assert job_status(job.job_id)["status"] == "SENT"
    assert len(emails_to(moto_endpoint, f"{user}@example.com")) == 1


def test_auth_failing_means_retry_then_sent(auth_service: AuthService, moto_endpoint: str, stack_env: dict) -> None:
    user = _user(auth_service)
    job = job_for(user)
    auth_service.faults.status = 500
    assert worker_outcomes(kafka_batch(job)) == {"retrying": 1}
    body = job_status(job.job_id)
    assert body["status"] == "RETRYING" and "500" in body["last_error"]
    auth_service.faults.status = None
    _redeliver_from_delay_queue(stack_env, job.job_id)
    assert job_status(job.job_id)["status"] == "SENT"
    assert len(emails_to(moto_endpoint, f"{user}@example.com")) == 1


def test_auth_down_past_the_last_attempt_fails_into_the_dlq(auth_service: AuthService, stack_env: dict) -> None:
    user = _user(auth_service)
    job = job_for(user, attempt=7)  # high priority allows 8 attempts
    auth_service.stop()
    assert worker_outcomes(kafka_batch(job)) == {"failed": 1}
    auth_service.start()
    assert job_status(job.job_id)["status"] == "FAILED"
    (letter,) = queue_bodies(stack_env["DLQ_URL"], [job.job_id], count=1)
    assert (letter["reason"], letter["attempt"], letter["job"]["job_id"]) == ("attempts_exhausted", 7, job.job_id)
    assert "unreachable" in letter["error"]


def test_ses_throttling_is_retried_then_sent(
    auth_service: AuthService, ses_faults: list[str], moto_endpoint: str, stack_env: dict
) -> None:
    user = _user(auth_service)
    job = job_for(user)
    ses_faults.append("TooManyRequestsException")
    assert worker_outcomes(kafka_batch(job)) == {"retrying": 1}
    _redeliver_from_delay_queue(stack_env, job.job_id)
    assert job_status(job.job_id)["status"] == "SENT"
    assert len(emails_to(moto_endpoint, f"{user}@example.com")) == 1


def test_a_rejected_address_fails_at_once(auth_service: AuthService, ses_faults: list[str], stack_env: dict) -> None:
    user = _user(auth_service)
    job = job_for(user)
    ses_faults.append("MessageRejected")
    with sqs_sends() as sent:
        assert worker_outcomes(kafka_batch(job)) == {"failed": 1}
    assert [m.queue_url for m in sent if job_id_of(m.body) == job.job_id] == [stack_env["DLQ_URL"]]  # no retry
    (letter,) = queue_bodies(stack_env["DLQ_URL"], [job.job_id], count=1)
    assert letter["reason"] == "permanent_error" and "MessageRejected" in letter["error"]


def test_a_poison_record_goes_to_the_dlq_and_the_rest_are_sent(auth_service: AuthService, stack_env: dict) -> None:
    users = [_user(auth_service) for _ in range(3)]
    jobs = [job_for(u) for u in users]
    tag = uuid.uuid4().hex  # in both bad records, so their letters are told from other tests'
    not_json, future = f"\x00not json {tag}".encode(), json.dumps({"schema_version": 2, "tag": tag}).encode()
    assert worker_outcomes(kafka_batch(jobs[0], not_json, jobs[1], future, jobs[2])) == {"sent": 3, "dead_lettered": 2}
    letters = queue_bodies(stack_env["DLQ_URL"], where=lambda letter: tag in letter.get("raw", ""), count=2)
    assert sorted(letter["reason"] for letter in letters) == ["invalid_job", "invalid_job"]


def test_a_missing_template_fails_permanently(auth_service: AuthService, stack_env: dict) -> None:
    job = job_for(_user(auth_service), template_key="no_such_template")
    assert worker_outcomes(kafka_batch(job)) == {"failed": 1}
    body = job_status(job.job_id)
    assert body["status"] == "FAILED" and "no template" in body["last_error"]


def test_an_unknown_user_fails_without_retry(stack_env: dict) -> None:
    job = job_for("nobody-here")
    with sqs_sends() as sent:
        assert worker_outcomes(kafka_batch(job)) == {"failed": 1}
    assert "does not exist" in job_status(job.job_id)["last_error"]
    assert [m for m in sent if m.queue_url == stack_env["DELAY_QUEUE_URL"] and job_id_of(m.body) == job.job_id] == []


def test_a_user_looked_up_by_many_records_of_a_batch_is_fetched_once(auth_service: AuthService) -> None:
    user = _user(auth_service)
    before = auth_service.faults.user_requests.get(user, 0)
    events = [job_for(user) for _ in range(8)]
    assert worker_outcomes(kafka_batch(*events)) == {"sent": 8}
    assert auth_service.faults.user_requests[user] - before == 1


def _dead_lettered(auth_service: AuthService, ses_faults: list[str]) -> tuple[str, NotificationJob]:
    """A fresh user's job that SES rejected: FAILED, with its letter in the DLQ."""
    user = _user(auth_service)
    job = job_for(user)
    ses_faults.append("MessageRejected")
    assert worker_outcomes(kafka_batch(job)) == {"failed": 1}
    return user, job


def _redrive(job_id: str) -> dict[str, Any]:
    """POST /api/v1/dlq/redrive for the job, again until its letter is visible (a listing hides the letters it
    shows for two seconds), for up to a minute; the answer that redrove it, or the last one."""
    deadline = time.monotonic() + 60
    while True:
        status, result = call_api("POST", "/api/v1/dlq/redrive", {"job_ids": [job_id]})
        assert status == 200, result
        if result["redriven"] or time.monotonic() > deadline:
            return dict(result)
        time.sleep(0.2)


def test_the_dlq_is_listed_and_redriven_through_the_api(
    auth_service: AuthService, ses_faults: list[str], moto_endpoint: str, stack_env: dict
) -> None:
    user, job = _dead_lettered(auth_service, ses_faults)
    status, listed = call_api("GET", "/api/v1/dlq")
    assert status == 200 and job.job_id in [item["job_id"] for item in listed["items"]]
    assert _redrive(job.job_id)["redriven"] == [job.job_id]
    _redeliver_from_delay_queue(stack_env, job.job_id)
    body = job_status(job.job_id)
    assert body["status"] == "SENT"
    assert [h["status"] for h in body["history"]][-5:] == ["SENDING", "FAILED", "PROCESSING", "SENDING", "SENT"]
    assert body["history"][-3]["detail"] == {"redrive": True} and body["history"][-3]["attempt"] == 1
    assert len(emails_to(moto_endpoint, f"{user}@example.com")) == 1


def test_a_redrive_whose_delay_queue_fails_keeps_the_letter_and_the_job_as_they_were(
    auth_service: AuthService, ses_faults: list[str], moto_endpoint: str, stack_env: dict
) -> None:
    from api import context as api_context

    user, job = _dead_lettered(auth_service, ses_faults)

    def queue_down(**_: Any) -> Any:
        raise EndpointConnectionError(endpoint_url="http://sqs")

    try:
        with hooked("before-call.sqs.SendMessageBatch", queue_down):
            status, result = call_api("POST", "/api/v1/dlq/redrive", {"job_ids": [job.job_id]})
    finally:
        api_context.services.cache_clear()  # its clients copied the hook when they were built
    assert (status, result["redriven"]) == (200, [])
    assert "the letter is kept" in result["skipped"][0]["reason"]
    assert job_status(job.job_id)["status"] == "FAILED"
    status, listed = call_api("GET", "/api/v1/dlq")  # visible again at once, not after the 60 s redrive lease
    assert job.job_id in [item["job_id"] for item in listed["items"]]
    again = _redrive(job.job_id)
    assert again["redriven"] == [job.job_id], again
    _redeliver_from_delay_queue(stack_env, job.job_id)
    assert job_status(job.job_id)["status"] == "SENT"
    assert len(emails_to(moto_endpoint, f"{user}@example.com")) == 1


def test_push_goes_to_every_platform_endpoint_of_the_user(auth_service: AuthService) -> None:
    endpoints = push_endpoints(2)
    user = f"push-user-{uuid.uuid4().hex[:6]}"
    auth_service.add_user(user, segments=(), email=f"{user}@example.com", push_endpoints=endpoints)
    spec = EVENT_TYPES["review_liked"]
    now = datetime.now(UTC)
    plan = EventPlan(
        new_event_id(), spec, spec.sample_payload(), [user], [Channel.PUSH], spec.priority, now, now + timedelta(days=1)
    )
    (job,) = plan.jobs()
    assert worker_outcomes(kafka_batch(job)) == {"sent": 1}
    body = job_status(job.job_id)
    assert body["status"] == "SENT" and len(body["provider_message_id"].split(",")) == 2
    boto3.client("sns").set_endpoint_attributes(EndpointArn=endpoints[0], Attributes={"Enabled": "false"})
    (again,) = EventPlan(
        new_event_id(), spec, spec.sample_payload(), [user], [Channel.PUSH], spec.priority, now, now + timedelta(days=1)
    ).jobs()
    assert worker_outcomes(kafka_batch(again)) == {"sent": 1}  # the disabled endpoint is skipped, the other one gets it
    body = job_status(again.job_id)
    assert body["status"] == "SENT" and len(body["provider_message_id"].split(",")) == 1
    for endpoint in endpoints:
        boto3.client("sns").set_endpoint_attributes(EndpointArn=endpoint, Attributes={"Enabled": "false"})
    (third,) = EventPlan(
        new_event_id(), spec, spec.sample_payload(), [user], [Channel.PUSH], spec.priority, now, now + timedelta(days=1)
    ).jobs()
    assert worker_outcomes(kafka_batch(third)) == {"failed": 1}  # every endpoint refused: the job fails
    assert "EndpointDisabled" in job_status(third.job_id)["last_error"]


def test_a_users_history_is_newest_first_filtered_and_paged(auth_service: AuthService, ses_faults: list[str]) -> None:
    user = _user(auth_service)
    jobs = []
    for n in range(5):
        job = job_for(user, created_at=datetime.now(UTC) + timedelta(milliseconds=n))
        if n == 2:
            ses_faults.append("MessageRejected")
        run_worker(kafka_batch(job))
        jobs.append(job)
    status, page = call_api("GET", f"/api/v1/users/{user}/notifications?limit=2")
    assert status == 200 and [i["job_id"] for i in page["items"]] == [jobs[4].job_id, jobs[3].job_id]
    status, rest = call_api("GET", f"/api/v1/users/{user}/notifications?limit=10&cursor={page['next_cursor']}")
    assert [i["job_id"] for i in rest["items"]] == [j.job_id for j in reversed(jobs[:3])]
    assert rest["next_cursor"] is None
    status, failed = call_api("GET", f"/api/v1/users/{user}/notifications?status=FAILED")
    assert [i["job_id"] for i in failed["items"]] == [jobs[2].job_id]
    status, push = call_api("GET", f"/api/v1/users/{user}/notifications?channel=push")
    assert (status, push["items"]) == (200, [])
    assert call_api("GET", f"/api/v1/users/{user}/notifications?cursor=garbage")[0] == 422
    assert call_api("GET", f"/api/v1/users/{user}/notifications?status=NOPE")[0] == 422


def test_a_cursor_the_api_did_not_issue_is_refused_before_dynamodb_sees_it(auth_service: AuthService) -> None:
    user, other = _user(auth_service), _user(auth_service)
    for owner in (user, user, other):
        run_worker(kafka_batch(job_for(owner)))
    status, page = call_api("GET", f"/api/v1/users/{user}/notifications?limit=1")
    cursor = page["next_cursor"]
    assert status == 200 and cursor and "USER#" not in cursor  # opaque
    assert call_api("GET", f"/api/v1/users/{user}/notifications?cursor={cursor}")[0] == 200
    body, _, signature = cursor.partition(".")
    key = json.loads(base64.urlsafe_b64decode(body))
    key["gsi1pk"] = f"USER#{other}"  # start inside someone else's partition, keeping the signature
    forged = base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode() + "." + signature
    resigned = CursorCodec(lambda: "not the service's key" * 2).encode(to_item(key))
    for bad in (forged, resigned, body, cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB"), "x" * 3000):
        status, error = call_api("GET", f"/api/v1/users/{user}/notifications?cursor={bad}")
        assert status == 422, (bad, error)
        assert error["error"]["fields"][0]["loc"].endswith("cursor"), error


def test_preferences_stored_in_dynamodb_skip_an_opted_out_job_and_hold_it_in_quiet_hours(
    auth_service: AuthService, stack_env: dict[str, str]
) -> None:
    store = DynamoPreferenceStore(boto3.client("dynamodb"), stack_env["NOTIFICATIONS_TABLE"], cache_seconds=0)
    opted_out, quiet = _user(auth_service), _user(auth_service)
    store.put(UserPreferences(opted_out, categories={"content": {"email": False}}))
    now = datetime.now(UTC)
    window = {"start": f"{(now - timedelta(hours=1)).hour:02d}:00", "end": f"{(now + timedelta(hours=2)).hour:02d}:00"}
    store.put(UserPreferences(quiet, quiet_hours={**window, "timezone": "UTC"}))
    assert store.get(quiet) == UserPreferences(quiet, quiet_hours={**window, "timezone": "UTC"})
    film, reset = job_for(opted_out, "new_film"), job_for(opted_out, "password_reset")
    assert worker_outcomes(kafka_batch(film, reset)) == {"skipped": 1, "sent": 1}  # account mail is never held back
    body = job_status(film.job_id)
    assert body["status"] == "SKIPPED" and body["history"][-1]["detail"]["reason"] == "opted_out"
    later = job_for(quiet, "new_film")
    assert worker_outcomes(kafka_batch(later)) == {"scheduled": 1}
    assert job_status(later.job_id)["history"][-1]["detail"]["reason"] == "quiet_hours"


def test_a_suppressed_address_in_dynamodb_gets_no_email_and_a_preferences_put_keeps_it(
    auth_service: AuthService, stack_env: dict[str, str]
) -> None:
    store = DynamoPreferenceStore(boto3.client("dynamodb"), stack_env["NOTIFICATIONS_TABLE"], cache_seconds=0)
    user = _user(auth_service)
    store.suppress(user, f"{user}@example.com", "bounce", "2026-11-25T18:00:00Z")
    store.suppress(user, f"{user}@example.com", "bounce", "2026-11-25T18:00:01Z")  # idempotent
    status, _ = call_api("PUT", f"/api/v1/users/{user}/preferences", {"channels": {"push": False}})
    assert status == 200
    status, document = call_api("GET", f"/api/v1/users/{user}/preferences")
    assert document["suppressed"] == [f"{user}@example.com"] and document["channels"]["push"] is False
    film, reset = job_for(user, "new_film"), job_for(user, "password_reset")
    assert worker_outcomes(kafka_batch(film, reset)) == {"skipped": 2}
    assert job_status(reset.job_id)["history"][-1]["detail"]["reason"] == "suppressed"


def _page(method: str, path: str, body: bytes | None = None, content_type: str = "") -> tuple[int, str, str]:
    """ApiFunction's handler for a browser or a mail provider: (status, content type, text)."""
    from api.app import lambda_handler

    headers = {"content-type": content_type} if content_type else {}
    result = lambda_handler(http_api_event(method, path, "", headers, body), LambdaContext("ApiFunction"))
    answer = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    return int(result["statusCode"]), answer.get("content-type", ""), result.get("body") or ""


def test_one_click_unsubscribe_from_the_link_an_email_carried_stops_that_category_only(
    auth_service: AuthService, moto_endpoint: str
) -> None:
    user = _user(auth_service)
    film = job_for(user, "new_film")
    assert worker_outcomes(kafka_batch(film)) == {"sent": 1}
    assert job_status(film.job_id)["history"][-1]["detail"]["list_unsubscribe"] is True  # that it had one, not which
    (email,) = emails_to(moto_endpoint, f"{user}@example.com")
    link = re.search(r'href="([^"]+/u/[^"]+)"', email["body"])
    assert link is not None, email["body"]
    path = "/" + link.group(1).split("/", 3)[3]
    assert path.startswith("/u/")
    status, kind, page = _page("GET", path)  # a mail scanner following the link changes nothing
    assert (status, kind.split(";")[0]) == (200, "text/html") and 'name="List-Unsubscribe"' in page
    assert call_api("GET", f"/api/v1/users/{user}/preferences")[1]["categories"]["content"]["email"] is True
    form = "application/x-www-form-urlencoded"
    assert _page("POST", path, b"List-Unsubscribe=Maybe", form)[0] == 400
    assert _page("POST", path, b'{"List-Unsubscribe": "One-Click"}', "application/json")[0] == 415
    for _ in range(2):  # idempotent
        status, _, done = _page("POST", path, b"List-Unsubscribe=One-Click", form)
        assert status == 200 and "unsubscribed" in done
    prefs = call_api("GET", f"/api/v1/users/{user}/preferences")[1]
    assert prefs["categories"]["content"]["email"] is False and prefs["categories"]["content"]["push"] is True
    from worker.app import services

    services.cache_clear()  # a worker container reads preferences at most 30 s old; a fresh one at once
    again, reset = job_for(user, "new_film"), job_for(user, "password_reset")
    assert worker_outcomes(kafka_batch(again, reset)) == {"skipped": 1, "sent": 1}
    assert job_status(again.job_id)["history"][-1]["detail"]["reason"] == "opted_out"
    token = path.removeprefix("/u/")
    body, _, signature = token.partition(".")
    for forged in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), body, "x.y", "not-a-token"):
        assert _page("GET", f"/u/{forged}")[0] == 404
        assert _page("POST", f"/u/{forged}", b"List-Unsubscribe=One-Click", form)[0] == 404


def _feedback(*events: dict[str, Any]) -> dict[str, Any]:
    """FeedbackFunction's handler with SNS's delivery of these SES events."""
    from feedback.app import lambda_handler

    return lambda_handler(sns_event([json.dumps(e) for e in events]), LambdaContext("FeedbackFunction"))


def test_ses_feedback_through_sns_moves_the_job_and_a_hard_bounce_stops_the_next_email(
    auth_service: AuthService,
) -> None:
    user = _user(auth_service)
    film = job_for(user, "new_film")
    assert worker_outcomes(kafka_batch(film)) == {"sent": 1}
    message_id = job_status(film.job_id)["provider_message_id"]
    address = f"{user}@example.com"
    tags = {"job_id": film.job_id, "event_type": "new_film"}
    delivered = ses_event("Delivery", message_id, address, tags, {"timestamp": "2026-11-25T12:00:02.000Z"})
    assert _feedback(delivered, delivered) == {"outcomes": {"applied": 1, "duplicate": 1}}
    # Messages nobody meant for it: not JSON, JSON 50,000 deep, a JSON list, an SES-like object without a message id.
    from feedback.app import lambda_handler

    junk = ["\xff not json", "[" * 50_000 + "]" * 50_000, "[1, 2]", json.dumps({"eventType": "Delivery", "mail": {}})]
    assert lambda_handler(sns_event(junk), LambdaContext("FeedbackFunction")) == {"outcomes": {"not_ses": 4}}
    assert job_status(film.job_id)["status"] == "DELIVERED"
    bounce = {
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "bouncedRecipients": [{"emailAddress": address, "status": "5.1.1"}],
        "timestamp": "2026-11-25T12:00:03.000Z",
        "feedbackId": f"bounce-{film.job_id}",
    }
    opened = ses_event("Open", message_id, address, tags, {"timestamp": "2026-11-25T12:00:04.000Z"})
    stranger = ses_event("Delivery", "not-ours", address, {}, {"timestamp": "2026-11-25T12:00:05.000Z"})
    result = _feedback(ses_event("Bounce", message_id, address, tags, bounce), opened, stranger)
    assert result == {"outcomes": {"applied": 2, "unmatched": 1}}
    body = job_status(film.job_id)
    assert body["status"] == "BOUNCED"
    assert [h["detail"].get("feedback") for h in body["history"][-3:]] == ["Delivery", "Bounce", "Open"]
    assert call_api("GET", f"/api/v1/users/{user}/preferences")[1]["suppressed"] == [address]
    from worker.app import services

    services.cache_clear()  # a fresh worker container (the cache keeps preferences 30 s)
    reset = job_for(user, "password_reset")
    assert worker_outcomes(kafka_batch(reset)) == {"skipped": 1}
    assert job_status(reset.job_id)["history"][-1]["detail"] == {"reason": "suppressed", "address": address}
