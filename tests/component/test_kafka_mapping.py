"""The local runner's Kafka event source mapping against Tansu and moto: Lambda's error handling controls, as
template.yaml configures them (partial batch responses, bounded retries, bisection, record age, the DLQ as the
on-failure destination). The function here is a stand-in handler: what is under test is the mapping."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any, Optional

import boto3
import pytest
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition

from local.infra import create_topic
from local.mappings import KafkaMapping
from local.stack import LocalStack

pytestmark = pytest.mark.usefixtures("purge_queues")


class Handler:
    """Fails the records whose value starts with ``bad`` (Powertools' Kafka partial batch response) and raises on
    a batch holding a record that starts with ``crash``."""

    name = "WorkerFunction"

    def __init__(self) -> None:
        self.seen: list[bytes] = []
        self.events: list[dict[str, Any]] = []

    def invoke(self, event: dict[str, Any]) -> Any:
        self.events.append(event)
        failures = []
        records = [r for rs in event["records"].values() for r in rs]
        values = [base64.b64decode(r["value"]) for r in records]
        self.seen += values
        if any(v.startswith(b"crash") for v in values):
            raise RuntimeError("the handler crashed")
        for record, value in zip(records, values, strict=True):
            if value.startswith(b"bad"):
                partition = f"{record['topic']}-{record['partition']}"
                failures.append({"itemIdentifier": {"partition": partition, "offset": record["offset"]}})
        return {"batchItemFailures": failures}


@pytest.fixture
def topic(kafka_bootstrap: str) -> str:
    name = f"mapping-{uuid.uuid4().hex[:8]}"
    create_topic(kafka_bootstrap, name, partitions=1)
    return name


def _produce(bootstrap: str, topic: str, values: list[bytes], timestamp_ms: Optional[int] = None) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, api_version=(2, 8, 0), acks="all")
    try:
        for value in values:
            producer.send(topic, value, key=b"k", partition=0, timestamp_ms=timestamp_ms)
        producer.flush(10)
    finally:
        producer.close()


def _committed(bootstrap: str, group: str, topic: str) -> Optional[int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, api_version=(2, 8, 0))
    try:
        offsets = admin.list_group_offsets({group: [TopicPartition(topic, 0)]}).get(group, {})
    finally:
        admin.close()
    found = offsets.get(TopicPartition(topic, 0))
    return None if found is None else int(found.offset)


def _dead_letters(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    found = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for m in messages:
            found.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return found


@pytest.fixture
def run(local_stack: LocalStack, topic: str) -> Iterator[Any]:
    """Start the worker's Kafka mapping (as template.yaml configures it) on ``topic`` with a stand-in handler,
    until the group has committed ``until``; yield a function doing that."""
    started: list[KafkaMapping] = []
    wiring = local_stack.kafka_wiring("WorkerFunction")
    group = f"group-{uuid.uuid4().hex[:8]}"

    def run(handler: Handler, until: int, **changes: Any) -> KafkaMapping:
        source = dataclasses.replace(wiring.source, consumer_group=group, **changes)
        mapping = KafkaMapping(handler, dataclasses.replace(wiring, source=source, topic=topic))
        mapping.RETRY_DELAY = 0.05
        started.append(mapping)
        mapping.start()
        deadline = time.monotonic() + 45
        while (_committed(local_stack.bootstrap, group, topic) or 0) < until:
            assert time.monotonic() < deadline, f"the mapping never committed {until}; handler saw {handler.seen}"
            time.sleep(0.3)
        return mapping

    yield run
    for mapping in started:
        mapping.stop()


def test_the_mapping_reads_its_error_handling_from_the_template(local_stack: LocalStack) -> None:
    wiring = local_stack.kafka_wiring("WorkerFunction")
    source = wiring.source
    assert source.event_source == "SelfManagedKafka"  # Tansu: the template's default KafkaMode
    assert source.report_batch_item_failures
    assert source.retry_limit is not None and 0 <= source.retry_limit <= 10
    assert source.record_age_limit is not None
    assert wiring.on_failure_url == local_stack.infra.queues["DeadLetterQueue"]  # type: ignore[union-attr]


def test_a_reported_failure_is_retried_from_its_offset_then_dead_lettered(
    run: Any, local_stack: LocalStack, topic: str, stack_env: dict[str, str]
) -> None:
    _produce(local_stack.bootstrap, topic, [b"ok-0", b"bad-1", b"ok-2", b"ok-3"])
    handler = Handler()
    mapping = run(handler, until=4)
    limit = mapping._source.retry_limit
    assert handler.seen.count(b"bad-1") == limit + 1  # the first invocation and every retry
    assert handler.seen.count(b"ok-0") == 1  # before the failed offset: committed at once
    assert handler.seen.count(b"ok-2") == limit + 1  # after it: re-delivered with it, as Lambda does
    assert all(e["eventSource"] == "SelfManagedKafka" and "eventSourceArn" not in e for e in handler.events)
    (record,) = _dead_letters(stack_env["DLQ_URL"])
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == limit + 1
    assert record["requestContext"]["functionArn"].endswith(":function:WorkerFunction")
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    info = record["KafkaBatchInfo"]
    assert info["batchSize"] == 1 and info["bootstrapServers"] == local_stack.bootstrap
    assert info["recordsInfo"][f"{topic}-0"]["firstRecordOffset"] == "1"
    assert info["recordsInfo"][f"{topic}-0"]["lastRecordOffset"] == "1"
    assert "payload" not in record and "eventSourceArn" not in info  # metadata only; no ARN for self-managed


def test_a_crashing_batch_is_bisected_down_to_the_record_that_crashes(
    run: Any, local_stack: LocalStack, topic: str, stack_env: dict[str, str]
) -> None:
    _produce(local_stack.bootstrap, topic, [b"ok-0", b"ok-1", b"crash-2", b"ok-3", b"ok-4"])
    handler = Handler()
    run(handler, until=5)
    assert {b"ok-0", b"ok-1", b"ok-3", b"ok-4"} <= set(handler.seen)
    (record,) = _dead_letters(stack_env["DLQ_URL"])
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["KafkaBatchInfo"]["recordsInfo"][f"{topic}-0"]["firstRecordOffset"] == "2"


def test_without_bisection_a_crashing_batch_is_dead_lettered_whole(
    run: Any, local_stack: LocalStack, topic: str, stack_env: dict[str, str]
) -> None:
    _produce(local_stack.bootstrap, topic, [b"ok-0", b"crash-1"])
    handler = Handler()
    run(handler, until=2, bisect_batch_on_function_error=False, maximum_retry_attempts=1)
    offsets = sorted(
        r["KafkaBatchInfo"]["recordsInfo"][f"{topic}-0"]["firstRecordOffset"]
        for r in _dead_letters(stack_env["DLQ_URL"])
    )
    assert offsets == ["0", "1"]  # Lambda discards the batch a function error keeps failing


def test_a_record_older_than_the_maximum_age_is_never_delivered(
    run: Any, local_stack: LocalStack, topic: str, stack_env: dict[str, str]
) -> None:
    old = int((time.time() - 2 * 86400) * 1000)
    _produce(local_stack.bootstrap, topic, [b"ok-old"], timestamp_ms=old)
    _produce(local_stack.bootstrap, topic, [b"ok-new"])
    handler = Handler()
    run(handler, until=2, maximum_record_age_seconds=3600)
    assert handler.seen == [b"ok-new"]
    (record,) = _dead_letters(stack_env["DLQ_URL"])
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 0 and record["responseContext"] is None


def test_an_answer_naming_no_record_of_the_batch_fails_the_whole_batch(
    run: Any, local_stack: LocalStack, topic: str, stack_env: dict[str, str]
) -> None:
    class Confused(Handler):
        def invoke(self, event: dict[str, Any]) -> Any:
            super().invoke(event)
            return {"batchItemFailures": [{"itemIdentifier": "not-a-kafka-identifier"}]}

    _produce(local_stack.bootstrap, topic, [b"ok-0"])
    handler = Confused()
    run(handler, until=1, maximum_retry_attempts=2)
    assert handler.seen == [b"ok-0"] * 3
    assert len(_dead_letters(stack_env["DLQ_URL"])) == 1
