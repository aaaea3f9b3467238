"""The jobs' transport (issue 25): TRANSPORT's settings, the publisher each mode gets, and the SQS jobs queue's
batches, partial failures and the ingest fallback they lead to (a fake SQS client; moto in tests/component)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from notify.adapters.kafka import KafkaConfig
from notify.adapters.sqs import SqsDelayQueue, SqsJobPublisher
from notify.adapters.transport import publisher_for
from notify.errors import IngestUnavailable, TransientError
from notify.models import EventRequest, Message
from notify.publish_circuit import CircuitPublisher
from notify.services.ingest import IngestService
from notify.settings import KafkaSettings, SchedulerSettings, SettingsError, load

from .fakes import MemoryQueue, MemoryStore

STORES = {
    "NOTIFICATIONS_TABLE": "n",
    "TEMPLATES_TABLE": "t",
    "CAMPAIGNS_TABLE": "c",
    "DELAY_QUEUE_URL": "http://q/delay",
    "DLQ_URL": "http://q/dlq",
}
KAFKA = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "KAFKA_TOPIC": "notification-jobs"}
JOBS_QUEUE = "http://q/jobs"
SQS = {"TRANSPORT": "sqs", "JOBS_QUEUE_URL": JOBS_QUEUE}
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


# --- settings --------------------------------------------------------------------------------------------------


def test_kafka_is_the_default_transport_and_needs_its_brokers_and_topic() -> None:
    settings = load(SchedulerSettings, {**STORES, **KAFKA})
    assert (settings.transport, settings.jobs_queue_url) == ("kafka", None)
    with pytest.raises(SettingsError) as info:
        load(SchedulerSettings, STORES)
    assert "KAFKA_BOOTSTRAP_SERVERS: Field required; KAFKA_TOPIC: Field required" in str(info.value)
    assert "JOBS_QUEUE_URL" not in str(info.value)


def test_the_sqs_transport_needs_the_jobs_queue_and_nothing_of_kafka() -> None:
    settings = load(SchedulerSettings, {**STORES, **SQS})
    assert (settings.transport, settings.jobs_queue_url, settings.kafka_topic) == ("sqs", JOBS_QUEUE, None)
    # Kafka's variables, left by a template or a copied environment, are not checked: nothing reads them.
    load(KafkaSettings, {**SQS, "KAFKA_AUTH": "scram-sha-512", "KAFKA_BOOTSTRAP_SERVERS": ""})


def test_a_missing_jobs_queue_is_named_with_every_other_problem() -> None:
    with pytest.raises(SettingsError) as info:
        load(SchedulerSettings, {"TRANSPORT": "sqs", "JOBS_QUEUE_URL": "", "NOTIFICATIONS_TABLE": "n"})
    message = str(info.value)
    assert "JOBS_QUEUE_URL: Field required (TRANSPORT sqs publishes the jobs to this queue)" in message
    assert "DLQ_URL: Field required" in message
    assert "KAFKA" not in message


def test_an_unknown_transport_is_refused() -> None:
    with pytest.raises(SettingsError, match="TRANSPORT: Input should be 'kafka' or 'sqs'"):
        load(KafkaSettings, {**KAFKA, "TRANSPORT": "rabbitmq"})


def test_the_kafka_auth_checks_still_hold_with_the_kafka_transport() -> None:
    with pytest.raises(SettingsError, match="KAFKA_AUTH scram-sha-512 needs KAFKA_SECRET_ARN"):
        load(KafkaSettings, {**KAFKA, "TRANSPORT": "kafka", "KAFKA_AUTH": "scram-sha-512"})


def test_a_kafka_config_is_not_made_of_sqs_settings() -> None:
    with pytest.raises(ValueError, match="TRANSPORT sqs configures no Kafka brokers or topic"):
        KafkaConfig.from_settings(load(KafkaSettings, SQS))


# --- the publisher each mode gets ------------------------------------------------------------------------------


class FakeSqs:
    """``send_message_batch`` recorded (thread-safe: the chunks of one send go out together). ``refuse`` picks the
    entries SQS reports as failed, ``fail`` the calls that raise, each from the call's entries."""

    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.taken: list[dict[str, Any]] = []
        self.refuse: Callable[[dict[str, Any], int], bool] = lambda entry, attempt: False
        self.fail: Callable[[list[dict[str, Any]]], bool] = lambda entries: False
        self._lock = threading.Lock()

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        with self._lock:
            self.calls.append(Entries)
            if self.fail(Entries):
                raise ClientError({"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue"}}, "SendMessageBatch")
            failed = [e for e in Entries if self.refuse(e, self._attempt(e))]
            self.taken += [e for e in Entries if e not in failed]
        return {"Failed": [{"Id": e["Id"], "Code": "InternalError", "SenderFault": False} for e in failed]}

    def _attempt(self, entry: dict[str, Any]) -> int:
        """How many calls have carried this entry's message, this one included."""
        return sum(1 for call in self.calls for e in call if e["MessageBody"] == entry["MessageBody"])


def test_the_kafka_transport_publishes_to_kafka_behind_its_circuit() -> None:
    publisher = publisher_for(load(KafkaSettings, KAFKA), FakeSqs())  # type: ignore[arg-type]
    assert isinstance(publisher, CircuitPublisher) and publisher.name == "Kafka"


def test_the_sqs_transport_publishes_to_the_jobs_queue() -> None:
    sqs = FakeSqs()
    publisher = publisher_for(load(KafkaSettings, SQS), sqs)  # type: ignore[arg-type]
    assert isinstance(publisher, SqsJobPublisher)
    publisher.publish(_jobs(3))
    assert [json.loads(e["MessageBody"])["user_id"] for e in sqs.taken] == ["u00", "u01", "u02"]


# --- batches and partial failures ------------------------------------------------------------------------------


def _request(users: int) -> EventRequest:
    return EventRequest.model_validate(
        {
            "event_type": "user_registered",
            "payload": {"confirmation_url": "https://example.com/confirm/abc", "first_name": "Ada"},
            "recipients": {"user_ids": [f"u{n:02}" for n in range(users)]},
            "channels": ["email"],
        }
    )


def _jobs(users: int) -> list[Message]:
    store, publisher, queue = MemoryStore(), _Publisher(), MemoryQueue()
    IngestService(store, publisher, queue, lambda: T0).accept(_request(users))
    return publisher.published


class _Publisher:
    def __init__(self) -> None:
        self.published: list[Message] = []

    def publish(self, jobs: Any) -> None:
        self.published += jobs


def test_the_jobs_queue_takes_the_delay_queues_messages_in_batches_of_ten() -> None:
    sqs, jobs = FakeSqs(), _jobs(25)
    SqsJobPublisher(sqs, JOBS_QUEUE).publish(jobs)  # type: ignore[arg-type]
    assert sorted(len(call) for call in sqs.calls) == [5, 10, 10]
    delay = FakeSqs()
    SqsDelayQueue(delay, "http://q/delay").enqueue(jobs)  # type: ignore[arg-type]
    assert sorted(map(_key, sqs.taken)) == sorted(map(_key, delay.taken))  # the same bodies and attributes
    entry = next(e for e in sqs.taken if json.loads(e["MessageBody"])["job_id"] == jobs[0].job_id)  # type: ignore[union-attr]
    assert entry["MessageAttributes"] == {
        "kind": {"DataType": "String", "StringValue": "job"},
        "event_id": {"DataType": "String", "StringValue": jobs[0].event_id},  # type: ignore[union-attr]
    }
    assert entry["DelaySeconds"] == 0


def _key(entry: dict[str, Any]) -> tuple[str, str]:
    return entry["MessageBody"], json.dumps(entry["MessageAttributes"], sort_keys=True)


def test_entries_sqs_refuses_are_sent_once_more() -> None:
    sqs = FakeSqs()
    sqs.refuse = lambda entry, attempt: entry["Id"] in ("3", "7") and attempt == 1
    SqsJobPublisher(sqs, JOBS_QUEUE).publish(_jobs(10))  # type: ignore[arg-type]
    assert [len(call) for call in sqs.calls] == [10, 2]
    assert len(sqs.taken) == 10


def test_entries_refused_twice_are_a_transient_error() -> None:
    sqs = FakeSqs()
    sqs.refuse = lambda entry, attempt: entry["Id"] == "3"
    with pytest.raises(TransientError, match="SQS refused 1 messages"):
        SqsJobPublisher(sqs, JOBS_QUEUE).publish(_jobs(10))  # type: ignore[arg-type]


def _fails_on(user: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda entries: any(json.loads(e["MessageBody"])["user_id"] == user for e in entries)


def test_a_batch_that_fails_part_way_is_a_transient_error_and_ingestion_parks_every_job() -> None:
    # 25 jobs: the batch holding u12 fails, the others may be taken. The Kafka publisher's error type, so
    # publish_durably parks the whole set in the delay queue; the copies already on the jobs queue are the same job
    # ids, which the worker's claim drops when they come second.
    sqs = FakeSqs()
    sqs.fail = _fails_on("u12")
    with pytest.raises(TransientError, match="SQS send failed"):
        SqsJobPublisher(sqs, JOBS_QUEUE).publish(_jobs(25))  # type: ignore[arg-type]

    sqs = FakeSqs()
    sqs.fail = _fails_on("u12")
    store, queue = MemoryStore(), MemoryQueue()
    accepted = IngestService(store, SqsJobPublisher(sqs, JOBS_QUEUE), queue, lambda: T0).accept(_request(25))  # type: ignore[arg-type]
    assert sorted(job.job_id for job, _ in queue.sent) == sorted(accepted.job_ids)  # type: ignore[union-attr]
    on_the_jobs_queue = {json.loads(e["MessageBody"])["job_id"] for e in sqs.taken}
    assert on_the_jobs_queue < set(accepted.job_ids)
    assert accepted.event_id in store.events


def test_no_transport_and_no_delay_queue_is_the_503s_error() -> None:
    sqs = FakeSqs()
    sqs.fail = lambda entries: True
    store, queue = MemoryStore(), MemoryQueue()
    queue.fail = True
    with pytest.raises(IngestUnavailable):
        IngestService(store, SqsJobPublisher(sqs, JOBS_QUEUE), queue, lambda: T0).accept(_request(3))  # type: ignore[arg-type]
    assert store.events == {}
