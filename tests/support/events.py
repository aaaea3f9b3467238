"""The sample events in events/ (the files `sam local invoke -e` takes) and builders of the same shapes.

``load_event`` is the one loader of the files. The builders make MSK, self-managed Kafka and SQS batches from
raw values in exactly the shape of ``events/msk_batch.json``, ``events/msk_batch_selfmanaged.json`` and
``events/sqs_delay_batch.json`` (the contract tests check that), so component tests and the local runner
deliver what Lambda's event source mappings deliver. Pure Python: no boto3, no Kafka client.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Optional, Union

EVENTS = Path(__file__).resolve().parent.parent.parent / "events"

REGION = "us-east-1"
ACCOUNT = "123456789012"
TOPIC = "notification-jobs"
MSK_CLUSTER_ARN = f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/notifications/00000000-0000-0000-0000-000000000000-1"
MSK_BOOTSTRAP_SERVERS = "b-1.notifications.abc123.c2.kafka.us-east-1.amazonaws.com:9098"
SELF_MANAGED_BOOTSTRAP_SERVERS = "broker-1.example.com:9092,broker-2.example.com:9092"
DELAY_QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:notification-service-DelayQueue"
SCHEDULE_RULE_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/notification-service-SchedulerFunctionTick"

Raw = Union[bytes, str]
Headers = Union[Mapping[str, Raw], Sequence[tuple[str, Raw]]]


@cache
def _read(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / f"{name}.json").read_text()))


def load_event(name: str) -> dict[str, Any]:
    """A fresh (deep) copy of events/<name>.json."""
    return copy.deepcopy(_read(name))


def event_names() -> list[str]:
    """The names of every sample event, for load_event."""
    return sorted(p.stem for p in EVENTS.glob("*.json"))


def _bytes(raw: Raw) -> bytes:
    return raw.encode() if isinstance(raw, str) else bytes(raw)


def _now_ms() -> int:
    return int(time.time() * 1000)


def kafka_record(
    value: Raw,
    *,
    topic: str = TOPIC,
    partition: int = 0,
    offset: int = 0,
    key: Optional[Raw] = None,
    headers: Headers = (),
    timestamp_ms: Optional[int] = None,
) -> dict[str, Any]:
    """One Kafka record as Lambda delivers it: base64 key and value, headers as ``[{name: [byte, ...]}]``."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    record: dict[str, Any] = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "timestamp": _now_ms() if timestamp_ms is None else timestamp_ms,
        "timestampType": "CREATE_TIME",
    }
    if key is not None:  # Lambda leaves the key out of records that have none
        record["key"] = base64.b64encode(_bytes(key)).decode()
    record["value"] = base64.b64encode(_bytes(value)).decode()
    record["headers"] = [{name: list(_bytes(data))} for name, data in pairs]
    return record


def group_records(records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Records grouped under ``<topic>-<partition>`` keys, as in every Kafka event."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        grouped.setdefault(f"{record['topic']}-{record['partition']}", []).append(record)
    return grouped


def _records(
    values: Sequence[Raw],
    topic: str,
    partition: int,
    first_offset: int,
    keys: Optional[Sequence[Optional[Raw]]],
    headers: Headers,
    timestamp_ms: Optional[int],
) -> list[dict[str, Any]]:
    if keys is not None and len(keys) != len(values):
        raise ValueError(f"{len(keys)} keys for {len(values)} values")
    return [
        kafka_record(
            value,
            topic=topic,
            partition=partition,
            offset=first_offset + i,
            key=None if keys is None else keys[i],
            headers=headers,
            timestamp_ms=timestamp_ms,
        )
        for i, value in enumerate(values)
    ]


def msk_batch(
    values: Sequence[Raw],
    *,
    keys: Optional[Sequence[Optional[Raw]]] = None,
    headers: Headers = (),
    topic: str = TOPIC,
    partition: int = 0,
    first_offset: int = 0,
    cluster_arn: str = MSK_CLUSTER_ARN,
    bootstrap_servers: str = MSK_BOOTSTRAP_SERVERS,
    timestamp_ms: Optional[int] = None,
) -> dict[str, Any]:
    """An Amazon MSK event (``eventSource: aws:kafka``) of ``values`` at consecutive offsets of one partition."""
    records = _records(values, topic, partition, first_offset, keys, headers, timestamp_ms)
    return msk_event(records, cluster_arn=cluster_arn, bootstrap_servers=bootstrap_servers)


def msk_event(
    records: Iterable[dict[str, Any]],
    *,
    cluster_arn: str = MSK_CLUSTER_ARN,
    bootstrap_servers: str = MSK_BOOTSTRAP_SERVERS,
) -> dict[str, Any]:
    """An Amazon MSK event of ready-made records (from :func:`kafka_record`), any topics and partitions."""
    return {
        "eventSource": "aws:kafka",
        "eventSourceArn": cluster_arn,
        "bootstrapServers": bootstrap_servers,
        "records": group_records(records),
    }


def self_managed_kafka_batch(
    values: Sequence[Raw],
    *,
    keys: Optional[Sequence[Optional[Raw]]] = None,
    headers: Headers = (),
    topic: str = TOPIC,
    partition: int = 0,
    first_offset: int = 0,
    bootstrap_servers: str = SELF_MANAGED_BOOTSTRAP_SERVERS,
    timestamp_ms: Optional[int] = None,
) -> dict[str, Any]:
    """A self-managed Kafka event (``eventSource: SelfManagedKafka``, no ARN) of ``values``."""
    records = _records(values, topic, partition, first_offset, keys, headers, timestamp_ms)
    return self_managed_kafka_event(records, bootstrap_servers=bootstrap_servers)


def self_managed_kafka_event(
    records: Iterable[dict[str, Any]], *, bootstrap_servers: str = SELF_MANAGED_BOOTSTRAP_SERVERS
) -> dict[str, Any]:
    """A self-managed Kafka event of ready-made records."""
    return {"eventSource": "SelfManagedKafka", "bootstrapServers": bootstrap_servers, "records": group_records(records)}


def sqs_record(
    body: Raw,
    *,
    queue_arn: str = DELAY_QUEUE_ARN,
    message_id: Optional[str] = None,
    receipt_handle: Optional[str] = None,
    receive_count: int = 1,
    sent_timestamp_ms: Optional[int] = None,
    message_attributes: Optional[Mapping[str, str]] = None,
) -> dict[str, Any]:
    """One SQS record as Lambda delivers it; ``message_attributes`` are String attributes."""
    text = body.decode() if isinstance(body, bytes) else body
    sent = str(_now_ms() if sent_timestamp_ms is None else sent_timestamp_ms)
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": receipt_handle or base64.b64encode(uuid.uuid4().bytes * 2).decode(),
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": sent,
            "SenderId": ACCOUNT,
            "ApproximateFirstReceiveTimestamp": sent,
        },
        "messageAttributes": {
            name: {"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": "String"}
            for name, value in (message_attributes or {}).items()
        },
        "md5OfBody": hashlib.md5(text.encode()).hexdigest(),  # noqa: S324 - SQS's own checksum, not security
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


def sqs_batch(
    bodies: Sequence[Raw],
    *,
    queue_arn: str = DELAY_QUEUE_ARN,
    message_attributes: Optional[Mapping[str, str]] = None,
    receive_count: int = 1,
) -> dict[str, Any]:
    """An SQS event source batch of ``bodies`` (each record gets a fresh message id)."""
    return {
        "Records": [
            sqs_record(body, queue_arn=queue_arn, message_attributes=message_attributes, receive_count=receive_count)
            for body in bodies
        ]
    }


def scheduled_event(at: Optional[datetime] = None, *, rule_arn: str = SCHEDULE_RULE_ARN) -> dict[str, Any]:
    """The EventBridge event a ``rate()``/``cron()`` rule sends, for the tick at ``at`` (default: now)."""
    moment = (at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": moment.isoformat().replace("+00:00", "Z"),
        "region": rule_arn.split(":")[3],
        "resources": [rule_arn],
        "detail": {},
    }
