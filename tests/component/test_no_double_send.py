"""No double send by construction (issue 9, item 1): WorkerFunction against moto server and the demo Auth service.

Faults no peer can produce (an answer lost after the request reached moto, a connect timeout, SNS throttling one
endpoint) are injected with botocore event hooks on the default session, registered before the worker builds its
clients (``fresh_services``), so they run inside the clients' own retry loop: ``before-send`` is emitted once per
HTTP attempt, which is also how the attempts are counted.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError
from botocore.httpsession import URLLib3Session
from notify.catalog import EVENT_TYPES
from notify.jobs import EventPlan, new_event_id
from notify.models import Channel, NotificationJob, Priority

from local.auth_service import AuthService
from local.events import kafka_record, msk_event, sqs_event, sqs_record
from local.invoke import LambdaContext

from .helpers import call_api, emails_to, push_endpoints, queue_bodies

pytestmark = pytest.mark.usefixtures("local_stack", "purge_queues", "fresh_services")
_users = itertools.count(200)


def _user(auth: AuthService) -> str:
    user = f"nds-user-{next(_users)}-{uuid.uuid4().hex[:6]}"
    auth.add_user(user, segments=(), email=f"{user}@example.com")
    return user


def _job(user: str, event_type: str = "user_registered", channel: Channel = Channel.EMAIL) -> NotificationJob:
    spec = EVENT_TYPES[event_type]
    now = datetime.now(UTC)
    plan = EventPlan(
        new_event_id(), spec, spec.sample_payload(), [user], [channel], spec.priority, now, now + timedelta(days=1)
    )
    (job,) = plan.jobs()
    return job


def _outcomes(*jobs: NotificationJob) -> dict[str, int]:
    from worker.app import kafka_processor, lambda_handler

    records = [kafka_record("notification-jobs", 0, i, j.model_dump_json().encode(), b"k") for i, j in enumerate(jobs)]
    assert lambda_handler(msk_event(records, "127.0.0.1:9092"), LambdaContext("WorkerFunction", 120)) == {
        "batchItemFailures": []
    }
    return kafka_processor.outcomes


def _retry_from_delay_queue(stack_env: dict[str, str], job_id: str) -> dict[str, int]:
    """The job's retry from the delay queue (after its DelaySeconds), handed to the worker as SQS would.

    Messages other tests left delayed (a purge cannot see them) stay where they are.
    """
    from worker.app import lambda_handler, sqs_processor

    bodies = queue_bodies(stack_env["DELAY_QUEUE_URL"], [job_id], count=1)
    records = [sqs_record(json.dumps(b), "arn:aws:sqs:us-east-1:123456789012:DelayQueue") for b in bodies]
    assert lambda_handler(sqs_event(records), LambdaContext("WorkerFunction", 120)) == {"batchItemFailures": []}
    return sqs_processor.outcomes


def _status(job_id: str) -> dict[str, Any]:
    status, body = call_api("GET", f"/api/v1/notifications/{job_id}")
    assert status == 200
    return body


class Hooks:
    """botocore hooks on the default session, removed after the test."""

    def __init__(self) -> None:
        self.session = boto3._get_default_session()
        self.registered: list[tuple[str, str]] = []

    def on(self, event: str, handler: Any) -> None:
        unique = f"nds-{uuid.uuid4().hex}"
        self.session.events.register(event, handler, unique_id=unique)
        self.registered.append((event, unique))

    def close(self) -> None:
        for event, unique in self.registered:
            self.session.events.unregister(event, unique_id=unique)


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    h = Hooks()
    yield h
    h.close()


def _lose_the_answer(attempts: list[str]) -> Any:
    """A ``before-send`` hook: the request reaches moto (which sends the email), then its answer is lost."""
    http = URLLib3Session()

    def send(request: AWSPreparedRequest, **_: Any) -> None:
        attempts.append(request.url)
        response = http.send(request)
        assert response.status_code == 200
        raise ReadTimeoutError(endpoint_url=request.url)

    return send


def test_a_send_email_whose_answer_is_lost_is_sent_once_and_fails_as_outcome_unknown(
    auth_service: AuthService, moto_endpoint: str, stack_env: dict[str, str], hooks: Hooks
) -> None:
    attempts: list[str] = []
    hooks.on("before-send.sesv2.SendEmail", _lose_the_answer(attempts))
    user = _user(auth_service)
    job = _job(user)
    assert _outcomes(job) == {"failed": 1}
    assert len(attempts) == 1  # the SDK did not re-send it
    assert len(emails_to(moto_endpoint, f"{user}@example.com")) == 1
    body = _status(job.job_id)
    assert (body["status"], body["history"][-1]["detail"]["reason"]) == ("FAILED", "outcome_unknown")
    assert "ReadTimeout" in body["last_error"] or "Read timeout" in body["last_error"]
    (letter,) = queue_bodies(stack_env["DLQ_URL"], [job.job_id], count=1)
    assert (letter["reason"], letter["job"]["job_id"]) == ("outcome_unknown", job.job_id)
    assert "RETRYING" not in [h["status"] for h in body["history"]]  # no retry of an ambiguous send
    assert _outcomes(job) == {"duplicate": 1}  # a redelivery does not send it either
    assert len(emails_to(moto_endpoint, f"{user}@example.com")) == 1


def test_botocore_defaults_would_have_sent_it_several_times(
    moto_endpoint: str, stack_env: dict[str, str], hooks: Hooks
) -> None:
    """The control: the same lost answer with a default client is re-sent by the SDK itself."""
    attempts: list[str] = []
    hooks.on("before-send.sesv2.SendEmail", _lose_the_answer(attempts))
    address = f"control-{uuid.uuid4().hex[:6]}@example.com"
    with pytest.raises(ReadTimeoutError):
        boto3.client("sesv2").send_email(
            FromEmailAddress=stack_env["SENDER_EMAIL"],
            Destination={"ToAddresses": [address]},
            Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}},
        )
    assert len(attempts) > 1
    assert len(emails_to(moto_endpoint, address)) == len(attempts)


def test_a_connect_timeout_sent_nothing_so_it_retries_and_is_delivered_once(
    auth_service: AuthService, moto_endpoint: str, stack_env: dict[str, str], hooks: Hooks
) -> None:
    attempts: list[str] = []
    failing = [True]

    def no_connection(request: AWSPreparedRequest, **_: Any) -> None:
        attempts.append(request.url)
        if failing.pop() if failing else False:
            raise ConnectTimeoutError(endpoint_url=request.url)

    hooks.on("before-send.sesv2.SendEmail", no_connection)
    user = _user(auth_service)
    job = _job(user)
    assert _outcomes(job) == {"retrying": 1}
    assert len(attempts) == 1
    assert emails_to(moto_endpoint, f"{user}@example.com") == []
    assert _retry_from_delay_queue(stack_env, job.job_id) == {"sent": 1}
    assert len(attempts) == 2  # one HTTP attempt per worker attempt
    assert len(emails_to(moto_endpoint, f"{user}@example.com")) == 1


def test_a_push_retry_publishes_only_to_the_endpoints_not_yet_done(
    auth_service: AuthService, stack_env: dict[str, str], hooks: Hooks
) -> None:
    endpoints = push_endpoints(3)
    published: Counter[str] = Counter()  # HTTP attempts that reached moto, per endpoint
    throttle = [endpoints[1]]

    def count(request: AWSPreparedRequest, **_: Any) -> None:
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        published[parse_qs(body)["TargetArn"][0]] += 1

    def throttle_second(params: dict[str, Any], **_: Any) -> Any:
        target = params["body"].get("TargetArn")  # the serialized request: SNS's query protocol body
        if target in throttle:
            throttle.remove(target)
            error = {"Code": "Throttling", "Message": "injected Throttling"}
            answer = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}
            return AWSResponse("https://sns", 400, {}, None), answer
        return None

    hooks.on("before-send.sns.Publish", count)
    hooks.on("before-call.sns.Publish", throttle_second)
    user = f"push-user-{uuid.uuid4().hex[:6]}"
    auth_service.add_user(user, segments=(), email=f"{user}@example.com", push_endpoints=endpoints)
    job = _job(user, "review_liked", Channel.PUSH).model_copy(update={"priority": Priority.HIGH})  # retry in ≤ 5 s
    assert _outcomes(job) == {"retrying": 1}
    assert published == {endpoints[0]: 1}
    retrying = _status(job.job_id)
    assert retrying["status"] == "RETRYING" and retrying["history"][-1]["detail"]["endpoints_done"] == 1
    assert _retry_from_delay_queue(stack_env, job.job_id) == {"sent": 1}
    assert published == {endpoint: 1 for endpoint in endpoints}  # 1 and 3 exactly once each, 2 once it passed
    body = _status(job.job_id)
    assert body["status"] == "SENT" and len(body["provider_message_id"].split(",")) == 3
