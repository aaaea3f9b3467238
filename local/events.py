"""AWS-shaped events, as Lambda's triggers deliver them (used by the runner and the tests)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Optional
from urllib.parse import unquote_plus

REGION = "us-east-1"
ACCOUNT = "123456789012"


def http_api_event(
    method: str,
    path: str,
    query: str = "",
    headers: Optional[dict[str, str]] = None,
    body: Optional[bytes] = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """An API Gateway HTTP API payload v2.0 event."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
    params: dict[str, str] = {}
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        key, value = unquote_plus(key), unquote_plus(value)
        params[key] = f"{params[key]},{value}" if key in params else value
    now = datetime.now(UTC)
    text_types = ("json", "text", "xml", "x-www-form-urlencoded", "javascript")
    is_text = body is None or any(t in headers.get("content-type", "") for t in text_types)
    try:
        decoded = body.decode() if body is not None and is_text else None
    except UnicodeDecodeError:
        decoded, is_text = None, False
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": body is not None and not is_text,
    }
    if cookies:
        event["cookies"] = cookies
    if params:
        event["queryStringParameters"] = params
    if body is not None:
        event["body"] = decoded if is_text else base64.b64encode(body).decode()
    return event


def kafka_record(
    topic: str,
    partition: int,
    offset: int,
    value: bytes,
    key: Optional[bytes] = None,
    headers: Sequence[tuple[str, bytes]] = (),
    timestamp_ms: Optional[int] = None,
) -> dict[str, Any]:
    """One record of an ``aws:kafka`` event: base64 key and value, headers as lists of byte values."""
    return {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "timestamp": timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
        "timestampType": "CREATE_TIME",
        "key": base64.b64encode(key).decode() if key is not None else None,
        "value": base64.b64encode(value).decode(),
        "headers": [{name: list(data)} for name, data in headers],
    }


def msk_event(records: Sequence[dict[str, Any]], bootstrap: str, cluster: str = "local") -> dict[str, Any]:
    """An MSK event source batch: records grouped under ``topic-partition`` keys."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        grouped.setdefault(f"{record['topic']}-{record['partition']}", []).append(record)
    return {
        "eventSource": "aws:kafka",
        "eventSourceArn": f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/{cluster}/00000000-0000-0000-0000-000000000000-1",
        "bootstrapServers": bootstrap,
        "records": grouped,
    }


def sqs_record(
    body: str,
    queue_arn: str,
    message_id: Optional[str] = None,
    receipt_handle: Optional[str] = None,
    attributes: Optional[dict[str, str]] = None,
    message_attributes: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    """One record of an SQS event source batch."""
    now = str(int(time.time() * 1000))
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": receipt_handle or uuid.uuid4().hex,
        "body": body,
        "attributes": attributes
        or {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": now,
            "SenderId": ACCOUNT,
            "ApproximateFirstReceiveTimestamp": now,
        },
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in (message_attributes or {}).items()
        },
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def sqs_event(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": list(records)}


def scheduled_event(rule_arn: str = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/local-schedule") -> dict[str, Any]:
    """An EventBridge scheduled event, as a rate() or cron() rule sends it."""
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": now.isoformat().replace("+00:00", "Z"),
        "region": REGION,
        "resources": [rule_arn],
        "detail": {},
    }


def dumps(event: dict[str, Any]) -> str:
    return json.dumps(event, indent=2) + "\n"
