"""One partition, good jobs interleaved with records nobody meant to send: every good job is SENT, every bad
record is in the DLQ with its reason, and nothing is reported back for a retry.

The records go through Tansu over TCP (produced, then fetched by a consumer as the event source mapping
fetches them) and reach the worker in both Kafka event shapes; statuses and letters are read back from moto.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from notify.adapters.dynamodb.templates import DynamoTemplateStore
from notify.catalog import EVENT_TYPES
from notify.jobs import EventPlan, new_event_id
from notify.models import Channel, NotificationJob
from notify.records import Template

from local.auth_service import AuthService
from local.events import MSK, SELF_MANAGED_KAFKA, consumer_record, kafka_event
from local.infra import create_topic
from local.invoke import LambdaContext

from .helpers import call_api, queue_bodies

pytestmark = pytest.mark.usefixtures("local_stack", "purge_queues", "fresh_services")

CLUSTER_ARN = "arn:aws:kafka:us-east-1:123456789012:cluster/local/00000000-0000-0000-0000-000000000000-1"
RUNAWAY = "{% for a in range(100000) %}{% for b in range(100000) %}{{ a * b }}{% endfor %}{% endfor %}"
# Bad records, each with the DLQ reason it must end with.
POISON: dict[str, tuple[bytes, str]] = {
    "not UTF-8": (b"\xff\xfe\xfd binary \x00\x01", "invalid_job"),
    "Powertools' kafkaEventMsk.json value": (b'{"key":"value"}', "invalid_job"),
    "a JSON array": (b"[1, 2, 3]", "invalid_job"),
    "JSON nested 5,000 deep": (b"[" * 5000 + b"]" * 5000, "invalid_job"),
    "an empty value": (b"", "invalid_job"),
}


def _job(user: str, locale: str | None = None) -> NotificationJob:
    spec = EVENT_TYPES["user_registered"]
    now = datetime.now(UTC)
    plan = EventPlan(
        new_event_id(),
        spec,
        {"confirmation_url": "https://example.com/c", "first_name": "Ada"},
        [user],
        [Channel.EMAIL],
        spec.priority,
        now,
        now + timedelta(days=1),
        locale=locale,
    )
    return plan.jobs()[0]


def _template(stack_env: dict[str, str], locale: str, subject: str) -> None:
    """Store a template version straight into the table, as an old version (saved before checks) would be."""
    store = DynamoTemplateStore(boto3.client("dynamodb"), stack_env["TEMPLATES_TABLE"])
    tid = f"user_registered.email.{locale}"
    store.save(Template("user_registered", Channel.EMAIL, locale, 0, tid, subject=subject, body_text="hi"))


def _produce_and_fetch(bootstrap: str, values: list[bytes]) -> tuple[str, list[dict[str, Any]]]:
    """Write the values to partition 0 of a new topic, then fetch them back as Lambda's records: (topic, records)."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    topic = f"isolation-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, partitions=1)
    producer = KafkaProducer(bootstrap_servers=bootstrap, api_version=(2, 8, 0), acks="all")
    for value in values:
        producer.send(topic, value=value, key=b"k", partition=0)
    producer.flush(timeout=60)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, api_version=(2, 8, 0), enable_auto_commit=False)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    fetched: list[Any] = []
    deadline = time.monotonic() + 60
    while len(fetched) < len(values) and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            fetched += records
    consumer.close()
    assert [r.value for r in fetched] == values
    return topic, [consumer_record(r) for r in fetched]


@pytest.mark.parametrize("shape", [SELF_MANAGED_KAFKA, MSK])
def test_bad_records_on_one_partition_never_stop_the_good_ones(
    shape: str, kafka_bootstrap: str, stack_env: dict[str, str], auth_service: AuthService
) -> None:
    from worker.app import kafka_processor, lambda_handler

    tag = uuid.uuid4().hex[:6]
    _template(stack_env, "zz", "{{ 1/0 }}")
    _template(stack_env, "zr", RUNAWAY)
    for n, answer in enumerate([b"<html>502 Bad Gateway</html>", b"[]", b'{"email": "no-id@example.com"}']):
        auth_service.add_user(f"odd-{tag}-{n}", segments=())
        auth_service.faults.raw_answers[f"odd-{tag}-{n}"] = answer
    tab = json.loads(_job("demo-user-1").model_dump_json())
    tab["user_id"] = "demo\tuser"
    bad: list[tuple[bytes, str]] = [
        *POISON.values(),
        (json.dumps(tab).encode(), "invalid_job"),
        (_job("demo-user-2", locale="zz").model_dump_json().encode(), "template_error"),
        (_job("demo-user-3", locale="zr").model_dump_json().encode(), "template_error"),
        *[(_job(f"odd-{tag}-{n}").model_dump_json().encode(), "permanent_error") for n in range(3)],
        (_job("../../internal/admin?x=1").model_dump_json().encode(), "permanent_error"),
    ]
    good = [_job(f"demo-user-{n}") for n in range(40, 40 + len(bad) + 1)]
    values: list[bytes] = []
    for i, job in enumerate(good):  # good, bad, good, bad, ..., good
        values.append(job.model_dump_json().encode())
        if i < len(bad):
            values.append(bad[i][0])
    topic, records = _produce_and_fetch(kafka_bootstrap, values)
    event = kafka_event(records, event_source=shape, bootstrap_servers=kafka_bootstrap, event_source_arn=CLUSTER_ARN)

    started = time.monotonic()
    response = lambda_handler(event, LambdaContext("WorkerFunction", 120))
    elapsed = time.monotonic() - started

    assert response == {"batchItemFailures": []}, "nothing is handed back for a retry"
    assert kafka_processor.outcomes == {
        "sent": len(good),
        "dead_lettered": len(POISON) + 1,
        "failed": len(bad) - len(POISON) - 1,
    }
    for job in good:
        status, body = call_api("GET", f"/api/v1/notifications/{job.job_id}")
        assert status == 200 and body["status"] == "SENT", body
    bad_jobs = {json.loads(value)["job_id"] for value, reason in bad if reason != "invalid_job"}
    letters = queue_bodies(
        stack_env["DLQ_URL"],
        bad_jobs,
        where=lambda letter: letter.get("source", "").startswith(f"kafka:{topic}"),  # a record that is not a job
        count=len(bad),
    )
    assert sorted(letter["reason"] for letter in letters) == sorted(reason for _, reason in bad)
    raw_letters = [letter for letter in letters if "job" not in letter]
    kept = [base64.b64decode(x["raw_base64"]) if "raw_base64" in x else x["raw"].encode() for x in raw_letters]
    assert sorted(kept) == sorted(value for value, reason in bad if reason == "invalid_job")
    assert all(letter["source"].startswith("kafka:isolation-") for letter in raw_letters)
    # The id with a path in it stayed one path segment of the Auth URL, and the service token went nowhere else.
    assert "/api/v1/users/..%2F..%2Finternal%2Fadmin%3Fx%3D1" in auth_service.faults.paths
    assert not [p for p in auth_service.faults.paths if p.startswith("/internal")]
    print(f"\n{shape}: {len(values)} records, {len(bad)} bad, handled in {elapsed:.2f} s")
