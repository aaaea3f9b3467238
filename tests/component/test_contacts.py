"""How WorkerFunction finds a recipient's contact (issue 21), against moto server, Tansu and the demo Auth service:
inline recipients sent without Auth, the last known contact while Auth is down, and a user who cannot be reached
on a channel skipped without a dead letter."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from notify.adapters.dynamodb.preferences import DynamoPreferenceStore
from notify.catalog import EVENT_TYPES
from notify.jobs import EventPlan, new_event_id
from notify.models import Channel, NotificationJob

from local.auth_service import AuthService
from local.events import kafka_record, msk_event, sqs_event, sqs_record
from local.invoke import LambdaContext

from .helpers import JobsTransport, Received, call_api, emails_to, job_id_of, queue_bodies, sqs_sends

pytestmark = pytest.mark.usefixtures("local_stack", "purge_queues", "fresh_services")


def _worker(event: dict[str, Any]) -> dict[str, int]:
    """The worker's outcome counts for one batch; every record must have ended somewhere."""
    from worker.app import kafka_processor, lambda_handler, sqs_processor

    assert lambda_handler(event, LambdaContext("WorkerFunction", 120)) == {"batchItemFailures": []}
    return (kafka_processor if "records" in event else sqs_processor).outcomes


def _kafka(*jobs: NotificationJob | dict[str, Any]) -> dict[str, Any]:
    values = [j.model_dump_json().encode() if isinstance(j, NotificationJob) else json.dumps(j).encode() for j in jobs]
    return msk_event([kafka_record("notification-jobs", 0, i, v, b"k") for i, v in enumerate(values)], "127.0.0.1:9092")


def _retry_from_delay_queue(stack_env: dict[str, str], job_id: str) -> dict[str, int]:
    """The job's retry, received from the delay queue once its DelaySeconds have passed, through the worker."""
    (body,) = queue_bodies(stack_env["DELAY_QUEUE_URL"], [job_id], count=1)
    return _worker(sqs_event([sqs_record(json.dumps(body), "arn:aws:sqs:us-east-1:123456789012:DelayQueue")]))


def _status(job_id: str) -> dict[str, Any]:
    status, body = call_api("GET", f"/api/v1/notifications/{job_id}")
    assert status == 200
    return body


def _signup(user: str, **changes: Any) -> NotificationJob:
    """A user_registered email (high priority: retries come within seconds) for ``user``."""
    spec = EVENT_TYPES["user_registered"]
    now = datetime.now(UTC)
    plan = EventPlan(
        new_event_id(), spec, spec.sample_payload(), [user], [Channel.EMAIL], spec.priority, now, now + spec.ttl
    )
    return plan.jobs()[0].model_copy(update=changes)


def _new_user(auth: AuthService, **profile: Any) -> str:
    user = f"contact-{uuid.uuid4().hex[:10]}"
    auth.add_user(user, segments=(), **profile)
    return user


def _posted(body: dict[str, Any], transport: JobsTransport) -> tuple[str, NotificationJob, Received]:
    """POST the event through ApiFunction; its one job as the transport carried it, and as the worker receives it."""
    status, accepted = call_api("POST", "/api/v1/events", body)
    assert status == 202, accepted
    received = transport.receive(accepted["job_ids"])
    (value,) = received.jobs
    return accepted["event_id"], NotificationJob.model_validate(value), received


def _forget_services() -> None:
    """Another container: no cached Auth profile, no cached preferences."""
    from worker.app import services

    services.cache_clear()


def test_a_user_seen_before_is_sent_with_the_last_known_contact_on_the_third_attempt_while_auth_is_down(
    auth_service: AuthService, moto_endpoint: str, stack_env: dict[str, str]
) -> None:
    user = _new_user(auth_service, email="kim@example.com", first_name="Kim")
    assert _worker(_kafka(_signup(user))) == {"sent": 1}  # Auth answers: the worker keeps what it said
    store = DynamoPreferenceStore(boto3.client("dynamodb"), stack_env["NOTIFICATIONS_TABLE"], cache_seconds=0)
    kept = store.get(user)
    assert kept is not None and kept.contact is not None and kept.contact.profile.email == "kim@example.com"
    _forget_services()
    auth_service.stop()
    job = _signup(user)
    assert _worker(_kafka(job)) == {"retrying": 1}  # attempt 0: Auth may be back soon
    assert _retry_from_delay_queue(stack_env, job.job_id) == {"retrying": 1}  # attempt 1
    with sqs_sends() as sent:
        assert _retry_from_delay_queue(stack_env, job.job_id) == {"sent": 1}  # attempt 2: the last known contact
    body = _status(job.job_id)
    sent_entry = body["history"][-1]
    assert (body["status"], sent_entry["attempt"], sent_entry["detail"]["contact_source"]) == ("SENT", 2, "snapshot")
    retries = [h for h in body["history"] if h["status"] == "RETRYING"]
    assert len(retries) == 2 and all("unreachable" in h["error"] for h in retries)
    assert len(emails_to(moto_endpoint, "kim@example.com")) == 2
    assert [m for m in sent if m.queue_url == stack_env["DLQ_URL"]] == []


def test_a_user_auth_says_is_gone_loses_the_last_known_contact_and_is_never_sent_with_it(
    auth_service: AuthService, moto_endpoint: str, stack_env: dict[str, str]
) -> None:
    user = _new_user(auth_service, email="gone@example.com")
    assert _worker(_kafka(_signup(user))) == {"sent": 1}
    _forget_services()
    del auth_service.users[user]
    assert _worker(_kafka(_signup(user))) == {"failed": 1}  # 404: FAILED as before, and the snapshot goes
    store = DynamoPreferenceStore(boto3.client("dynamodb"), stack_env["NOTIFICATIONS_TABLE"], cache_seconds=0)
    kept = store.get(user)
    assert kept is None or kept.contact is None
    _forget_services()
    auth_service.stop()
    late = _signup(user, attempt=3)
    assert _worker(_kafka(late)) == {"retrying": 1}  # no snapshot to fall back on
    assert len(emails_to(moto_endpoint, "gone@example.com")) == 1


def test_an_inline_recipient_is_sent_with_the_callers_profile_and_the_auth_service_is_not_asked(
    auth_service: AuthService, moto_endpoint: str, transport: JobsTransport
) -> None:
    invitee = f"invitee-{uuid.uuid4().hex[:10]}"
    address = f"{invitee}@example.com"
    body = {
        "event_type": "user_registered",
        "payload": {"confirmation_url": "https://example.com/invite/7"},
        "recipients": {"users": [{"user_id": invitee, "email": address, "first_name": "Zed", "locale": "en"}]},
    }
    event_id, job, received = _posted(body, transport)
    assert job.contact is not None and job.contact.email == address
    paths_before = len(auth_service.faults.paths)
    assert transport.run(received) == {"sent": 1}
    assert [p for p in auth_service.faults.paths[paths_before:] if invitee in p] == []  # Auth never asked
    assert invitee not in auth_service.faults.user_requests
    (email,) = emails_to(moto_endpoint, address)
    assert "Hi Zed," in json.dumps(email)
    assert _status(job.job_id)["history"][-1]["detail"]["contact_source"] == "inline"
    status, event = call_api("GET", f"/api/v1/events/{event_id}")
    assert (status, event["status_counts"]) == (200, {"SENT": 1})


def test_inline_recipients_that_break_a_rule_are_a_422_naming_the_field() -> None:
    base = {"event_type": "user_registered", "payload": {"confirmation_url": "https://example.com/i"}}
    cases = [
        ({"users": [{"user_id": "a", "email": "a@x.io"}], "segment_id": "all"}, "recipients"),
        ({"users": [{"user_id": "a"}, {"user_id": "a"}]}, "recipients.users.1.user_id"),
        ({"users": [{"user_id": "a"}], "user_ids": ["a"]}, "recipients.users.0.user_id"),
        ({"users": [{"user_id": "a", "email": "a@x.io\nBcc: b@y.io"}]}, "recipients.users.0.email"),
        ({"users": [{"user_id": ".."}]}, "recipients.users.0.user_id"),
    ]
    for recipients, loc in cases:
        status, error = call_api("POST", "/api/v1/events", {**base, "recipients": recipients})
        assert status == 422, (recipients, error)
        assert loc in [f["loc"] for f in error["error"]["fields"]], (recipients, error)


def test_a_push_to_a_user_with_no_endpoint_is_skipped_unreachable_and_the_dlq_stays_empty(
    auth_service: AuthService, transport: JobsTransport, stack_env: dict[str, str]
) -> None:
    user = _new_user(auth_service, email="nopush@example.com")  # no push endpoint, like demo-user-5
    body = {
        "event_type": "review_liked",
        "payload": EVENT_TYPES["review_liked"].sample_payload(),
        "recipients": {"user_ids": [user]},
        "channels": ["push"],
    }
    event_id, job, received = _posted(body, transport)
    with sqs_sends() as sent:
        assert transport.run(received) == {"skipped": 1}
    assert [m for m in sent if job_id_of(m.body) == job.job_id] == []  # no letter, no retry
    assert queue_bodies(stack_env["DLQ_URL"], [job.job_id]) == []
    status = _status(job.job_id)
    assert status["status"] == "SKIPPED"
    assert status["history"][-1]["detail"] == {"reason": "unreachable", "channel": "push", "contact_source": "auth"}
    code, event = call_api("GET", f"/api/v1/events/{event_id}")
    assert (code, event["status_counts"], event["skipped_counts"]) == (200, {"SKIPPED": 1}, {"unreachable": 1})
