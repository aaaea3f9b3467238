"""Helpers for component tests: invoke handlers with AWS-shaped events and read what reached the peers."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Optional

import boto3
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from local.emails import sent_emails
from local.events import http_api_event
from local.invoke import LambdaContext

KEY = "local-dev-key"


def call_api(method: str, path: str, body: Any = None, key: Optional[str] = KEY, **headers: str) -> tuple[int, Any]:
    """ApiFunction's handler with an API Gateway v2 event; returns (status, parsed body)."""
    from api.app import lambda_handler

    all_headers = {"content-type": "application/json", **{k.replace("_", "-"): v for k, v in headers.items()}}
    if key is not None:
        all_headers["x-api-key"] = key
    path, _, query = path.partition("?")
    raw = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    result = lambda_handler(http_api_event(method, path, query, all_headers, raw), LambdaContext("ApiFunction"))
    text = result.get("body")
    return int(result["statusCode"]), json.loads(text) if text else None


def topic_ends(bootstrap: str, topic: str) -> dict[int, int]:
    """Each partition's end offset now: pass it to :func:`kafka_values` as ``since`` to read only what comes after."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, api_version=(2, 8, 0), enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def record_key(value: dict[str, Any]) -> Any:
    """What makes a record on the jobs topic one record: a job's id, a fan-out task's (event id, page).

    Kafka is at-least-once (a produce retried after a slow ack can land twice), so copies are one record.
    """
    return value.get("job_id") or (value.get("event_id"), value.get("page"))


def kafka_values(
    bootstrap: str,
    topic: str,
    contains: str,
    *,
    since: Mapping[int, int],
    count: int = 0,
    timeout: float = 60.0,
    unique: bool = True,
) -> list[dict[str, Any]]:
    """The records published on the topic after ``since`` (:func:`topic_ends`) whose value contains ``contains``,
    one per :func:`record_key` (every copy with ``unique=False``), in the order they were read.

    Reads at least up to the end of each partition as it is now (what was acknowledged before the call), and on
    until ``count`` distinct records have come; fails after ``timeout`` seconds without them.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, api_version=(2, 8, 0), enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, since.get(tp.partition, 0))
        found: dict[Any, dict[str, Any]] = {}
        copies: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(found) < count or any(consumer.position(tp) < ends[tp] for tp in partitions):
            assert time.monotonic() < deadline, (
                f"{len(found)} of {count} records containing {contains!r} on {topic} after {timeout:g} s"
            )
            for records in consumer.poll(timeout_ms=500).values():
                for value in (json.loads(r.value) for r in records if contains.encode() in r.value):
                    found.setdefault(record_key(value), value)
                    copies.append(value)
        return list(found.values()) if unique else copies
    finally:
        consumer.close()


def emails_to(endpoint: str, address: str) -> list[dict[str, Any]]:
    """The emails moto accepted for ``address``, oldest first (its SES store's index: no whole-state dump)."""
    return sent_emails(endpoint, to=address)


def job_id_of(body: Mapping[str, Any]) -> Optional[str]:
    """The job a delay-queue message is (its ``job_id``) or a dead letter is about (its job's)."""
    job = body.get("job")
    return body.get("job_id") or (job.get("job_id") if isinstance(job, dict) else None)


def queue_bodies(
    url: str,
    job_ids: Collection[str] = (),
    *,
    where: Optional[Callable[[dict[str, Any]], bool]] = None,
    count: int = 0,
    wait: float = 60.0,
) -> list[dict[str, Any]]:
    """Receive and delete a test's own messages on a queue, bodies parsed: those of ``job_ids`` (:func:`job_id_of`),
    or those ``where`` accepts.

    Every message visible now is looked at; until ``count`` of the test's own have come (a delayed one turning
    visible), the queue is read again, failing after ``wait`` seconds. Other messages (other tests': delayed ones,
    or letters a listing hid, outlive a purge) stay on the queue, visible again when this returns.
    """
    sqs = boto3.client("sqs")
    wanted = set(job_ids)

    def mine(body: dict[str, Any]) -> bool:
        return job_id_of(body) in wanted or (where is not None and where(body))

    bodies: list[dict[str, Any]] = []
    others: list[str] = []  # receipts of messages left for their own tests: hidden while this reads on
    deadline = time.monotonic() + wait
    try:
        while True:
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
            ).get("Messages", [])
            for m in messages:
                try:
                    body = json.loads(m["Body"])
                except ValueError:
                    body = None
                if isinstance(body, dict) and mine(body):
                    bodies.append(body)
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                else:
                    others.append(m["ReceiptHandle"])
            if messages:
                continue
            if len(bodies) >= count:
                return bodies
            assert time.monotonic() < deadline, f"{len(bodies)} of {count} messages on {url} after {wait:g} s"
            time.sleep(0.2)
    finally:
        for i in range(0, len(others), 10):
            entries = [
                {"Id": str(n), "ReceiptHandle": r, "VisibilityTimeout": 0} for n, r in enumerate(others[i : i + 10])
            ]
            sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SentMessage:
    """A message an SQS client was asked to send: to which queue, with which DelaySeconds, the body parsed."""

    queue_url: str
    delay_seconds: int
    body: Any


@contextmanager
def sqs_sends() -> Iterator[list[SentMessage]]:
    """Every message sent through SendMessage or SendMessageBatch by an SQS client built inside the block (a hook
    on boto3's default session, which clients copy when they are built: build the functions' clients afresh)."""
    sent: list[SentMessage] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        for entry in params.get("Entries", [params]):
            body = entry.get("MessageBody", "")
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = body
            delay = int(entry.get("DelaySeconds", 0))
            sent.append(SentMessage(params["QueueUrl"], delay, parsed))

    session = boto3._get_default_session()
    unique = f"sqs-sends-{uuid.uuid4().hex}"
    for operation in ("SendMessage", "SendMessageBatch"):
        session.events.register(f"before-parameter-build.sqs.{operation}", record, unique_id=f"{unique}-{operation}")
    try:
        yield sent
    finally:
        for operation in ("SendMessage", "SendMessageBatch"):
            session.events.unregister(f"before-parameter-build.sqs.{operation}", unique_id=f"{unique}-{operation}")


def frames(
    socket: ClientConnection,
    count: int,
    *,
    keep: Callable[[Any], bool] = lambda frame: True,
    quiet: float = 0.5,
    timeout: float = 60.0,
) -> list[Any]:
    """The first ``count`` frames ``keep`` accepts (waiting up to ``timeout`` for them), then any more that come
    within ``quiet`` seconds (so a surplus shows; a frame arriving later than that is not seen). JSON parsed."""
    found: list[Any] = []
    deadline = time.monotonic() + timeout
    while True:
        wait = max(deadline - time.monotonic(), 0.0) if len(found) < count else quiet
        try:
            frame = json.loads(socket.recv(timeout=wait))
        except (TimeoutError, ConnectionClosed):
            assert len(found) >= count, f"{len(found)} of {count} frames after {timeout:g} s"
            return found
        if keep(frame):
            found.append(frame)


def push_endpoints(count: int) -> list[str]:
    """``count`` SNS platform endpoints (GCM) of a fresh platform application in moto."""
    sns = boto3.client("sns")
    app = sns.create_platform_application(
        Name=f"app-{uuid.uuid4().hex[:6]}", Platform="GCM", Attributes={"PlatformCredential": "key"}
    )["PlatformApplicationArn"]
    return [
        sns.create_platform_endpoint(PlatformApplicationArn=app, Token=f"device-{i}-{uuid.uuid4().hex}")["EndpointArn"]
        for i in range(count)
    ]
