"""ApiFunction with API Gateway v2 events against moto server (HTTP) and Tansu (Kafka over TCP)."""

from __future__ import annotations

import copy
import json
import os
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from local.emails import sent_emails
from local.events import load_event
from local.invoke import LambdaContext
from local.processes import wait_for

from .helpers import JobsTransport, call_api, kafka_values, queue_bodies, topic_ends

pytestmark = pytest.mark.usefixtures("local_stack")

EVENT: dict[str, Any] = {
    "event_type": "user_registered",
    "payload": {"confirmation_url": "https://example.com/confirm/abc", "first_name": "Ada"},
    "recipients": {"user_ids": ["demo-user-1"]},
}


def _event(**changes: object) -> dict:
    body = copy.deepcopy(EVENT)
    body.update(changes)
    return body


def test_the_sample_event_is_accepted_into_the_transport_queryable_and_sent_by_the_worker(
    transport: JobsTransport,
) -> None:
    from api.app import lambda_handler

    result = lambda_handler(load_event("api_post_event"), LambdaContext("ApiFunction"))
    assert result["statusCode"] == 202
    accepted = json.loads(result["body"])
    (job_id,) = accepted["job_ids"]
    received = transport.receive([job_id])
    (message,) = received.jobs
    assert (message["user_id"], message["channel"], message["event_id"]) == (
        "demo-user-1",
        "email",
        accepted["event_id"],
    )
    status, job = call_api("GET", f"/api/v1/notifications/{job_id}")
    assert (status, job["status"], job["user_id"]) == (200, "ACCEPTED", "demo-user-1")
    status, event = call_api("GET", f"/api/v1/events/{accepted['event_id']}")
    assert (status, event["status_counts"]) == (200, {"ACCEPTED": 1})
    assert transport.run(received) == {"sent": 1}
    assert call_api("GET", f"/api/v1/notifications/{job_id}")[1]["status"] == "SENT"


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (_event(event_type="nope"), "event_type"),
        (_event(payload={}), "payload.confirmation_url"),
        (_event(payload={"confirmation_url": "https://x.io", "extra": 1}), "payload.extra"),
        (_event(recipients={"user_ids": []}), "recipients.user_ids"),
        (_event(recipients={"user_ids": [f"u{i}" for i in range(1001)]}), "recipients.user_ids"),
        (_event(recipients={}), "recipients"),
        (_event(channels=["fax"]), "channels.0"),
        (_event(send_after="tomorrow"), "send_after"),
        (_event(expires_at="2020-01-01T00:00:00Z"), "expires_at"),
        (_event(unknown=True), "unknown"),
        (_event(payload={"confirmation_url": "https://x.io", "first_name": "x" * 101}), "payload.first_name"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(body: dict, loc: str) -> None:
    status, error = call_api("POST", "/api/v1/events", body)
    assert status == 422
    assert error["error"]["code"] == "validation_error"
    assert loc in [f["loc"] for f in error["error"]["fields"]]


def test_oversized_payload_is_422_and_malformed_json_400_not_5xx() -> None:
    status, error = call_api("POST", "/api/v1/events", b"{not json")
    assert (status, error["error"]["code"]) == (400, "invalid_json")
    huge = _event(
        event_type="review_liked",
        payload={
            "review_id": "r",
            "movie_id": "m",
            "movie_title": "x" * 300,
            "liked_by": "y" * 200,
            "likes_count": 1,
            "extra": "z" * 70_000,
        },
    )
    status, error = call_api("POST", "/api/v1/events", huge)
    assert status == 422


def test_keys_are_required_and_scoped() -> None:
    from notify.adapters.dynamodb.api_keys import DynamoApiKeyStore
    from notify.services.access import hash_key

    assert call_api("POST", "/api/v1/events", EVENT, key=None)[0] == 401
    assert call_api("POST", "/api/v1/events", EVENT, key="wrong")[0] == 401
    reader = f"reader-{uuid.uuid4().hex}"
    DynamoApiKeyStore(boto3.client("dynamodb"), os.environ["API_KEYS_TABLE"]).put(
        hash_key(reader), "reader", ["notifications:read"], "now"
    )
    status, error = call_api("POST", "/api/v1/events", EVENT, key=reader)
    assert (status, error["error"]["code"]) == (403, "forbidden")
    assert call_api("GET", "/health", key=None) == (200, {"status": "ok"})


def test_idempotency_key_replays_the_first_answer_and_refuses_a_different_body(transport: JobsTransport) -> None:
    key = f"idem-{uuid.uuid4().hex}"
    first = call_api("POST", "/api/v1/events", EVENT, idempotency_key=key)
    again = call_api("POST", "/api/v1/events", EVENT, idempotency_key=key)
    assert first[0] == again[0] == 202
    assert first[1] == again[1]
    job_ids = first[1]["job_ids"]
    # Every copy: Kafka's producer is idempotent (acks=all) and the queue has only what was sent, so a second copy
    # would be the replay publishing again.
    published = transport.receive(job_ids, copies=True).jobs
    assert sorted(m["job_id"] for m in published) == sorted(job_ids)  # the replay published nothing
    status, error = call_api(
        "POST", "/api/v1/events", _event(recipients={"user_ids": ["demo-user-2"]}), idempotency_key=key
    )
    assert (status, error["error"]["code"]) == (422, "idempotency_key_reused")


def test_batch_accepts_the_valid_events_and_reports_the_rest() -> None:
    status, body = call_api("POST", "/api/v1/events:batch", {"events": [EVENT, _event(event_type="nope"), EVENT]})
    assert status == 207
    assert [r["status"] for r in body["results"]] == [202, 422, 202]
    assert body["results"][0]["event_id"] != body["results"][2]["event_id"]
    assert call_api("POST", "/api/v1/events:batch", {"events": [EVENT] * 101})[0] == 422


def test_kafka_down_parks_jobs_in_the_delay_queue_and_still_answers_202(
    kafka_broker, stack_env: dict, fresh_services, purge_queues
) -> None:
    os.environ["KAFKA_TIMEOUT_SECONDS"] = "1"
    kafka_broker.stop()
    try:
        status, accepted = call_api("POST", "/api/v1/events", EVENT)
    finally:
        kafka_broker.start()
        os.environ["KAFKA_TIMEOUT_SECONDS"] = stack_env["KAFKA_TIMEOUT_SECONDS"]
    assert status == 202
    parked = queue_bodies(stack_env["DELAY_QUEUE_URL"], accepted["job_ids"], count=len(accepted["job_ids"]))
    assert [j["job_id"] for j in parked] == accepted["job_ids"]
    # Nothing is lost: the delay queue's event source mapping hands them to the worker, which sends them.
    from worker.app import lambda_handler as worker

    from local.events import sqs_event, sqs_record

    records = [sqs_record(json.dumps(j), "arn:aws:sqs:us-east-1:123456789012:DelayQueue") for j in parked]
    assert worker(sqs_event(records), LambdaContext("WorkerFunction", 120)) == {"batchItemFailures": []}
    status, job = call_api("GET", f"/api/v1/notifications/{accepted['job_ids'][0]}")
    assert (status, job["status"]) == (200, "SENT")


def test_nothing_is_accepted_when_neither_kafka_nor_the_queue_can_store(
    kafka_broker, stack_env: dict, fresh_services
) -> None:
    os.environ.update(KAFKA_TIMEOUT_SECONDS="1", DELAY_QUEUE_URL=stack_env["DELAY_QUEUE_URL"] + "-missing")
    kafka_broker.stop()
    try:
        status, error = call_api("POST", "/api/v1/events", EVENT)
    finally:
        kafka_broker.start()
        os.environ.update(stack_env)
    assert (status, error["error"]["code"]) == (503, "unavailable")


def test_while_kafka_is_down_only_the_first_request_waits_for_it_and_publishes_return_to_kafka_when_it_is_back(
    kafka_broker, kafka_bootstrap: str, stack_env: dict, fresh_services, purge_queues, monkeypatch
) -> None:
    from notify.adapters.kafka import KafkaJobPublisher

    # The API's own producer, counted: each call is a publish that waits for Kafka (up to KAFKA_TIMEOUT_SECONDS).
    attempts: list[int] = []
    produce = KafkaJobPublisher.publish

    def counted(publisher: KafkaJobPublisher, jobs: Any) -> None:
        attempts.append(len(jobs))
        produce(publisher, jobs)

    monkeypatch.setattr(KafkaJobPublisher, "publish", counted)
    os.environ["KAFKA_TIMEOUT_SECONDS"] = "1"
    kafka_broker.stop()
    job_ids: list[str] = []
    try:
        for n in range(1, 101):
            status, accepted = call_api("POST", "/api/v1/events", EVENT)
            assert status == 202, accepted
            job_ids += accepted["job_ids"]
            assert len(attempts) == 1, f"request {n} waited for Kafka: {len(attempts)} publishes reached the producer"
    finally:
        kafka_broker.start()
        os.environ["KAFKA_TIMEOUT_SECONDS"] = stack_env["KAFKA_TIMEOUT_SECONDS"]
    parked = queue_bodies(stack_env["DELAY_QUEUE_URL"], job_ids, count=len(job_ids))
    assert sorted(j["job_id"] for j in parked) == sorted(job_ids)  # every one of the 100 is stored

    # Kafka is back: a probe in the background finds it (no request waits for the probe), then jobs go to Kafka.
    ends = topic_ends(kafka_bootstrap, stack_env["KAFKA_TOPIC"])
    last: list[str] = []

    def published_to_kafka() -> bool:
        status, accepted = call_api("POST", "/api/v1/events", EVENT)
        assert status == 202, accepted
        last[:] = accepted["job_ids"]
        return len(attempts) > 1

    wait_for(published_to_kafka, "a publish to Kafka after the restart", timeout=60)
    (job,) = kafka_values(kafka_bootstrap, stack_env["KAFKA_TOPIC"], last[0], since=ends, count=1)
    assert job["job_id"] == last[0]


def _part_of_the_event_stored(stack_env: dict, kafka_broker, body: dict, **headers: str) -> tuple[int, dict]:
    """POST the event with Kafka down and the delay queue failing after its first batch of ten jobs."""
    from api import context as api_context

    calls = []

    def queue_fails_after_one_batch(**_: Any) -> Any:
        calls.append(1)
        if len(calls) > 1:
            raise EndpointConnectionError(endpoint_url="http://sqs")
        return None

    session = boto3._get_default_session()
    session.events.register("before-call.sqs.SendMessageBatch", queue_fails_after_one_batch, unique_id="part-way")
    api_context.services.cache_clear()  # clients copy the session's hooks when they are built
    os.environ["KAFKA_TIMEOUT_SECONDS"] = "1"
    kafka_broker.stop()
    try:
        return call_api("POST", "/api/v1/events", body, **headers)
    finally:
        session.events.unregister("before-call.sqs.SendMessageBatch", unique_id="part-way")
        api_context.services.cache_clear()


def _deliver_every_copy(stack_env: dict, job_ids: list[str]) -> list[str]:
    """Run the worker over every copy of these jobs parked in the delay queue, first copies first; the job ids it
    saw (other tests' messages stay where they are)."""
    from worker.app import lambda_handler as worker

    from local.events import sqs_event, sqs_record

    parked = queue_bodies(stack_env["DELAY_QUEUE_URL"], job_ids, count=len(job_ids))
    firsts: dict[str, dict] = {}
    seconds: list[dict] = []
    for job in parked:
        if job["job_id"] in firsts:
            seconds.append(job)
        else:
            firsts[job["job_id"]] = job
    arn = "arn:aws:sqs:us-east-1:123456789012:DelayQueue"
    for copies in (list(firsts.values()), seconds):
        if copies:
            records = [sqs_record(json.dumps(j), arn) for j in copies]
            assert worker(sqs_event(records), LambdaContext("WorkerFunction", 120)) == {"batchItemFailures": []}
    return [j["job_id"] for j in parked]


@pytest.mark.parametrize("retry_with", ["idempotency_key", "event_id", "the_503s_event_id"])
def test_a_retry_after_a_part_way_503_completes_the_event_and_sends_each_email_once(
    retry_with: str, kafka_broker, stack_env: dict, moto_endpoint: str, fresh_services, purge_queues
) -> None:
    marker = f"https://example.com/confirm/{uuid.uuid4().hex}"
    # 15 jobs: the delay queue takes 10, then fails. Users no other component test mails (test_worker counts its
    # own from 10 and asserts how many emails each received).
    users = [f"demo-user-{n}" for n in range(70, 85)]
    body = _event(payload={"confirmation_url": marker}, recipients={"user_ids": users}, channels=["email"])
    headers = {"idempotency_key": f"idem-{uuid.uuid4().hex}"} if retry_with == "idempotency_key" else {}
    if retry_with == "event_id":
        body["event_id"] = str(uuid.uuid4())
    try:
        status, error = _part_of_the_event_stored(stack_env, kafka_broker, body, **headers)
        assert (status, error["error"]["code"]) == (503, "unavailable")
        event_id = error["error"]["event_id"]
        if retry_with == "event_id":
            assert event_id == body["event_id"]
        if retry_with == "the_503s_event_id":  # a client that sent neither adds the id the 503 named
            body["event_id"] = event_id
        status, accepted = call_api("POST", "/api/v1/events", body, **headers)  # Kafka still down: the queue
    finally:
        kafka_broker.start()
        os.environ["KAFKA_TIMEOUT_SECONDS"] = stack_env["KAFKA_TIMEOUT_SECONDS"]
    assert (status, accepted["event_id"]) == (202, event_id)
    assert call_api("POST", "/api/v1/events", body, **headers) == (202, accepted)  # and again: the same answer

    published = _deliver_every_copy(stack_env, accepted["job_ids"])
    assert sorted(set(published)) == sorted(accepted["job_ids"])  # the first attempt's 10 are the same jobs
    assert len(published) > len(accepted["job_ids"])  # ...so the delay queue held duplicates
    sent = sent_emails(moto_endpoint, contains=marker)
    recipients = sorted(a for m in sent for a in m["destinations"]["ToAddresses"])
    assert recipients == sorted(f"{u}@example.com" for u in users)  # each exactly once
    for job_id in accepted["job_ids"]:
        assert call_api("GET", f"/api/v1/notifications/{job_id}")[1]["status"] == "SENT"


def test_an_event_id_names_one_event_whatever_the_retries() -> None:
    body = _event(event_id=str(uuid.uuid4()).upper())
    first = call_api("POST", "/api/v1/events", body)
    assert first[0] == 202 and first[1]["event_id"] == body["event_id"].lower()
    assert call_api("POST", "/api/v1/events", body) == first
    status, error = call_api("POST", "/api/v1/events", {**body, "recipients": {"user_ids": ["demo-user-2"]}})
    assert (status, error["error"]["code"]) == (409, "conflict")
    status, error = call_api("POST", "/api/v1/events", _event(event_id="not-a-uuid"))
    assert (status, error["error"]["fields"][0]["loc"]) == (422, "event_id")


def test_the_same_idempotency_key_and_body_name_the_same_event_even_after_the_record_is_gone() -> None:
    from api import context as api_context

    key = f"idem-{uuid.uuid4().hex}"
    status, first = call_api("POST", "/api/v1/events", EVENT, idempotency_key=key)
    assert status == 202
    table = boto3.resource("dynamodb").Table(os.environ["IDEMPOTENCY_TABLE"])
    # The record's key hashes what Powertools saw; find it by the event id it stored (every page of the scan).
    pages = (
        boto3.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=os.environ["IDEMPOTENCY_TABLE"],
            FilterExpression="contains(#data, :event_id)",
            ExpressionAttributeNames={"#data": "data"},
            ExpressionAttributeValues={":event_id": {"S": first["event_id"]}},
        )
    )
    (record,) = [{"id": item["id"]["S"]} for page in pages for item in page["Items"]]
    table.delete_item(Key={"id": record["id"]})  # as after a 503, or 24 hours later
    api_context.services.cache_clear()
    assert call_api("POST", "/api/v1/events", EVENT, idempotency_key=key) == (202, first)


def test_templates_are_versioned_validated_and_previewed() -> None:
    locale = f"zz-{uuid.uuid4().hex[:6]}"
    base = {"event_type": "new_film", "channel": "push", "locale": locale, "title": "{{ title }}", "body": "b"}
    assert call_api("POST", "/api/v1/templates", {**base, "body": "{{ nope }}"})[0] == 422
    status, created = call_api("POST", "/api/v1/templates", base)
    assert (status, created["version"]) == (201, 1)
    tid = created["template_id"]
    status, updated = call_api("PUT", f"/api/v1/templates/{tid}", {"title": "New: {{ title }}"})
    assert (status, updated["version"], updated["body"]) == (200, 2, "b")
    status, preview = call_api("POST", f"/api/v1/templates/{tid}/preview", {})
    assert (status, preview["title"]) == (200, "New: Dune")
    assert [v["version"] for v in call_api("GET", f"/api/v1/templates/{tid}/versions")[1]["items"]] == [2, 1]
    assert call_api("DELETE", f"/api/v1/templates/{tid}")[0] == 204
    assert call_api("GET", f"/api/v1/templates/{tid}")[0] == 404
    assert call_api("GET", f"/api/v1/templates/{tid}?version=1")[0] == 404
    assert call_api("GET", f"/api/v1/templates/{tid}/versions")[0] == 404
    status, preview = call_api("POST", f"/api/v1/templates/{tid}/preview?version=1", {})  # what a job got
    assert (status, preview["title"]) == (200, "Dune")
