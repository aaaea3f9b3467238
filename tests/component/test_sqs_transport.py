"""TRANSPORT sqs (issue 25) against moto server: the jobs queue's publisher, and the API publishing to it, falling
back to the delay queue, answering 503 when neither takes the jobs, and the worker sending what it received.

What both transports do alike (an accepted event's jobs reaching the worker and sent) is tested in both, through
the ``transport`` fixture (tests/component/conftest.py), in the modules of each feature."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError
from notify.adapters.sqs import SqsJobPublisher
from notify.errors import TransientError
from notify.models import Message

from local.emails import sent_emails
from local.events import received_message, sqs_event, sqs_record

from .helpers import call_api, hooked, job_for, job_status, queue_bodies, run_worker

pytestmark = pytest.mark.usefixtures("local_stack")


def _event() -> dict[str, Any]:
    return {
        "event_type": "user_registered",
        "payload": {"confirmation_url": f"https://example.com/confirm/{uuid.uuid4().hex}", "first_name": "Ada"},
        "recipients": {"user_ids": ["demo-user-1"]},
        "channels": ["email"],
    }


def _receive(url: str, count: int) -> list[dict[str, Any]]:
    """``count`` messages off the queue as the event source mapping receives them (attributes included), deleted."""
    sqs = boto3.client("sqs")
    messages: list[dict[str, Any]] = []
    for _ in range(20):
        if len(messages) >= count:
            break
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        for message in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        messages += [dict(message) for message in got]
    assert len(messages) == count, f"{len(messages)} messages on {url}, {count} expected"
    return messages


def _queue_arn(url: str) -> str:
    return boto3.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def test_25_jobs_are_3_batches_whose_messages_carry_each_job_and_its_attributes(jobs_queue: str) -> None:
    jobs: list[Message] = [job_for(f"demo-user-{n}") for n in range(1, 26)]
    calls: list[int] = []
    with hooked(
        "before-parameter-build.sqs.SendMessageBatch", lambda params, **_: calls.append(len(params["Entries"]))
    ):
        SqsJobPublisher(boto3.client("sqs"), jobs_queue).publish(jobs)  # a client built in the block is hooked
    assert sorted(calls) == [5, 10, 10]
    received = {m["Body"]: m for m in _receive(jobs_queue, 25)}
    for job in jobs:
        message = received[job.model_dump_json(exclude_none=True)]
        attributes = {name: a["StringValue"] for name, a in message["MessageAttributes"].items()}
        assert attributes == {"kind": "job", "event_id": job.event_id}  # type: ignore[union-attr]


def test_a_queue_that_does_not_exist_or_sqs_down_is_the_kafka_publishers_error(jobs_queue: str) -> None:
    job = [job_for("demo-user-1")]
    with pytest.raises(TransientError, match="SQS send failed"):
        SqsJobPublisher(boto3.client("sqs"), jobs_queue + "-missing").publish(job)
    down = boto3.client(
        "sqs", endpoint_url="http://127.0.0.1:9", config=Config(retries={"total_max_attempts": 1}, connect_timeout=1)
    )
    with pytest.raises(TransientError, match="SQS send failed"):
        SqsJobPublisher(down, jobs_queue).publish(job)


@pytest.mark.usefixtures("purge_queues")
def test_a_jobs_queue_that_fails_parks_the_jobs_in_the_delay_queue_and_still_answers_202(
    sqs_transport: str, stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBS_QUEUE_URL", sqs_transport + "-missing")
    status, accepted = call_api("POST", "/api/v1/events", _event())
    assert status == 202, accepted
    parked = queue_bodies(stack_env["DELAY_QUEUE_URL"], accepted["job_ids"], count=1)
    assert [job["job_id"] for job in parked] == accepted["job_ids"]


@pytest.mark.usefixtures("purge_queues")
def test_a_jobs_queue_that_fails_part_way_loses_nothing_and_sends_each_job_once(
    sqs_transport: str, stack_env: dict[str, str], moto_endpoint: str
) -> None:
    from api import context as api_context

    marker = f"https://example.com/confirm/{uuid.uuid4().hex}"
    users = [f"demo-user-{n}" for n in range(70, 85)]  # 15 jobs: two batches (test_api's part-way users, own marker)
    body = {**_event(), "payload": {"confirmation_url": marker}, "recipients": {"user_ids": users}}
    taken: list[int] = []

    def one_batch_then_down(params: dict[str, Any], **_: Any) -> None:
        if params["QueueUrl"] == sqs_transport:
            if taken:
                raise EndpointConnectionError(endpoint_url=sqs_transport)
            taken.append(len(params["Entries"]))

    try:
        with hooked("before-parameter-build.sqs.SendMessageBatch", one_batch_then_down):
            status, accepted = call_api("POST", "/api/v1/events", body)
    finally:
        api_context.services.cache_clear()  # its clients copied the hook when they were built
    assert status == 202, accepted
    job_ids = accepted["job_ids"]
    # One batch (of 10 or 5: they go out together) is on the jobs queue, and every job on the delay queue.
    on_the_jobs_queue = _receive(sqs_transport, taken[0])
    parked = queue_bodies(stack_env["DELAY_QUEUE_URL"], job_ids, count=len(job_ids))
    assert sorted(job["job_id"] for job in parked) == sorted(job_ids)
    from worker.app import sqs_processor

    arn = _queue_arn(sqs_transport)
    assert run_worker(sqs_event([received_message(m, arn) for m in on_the_jobs_queue])) == {"batchItemFailures": []}
    delay_arn = _queue_arn(stack_env["DELAY_QUEUE_URL"])
    assert run_worker(sqs_event([sqs_record(json.dumps(job), delay_arn) for job in parked])) == {
        "batchItemFailures": []
    }
    assert sqs_processor.outcomes == {"sent": len(job_ids) - taken[0], "duplicate": taken[0]}  # the claim drops them
    recipients = sorted(
        a for m in sent_emails(moto_endpoint, contains=marker) for a in m["destinations"]["ToAddresses"]
    )
    assert recipients == sorted(f"{user}@example.com" for user in users)  # each exactly once
    assert {job_status(job_id)["status"] for job_id in job_ids} == {"SENT"}


def test_nothing_is_accepted_when_neither_the_jobs_queue_nor_the_delay_queue_takes_the_jobs(
    sqs_transport: str, stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBS_QUEUE_URL", sqs_transport + "-missing")
    monkeypatch.setenv("DELAY_QUEUE_URL", stack_env["DELAY_QUEUE_URL"] + "-missing")
    status, error = call_api("POST", "/api/v1/events", _event())
    assert (status, error["error"]["code"]) == (503, "unavailable")
    assert error["error"]["event_id"]
