"""Helpers for component tests: invoke handlers with AWS-shaped events and read what reached the peers."""

from __future__ import annotations

import json
import time
import uuid
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


def kafka_values(bootstrap: str, topic: str, contains: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every message on the topic whose value contains ``contains`` (read from the beginning)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, api_version=(2, 8, 0), enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        consumer.seek_to_beginning(*partitions)
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(consumer.position(tp) < ends[tp] for tp in partitions):
            for records in consumer.poll(timeout_ms=500).values():
                found += [json.loads(r.value) for r in records if contains.encode() in r.value]
        return found
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
