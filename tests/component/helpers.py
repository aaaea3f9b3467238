"""Helpers for component tests: invoke handlers with AWS-shaped events and read what reached the peers."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any, Optional

import boto3

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
) -> list[dict[str, Any]]:
    """The records published on the topic after ``since`` (:func:`topic_ends`) whose value contains ``contains``,
    one per :func:`record_key`, in the order they were read.

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
        deadline = time.monotonic() + timeout
        while len(found) < count or any(consumer.position(tp) < ends[tp] for tp in partitions):
            assert time.monotonic() < deadline, (
                f"{len(found)} of {count} records containing {contains!r} on {topic} after {timeout:g} s"
            )
            for records in consumer.poll(timeout_ms=500).values():
                for value in (json.loads(r.value) for r in records if contains.encode() in r.value):
                    found.setdefault(record_key(value), value)
        return list(found.values())
    finally:
        consumer.close()


def emails_to(endpoint: str, address: str) -> list[dict[str, Any]]:
    """The emails moto accepted for ``address``, oldest first (its SES store's index: no whole-state dump)."""
    return sent_emails(endpoint, to=address)


def queue_bodies(url: str, wait: float = 0.0) -> list[dict[str, Any]]:
    """Receive (and delete) every message on a queue; bodies parsed."""
    sqs = boto3.client("sqs")
    bodies: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait
    while True:
        resp = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        )
        messages = resp.get("Messages", [])
        for m in messages:
            bodies.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        if not messages and time.monotonic() >= deadline:
            return bodies
        if not messages:
            time.sleep(0.2)


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
