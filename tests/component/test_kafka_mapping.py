"""The local runner's Kafka event source mapping against Tansu and moto: Lambda's error handling controls, as
template.yaml configures them (partial batch responses, bounded retries, bisection, record age, the DLQ as the
on-failure destination), and its group membership while a batch runs long. The function here is a stand-in
handler: what is under test is the mapping."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Optional, Union

import boto3
import pytest
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.admin import MemberToRemove
from kafka.structs import MemberState

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
        self.mapping: Optional[KafkaMapping] = None  # the mapping that invokes it, once started

    def membership(self) -> tuple[str, int]:
        """The mapping's member id and generation in its consumer group."""
        assert self.mapping is not None and self.mapping._consumer is not None
        found = self.mapping._consumer.group_metadata()  # a snapshot, safe while the mapping polls
        return (str(found.member_id), int(found.generation_id))

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


def _produce(
    bootstrap: str, topic: str, values: list[bytes], timestamp_ms: Optional[int] = None, partition: int = 0
) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, api_version=(2, 8, 0), acks="all")
    try:
        for value in values:
            producer.send(topic, value, key=b"k", partition=partition, timestamp_ms=timestamp_ms)
        producer.flush(10)
    finally:
        producer.close()


def _committed(bootstrap: str, group: str, topic: str, partition: int = 0) -> Optional[int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, api_version=(2, 8, 0))
    try:
        offsets = admin.list_group_offsets({group: [TopicPartition(topic, partition)]}).get(group, {})
    finally:
        admin.close()
    found = offsets.get(TopicPartition(topic, partition))
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
    until the group has committed ``until`` (on partition 0, or by partition); yield a function doing that."""
    started: list[KafkaMapping] = []
    wiring = local_stack.kafka_wiring("WorkerFunction")
    group = f"group-{uuid.uuid4().hex[:8]}"

    def run(
        handler: Handler,
        until: Union[int, dict[int, int]],
        max_poll_interval: Optional[float] = None,
        keep_alive: Optional[float] = None,
        on: str = topic,
        **changes: Any,
    ) -> KafkaMapping:
        source = dataclasses.replace(wiring.source, consumer_group=group, **changes)
        mapping = KafkaMapping(
            handler, dataclasses.replace(wiring, source=source, topic=on), max_poll_interval=max_poll_interval
        )
        mapping.RETRY_DELAY = 0.05
        if keep_alive is not None:
            mapping.KEEP_ALIVE = keep_alive
        handler.mapping = mapping
        started.append(mapping)
        mapping.start()
        deadline = time.monotonic() + 60
        for partition, offset in (until if isinstance(until, dict) else {0: until}).items():
            while (_committed(local_stack.bootstrap, group, on, partition) or 0) < offset:
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


# --- group membership while a batch runs long --------------------------------------------------------------

INTERVAL = 2.0  # a max.poll.interval short enough for a test; the stack's is the function's timeout


class Slow(Handler):
    """Takes ``seconds`` per invocation (the first ``times`` ones), and notes the group membership it ran in."""

    def __init__(self, seconds: float, times: int = 1_000_000) -> None:
        super().__init__()
        self.seconds = seconds
        self.times = times
        self.generations: list[tuple[str, int]] = []

    def invoke(self, event: dict[str, Any]) -> Any:
        self.generations.append(self.membership())
        if len(self.events) < self.times:
            time.sleep(self.seconds)  # the scenario itself: longer than the max poll interval
        return super().invoke(event)


def _mapping_logs(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "local.mappings" and r.levelno >= level]


def test_a_batch_running_past_the_max_poll_interval_keeps_the_group_and_is_committed_once(
    run: Any, local_stack: LocalStack, topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    _produce(local_stack.bootstrap, topic, [b"ok-0", b"ok-1", b"ok-2"])
    handler = Slow(3 * INTERVAL)
    caplog.set_level(logging.INFO, logger="local.mappings")
    mapping = run(handler, until=3, max_poll_interval=INTERVAL)
    assert handler.seen == [b"ok-0", b"ok-1", b"ok-2"]  # one invocation, not delivered again
    assert handler.membership() == handler.generations[0]  # never put out of the group: same member, generation
    assert mapping.max_poll_interval == INTERVAL
    assert _mapping_logs(caplog) == []


def test_a_bisected_batch_whose_invocations_outlast_the_max_poll_interval_keeps_the_group(
    run: Any, local_stack: LocalStack, topic: str, stack_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    _produce(local_stack.bootstrap, topic, [b"ok-0", b"ok-1", b"crash-2", b"ok-3"])
    handler = Slow(0.6 * INTERVAL)
    caplog.set_level(logging.INFO, logger="local.mappings")
    run(handler, until=4, max_poll_interval=INTERVAL, maximum_retry_attempts=0)
    # One poll, five invocations (the batch, its halves, the crashing half's halves): none of them twice.
    assert [len(e["records"][f"{topic}-0"]) for e in handler.events] == [4, 2, 2, 1, 1]
    assert set(handler.generations) == {handler.membership()}
    (record,) = _dead_letters(stack_env["DLQ_URL"])
    assert record["KafkaBatchInfo"]["recordsInfo"][f"{topic}-0"]["firstRecordOffset"] == "2"
    assert not any(r.exc_info for r in caplog.records)
    assert not [r for r in _mapping_logs(caplog) if "comes again" in r.getMessage()]


def test_a_member_removed_mid_batch_rejoins_while_the_function_runs_and_loses_no_record(
    run: Any, local_stack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    topic = f"mapping-{uuid.uuid4().hex[:8]}"
    create_topic(local_stack.bootstrap, topic, partitions=2)
    _produce(local_stack.bootstrap, topic, [b"ok-0", b"ok-1"], partition=0)

    class Removed(Handler):
        """On its first invocation: records arrive on partition 1, an operator removes the mapping's member
        from the group, and the invocation lasts until the mapping has joined again. That rejoin's poll assigns
        the partitions afresh (not paused) and usually fetches partition 1's records: they must be set aside."""

        removed: Optional[str] = None

        def rejoined(self) -> bool:
            assert self.mapping is not None and self.mapping._consumer is not None
            found = self.mapping._consumer.group_metadata()
            return found.member_id not in ("", self.removed) and found.state == MemberState.STABLE

        def invoke(self, event: dict[str, Any]) -> Any:
            if self.removed is None:
                assert self.mapping is not None
                self.removed, _ = self.membership()
                _produce(local_stack.bootstrap, topic, [b"ok-p1-0", b"ok-p1-1"], partition=1)
                admin = KafkaAdminClient(bootstrap_servers=local_stack.bootstrap, api_version=(2, 8, 0))
                try:
                    group = self.mapping._source.consumer_group
                    result = admin.remove_group_members(group, [MemberToRemove(member_id=self.removed)])
                finally:
                    admin.close()
                assert [error.__name__ for error in result.values()] == ["NoError"], result
                _wait_for(self.rejoined, "the mapping joined the group again")
            return super().invoke(event)

    handler = Removed()
    caplog.set_level(logging.DEBUG, logger="local.mappings")
    run(handler, until={0: 2, 1: 2}, on=topic)
    assert sorted(handler.seen) == [b"ok-0", b"ok-1", b"ok-p1-0", b"ok-p1-1"]  # each once, none skipped
    assert handler.membership()[0] != handler.removed  # it did rejoin, as a new member
    assert _mapping_logs(caplog) == []  # the rejoin happened while the function ran: nothing to report


def test_a_member_put_out_of_the_group_logs_one_line_and_the_batch_comes_again(
    run: Any, local_stack: LocalStack, topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Without the keep-alive polls, kafka-python leaves the group once the max poll interval is over, and the
    # commit afterwards is refused: the failure this runner used to log as a traceback, batch after batch.
    _produce(local_stack.bootstrap, topic, [b"ok-0", b"ok-1"])
    handler = Slow(3 * INTERVAL, times=1)
    caplog.set_level(logging.INFO, logger="local.mappings")
    run(handler, until=2, max_poll_interval=INTERVAL, keep_alive=3600)
    assert handler.seen == [b"ok-0", b"ok-1"] * 2  # at least once: delivered again from the committed offset
    (line,) = _mapping_logs(caplog)
    assert line.levelno == logging.WARNING and line.exc_info is None and "\n" not in line.getMessage()
    assert "CommitFailedError" in line.getMessage() and "comes again" in line.getMessage()


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)
