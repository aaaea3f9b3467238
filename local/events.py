"""AWS-shaped events, as Lambda's triggers deliver them: the one source of event shapes.

The local runner delivers these to the handlers; the tests, the tools (``make events`` writes ``events/`` with
them) and the benchmarks build theirs with the same functions, and the contract tests check them against
Powertools' parser models. ``load_event`` is the one loader of the files in ``events/``.
Pure Python: no boto3, no Kafka client.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Optional, Protocol, Union
from urllib.parse import unquote_plus

EVENTS = Path(__file__).resolve().parent.parent / "events"

REGION = "us-east-1"
ACCOUNT = "123456789012"
TOPIC = "notification-jobs"
MSK_CLUSTER_ARN = f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/notifications/00000000-0000-0000-0000-000000000000-1"
MSK_BOOTSTRAP_SERVERS = "b-1.notifications.abc123.c2.kafka.us-east-1.amazonaws.com:9098"
SELF_MANAGED_BOOTSTRAP_SERVERS = "broker-1.example.com:9092,broker-2.example.com:9092"
DELAY_QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:notification-service-DelayQueue"
SCHEDULE_RULE_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/notification-service-SchedulerFunctionTick"
MSK = "aws:kafka"
SELF_MANAGED_KAFKA = "SelfManagedKafka"

Raw = Union[bytes, str]
Headers = Union[Mapping[str, Raw], Sequence[tuple[str, Raw]]]


# --- the files in events/ ------------------------------------------------------------------------------------


@cache
def _read(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / f"{name}.json").read_text()))


def load_event(name: str) -> dict[str, Any]:
    """A fresh (deep) copy of events/<name>.json."""
    return copy.deepcopy(_read(name))


def event_names() -> list[str]:
    """The names of every sample event, for load_event."""
    return sorted(p.stem for p in EVENTS.glob("*.json"))


def dumps(event: dict[str, Any]) -> str:
    """An event as the files in events/ hold it."""
    return json.dumps(event, indent=2) + "\n"


def _bytes(raw: Raw) -> bytes:
    return raw.encode() if isinstance(raw, str) else bytes(raw)


def _now_ms() -> int:
    return int(time.time() * 1000)


# --- API Gateway HTTP API ------------------------------------------------------------------------------------

_TEXT_TYPES = ("json", "text", "xml", "x-www-form-urlencoded", "javascript")


def http_api_event(
    method: str,
    path: str,
    query: str = "",
    headers: Optional[Mapping[str, str]] = None,
    body: Optional[bytes] = None,
    source_ip: str = "127.0.0.1",
    route_key: str = "$default",
    path_parameters: Optional[Mapping[str, str]] = None,
    *,
    api_id: str = "local",
    request_id: Optional[str] = None,
    at: Optional[datetime] = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload v2.0 event for a request that matched ``route_key``.

    Repeated query parameters are comma-joined, cookies move to ``cookies``, and a body that is not text (or not
    UTF-8) is base64-encoded with ``isBase64Encoded``, as API Gateway does.
    """
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
    params: dict[str, str] = {}
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        key, value = unquote_plus(key), unquote_plus(value)
        params[key] = f"{params[key]},{value}" if key in params else value
    now = (at or datetime.now(UTC)).astimezone(UTC)
    is_text = body is None or any(t in headers.get("content-type", "") for t in _TEXT_TYPES)
    try:
        decoded = body.decode() if body is not None and is_text else None
    except UnicodeDecodeError:
        decoded, is_text = None, False
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": api_id,
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": api_id,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id or uuid.uuid4().hex,
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
    }
    if cookies:
        event["cookies"] = cookies
    if params:
        event["queryStringParameters"] = params
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if body is not None:
        event["body"] = decoded if is_text else base64.b64encode(body).decode()
    event["isBase64Encoded"] = body is not None and not is_text
    return event


# --- API Gateway WebSocket API -------------------------------------------------------------------------------

WEBSOCKET_STAGE = "prod"


def websocket_id() -> str:
    """An id shaped like API Gateway's connection and request ids: 11 random bytes, base64url (``BFaT_fALIAMCKug=``)."""
    return base64.urlsafe_b64encode(os.urandom(11)).decode()


def _request_time(moment: datetime) -> str:
    return moment.strftime("%d/%b/%Y:%H:%M:%S +0000")


def _websocket_context(
    route_key: str,
    event_type: str,
    connection_id: str,
    connected_at_ms: int,
    *,
    source_ip: str,
    user_agent: Optional[str],
    api_id: str,
    stage: str,
    domain_name: Optional[str],
    request_id: Optional[str],
    at: Optional[datetime],
) -> dict[str, Any]:
    """The ``requestContext`` API Gateway gives every WebSocket route's event."""
    now = (at or datetime.now(UTC)).astimezone(UTC)
    request = request_id or websocket_id()
    identity = {"sourceIp": source_ip} | ({"userAgent": user_agent} if user_agent else {})
    return {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request,
        "requestTime": _request_time(now),
        "messageDirection": "IN",
        "stage": stage,
        "connectedAt": connected_at_ms,
        "requestTimeEpoch": int(now.timestamp() * 1000),
        "identity": identity,
        "requestId": request,
        "domainName": domain_name or f"{api_id}.execute-api.{REGION}.amazonaws.com",
        "connectionId": connection_id,
        "apiId": api_id,
    }


def websocket_connect_event(
    connection_id: str,
    query: str = "",
    headers: Headers = (),
    *,
    source_ip: str = "127.0.0.1",
    api_id: str = "local",
    stage: str = WEBSOCKET_STAGE,
    domain_name: Optional[str] = None,
    request_id: Optional[str] = None,
    at: Optional[datetime] = None,
) -> dict[str, Any]:
    """The ``$connect`` event of a WebSocket handshake (REST-style payload: headers as sent, and their lists).

    ``query`` is the handshake URL's query string: API Gateway gives its last value of each name in
    ``queryStringParameters`` and every value in ``multiValueQueryStringParameters`` (neither key when empty).
    """
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    pairs = [(str(k), _text(v)) for k, v in (headers.items() if isinstance(headers, Mapping) else headers)]
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    agent = next((v for k, v in pairs if k.lower() == "user-agent"), None)
    host = next((v for k, v in pairs if k.lower() == "host"), None)
    event: dict[str, Any] = {"headers": single, "multiValueHeaders": multi}
    params: dict[str, list[str]] = {}
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        params.setdefault(unquote_plus(key), []).append(unquote_plus(value))
    if params:
        event["queryStringParameters"] = {k: v[-1] for k, v in params.items()}
        event["multiValueQueryStringParameters"] = params
    event["requestContext"] = _websocket_context(
        "$connect",
        "CONNECT",
        connection_id,
        int(moment.timestamp() * 1000),
        source_ip=source_ip,
        user_agent=agent,
        api_id=api_id,
        stage=stage,
        domain_name=domain_name or host,
        request_id=request_id,
        at=moment,
    )
    event["isBase64Encoded"] = False
    return event


def websocket_message_event(
    connection_id: str,
    body: Raw,
    connected_at_ms: int,
    *,
    route_key: str = "$default",
    source_ip: str = "127.0.0.1",
    user_agent: Optional[str] = None,
    api_id: str = "local",
    stage: str = WEBSOCKET_STAGE,
    domain_name: Optional[str] = None,
    request_id: Optional[str] = None,
    message_id: Optional[str] = None,
    at: Optional[datetime] = None,
) -> dict[str, Any]:
    """The event of one message a client sent (text as it is; bytes that are not UTF-8 base64-encoded)."""
    context = _websocket_context(
        route_key,
        "MESSAGE",
        connection_id,
        connected_at_ms,
        source_ip=source_ip,
        user_agent=user_agent,
        api_id=api_id,
        stage=stage,
        domain_name=domain_name,
        request_id=request_id,
        at=at,
    )
    context = {"routeKey": route_key, "messageId": message_id or websocket_id(), **context}
    data = _bytes(body)
    try:
        text, encoded = data.decode(), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(data).decode(), True
    return {"requestContext": context, "body": text, "isBase64Encoded": encoded}


def disconnect_reason(code: Optional[int], reason: str = "", *, by_client: bool = True) -> str:
    """API Gateway's ``disconnectReason`` for a connection closed with ``code`` (None: no status in the frame)."""
    if not by_client:
        return "Connection Closed Normally" if code in (None, 1000) else f"Server-side close frame status code {code}"
    if code is None:
        return "Client-side close frame status not set"
    return f"Client-side close frame status code {code}" + (f" | reason: {reason}" if reason else "")


def websocket_disconnect_event(
    connection_id: str,
    connected_at_ms: int,
    status_code: int = 1005,
    reason: Optional[str] = None,
    *,
    source_ip: str = "127.0.0.1",
    api_id: str = "local",
    stage: str = WEBSOCKET_STAGE,
    domain_name: Optional[str] = None,
    request_id: Optional[str] = None,
    at: Optional[datetime] = None,
) -> dict[str, Any]:
    """The ``$disconnect`` event of a closed connection (1005: the close frame carried no status)."""
    context = _websocket_context(
        "$disconnect",
        "DISCONNECT",
        connection_id,
        connected_at_ms,
        source_ip=source_ip,
        user_agent=None,
        api_id=api_id,
        stage=stage,
        domain_name=domain_name,
        request_id=request_id,
        at=at,
    )
    context = {
        "routeKey": "$disconnect",
        "disconnectStatusCode": status_code,
        **context,
        "disconnectReason": reason
        if reason is not None
        else disconnect_reason(None if status_code == 1005 else status_code),
    }
    host = context["domainName"]
    # What API Gateway sends at $disconnect: the handshake's headers are gone.
    headers = {"Host": host, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}
    return {
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "requestContext": context,
        "isBase64Encoded": False,
    }


def _text(raw: Raw) -> str:
    return raw if isinstance(raw, str) else bytes(raw).decode("latin-1")


# --- Kafka (Amazon MSK and self-managed) ---------------------------------------------------------------------


def kafka_record(
    topic: str,
    partition: int,
    offset: int,
    value: Optional[Raw],
    key: Optional[Raw] = None,
    headers: Headers = (),
    timestamp_ms: Optional[int] = None,
    timestamp_type: str = "CREATE_TIME",
) -> dict[str, Any]:
    """One Kafka record as Lambda delivers it: base64 key and value, headers as ``[{name: [byte, ...]}]``.

    Any bytes go through, as Lambda passes them (so poison records can be tested); a record without a key has
    no ``key``; a tombstone (``None``) has an empty value.
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    record: dict[str, Any] = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "timestamp": _now_ms() if timestamp_ms is None else timestamp_ms,
        "timestampType": timestamp_type,
    }
    if key is not None:
        record["key"] = base64.b64encode(_bytes(key)).decode()
    record["value"] = base64.b64encode(_bytes(value if value is not None else b"")).decode()
    record["headers"] = [{name: list(_bytes(data or b""))} for name, data in pairs]
    return record


class ConsumerRecord(Protocol):
    """What a Kafka client hands a consumer (kafka-python's ``ConsumerRecord`` has these attributes)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: int
    key: Optional[bytes]
    value: Optional[bytes]
    headers: Sequence[tuple[str, bytes]]


def consumer_record(record: ConsumerRecord) -> dict[str, Any]:
    """The record of a Kafka event for a record a Kafka consumer fetched (what the event source mapping sends)."""
    return kafka_record(
        record.topic,
        record.partition,
        record.offset,
        record.value,
        record.key,
        record.headers or (),
        record.timestamp,
        "LOG_APPEND_TIME" if record.timestamp_type == 1 else "CREATE_TIME",
    )


def group_records(records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Records grouped under ``<topic>-<partition>`` keys, as in every Kafka event."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        grouped.setdefault(f"{record['topic']}-{record['partition']}", []).append(record)
    return grouped


def msk_event(
    records: Iterable[dict[str, Any]],
    bootstrap_servers: str = MSK_BOOTSTRAP_SERVERS,
    *,
    cluster_arn: str = MSK_CLUSTER_ARN,
) -> dict[str, Any]:
    """An Amazon MSK event (``eventSource: aws:kafka``) of ready-made records, any topics and partitions."""
    return {
        "eventSource": MSK,
        "eventSourceArn": cluster_arn,
        "bootstrapServers": bootstrap_servers,
        "records": group_records(records),
    }


def self_managed_kafka_event(
    records: Iterable[dict[str, Any]], bootstrap_servers: str = SELF_MANAGED_BOOTSTRAP_SERVERS
) -> dict[str, Any]:
    """A self-managed Kafka event (``eventSource: SelfManagedKafka``, no ARN) of ready-made records."""
    return {"eventSource": SELF_MANAGED_KAFKA, "bootstrapServers": bootstrap_servers, "records": group_records(records)}


def kafka_event(
    records: Iterable[dict[str, Any]],
    *,
    event_source: str,
    bootstrap_servers: str,
    event_source_arn: Optional[str] = None,
) -> dict[str, Any]:
    """The event a Kafka event source mapping of ``event_source`` (``aws:kafka`` or ``SelfManagedKafka``) sends."""
    if event_source == MSK:
        if not event_source_arn:
            raise ValueError("an Amazon MSK event needs the cluster's ARN")
        return msk_event(records, bootstrap_servers, cluster_arn=event_source_arn)
    if event_source == SELF_MANAGED_KAFKA:
        return self_managed_kafka_event(records, bootstrap_servers)
    raise ValueError(f"not a Kafka event source: {event_source!r}")


def _iso_ms(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def kafka_on_failure_record(
    records: Sequence[dict[str, Any]],
    *,
    function_arn: str,
    condition: str,
    invoke_count: int,
    bootstrap_servers: str,
    event_source_arn: Optional[str] = None,
    function_error: Optional[str] = None,
    invoked: bool = True,
    payload_size: int = 0,
    request_id: Optional[str] = None,
    at: Optional[datetime] = None,
) -> dict[str, Any]:
    """The invocation record a Kafka event source mapping sends to an SQS or SNS on-failure destination.

    Metadata only, as AWS documents it for these destinations: why (``condition``: ``RetryAttemptsExhausted``,
    ``RecordAgeExceeded``), how often the function was invoked, and where the discarded records are
    (``KafkaBatchInfo.recordsInfo``: first and last offset and timestamp per ``<topic>-<partition>``); the records
    themselves stay in Kafka. ``responseContext`` is null when the function never saw the records.
    """
    records_info: dict[str, dict[str, str]] = {}
    for key, group in group_records(records).items():
        first, last = min(group, key=lambda r: r["offset"]), max(group, key=lambda r: r["offset"])
        records_info[key] = {
            "firstRecordOffset": str(first["offset"]),
            "lastRecordOffset": str(last["offset"]),
            "firstRecordTimestamp": _iso_ms(int(first["timestamp"])),
            "lastRecordTimestamp": _iso_ms(int(last["timestamp"])),
        }
    batch_info: dict[str, Any] = {"batchSize": len(records)}
    if event_source_arn:
        batch_info["eventSourceArn"] = event_source_arn
    batch_info |= {"bootstrapServers": bootstrap_servers, "payloadSize": payload_size, "recordsInfo": records_info}
    response: Optional[dict[str, Any]] = None
    if invoked:
        response = {"statusCode": 200, "executedVersion": "$LATEST"}
        if function_error:
            response["functionError"] = function_error
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    return {
        "requestContext": {
            "requestId": request_id or str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "responseContext": response,
        "version": "1.0",
        "timestamp": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "KafkaBatchInfo": batch_info,
    }


def function_arn(name: str) -> str:
    """The ARN of a function in the local stack's account and region."""
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


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
            topic,
            partition,
            first_offset + i,
            value,
            None if keys is None else keys[i],
            headers,
            timestamp_ms,
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
    """An Amazon MSK event of ``values`` at consecutive offsets of one partition."""
    records = _records(values, topic, partition, first_offset, keys, headers, timestamp_ms)
    return msk_event(records, bootstrap_servers, cluster_arn=cluster_arn)


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
    """A self-managed Kafka event of ``values`` at consecutive offsets of one partition."""
    records = _records(values, topic, partition, first_offset, keys, headers, timestamp_ms)
    return self_managed_kafka_event(records, bootstrap_servers)


# --- SQS -----------------------------------------------------------------------------------------------------


def sqs_record(
    body: Raw,
    queue_arn: str = DELAY_QUEUE_ARN,
    message_id: Optional[str] = None,
    receipt_handle: Optional[str] = None,
    attributes: Optional[Mapping[str, str]] = None,
    message_attributes: Optional[Mapping[str, Union[str, Mapping[str, Any]]]] = None,
    *,
    receive_count: int = 1,
    sent_timestamp_ms: Optional[int] = None,
) -> dict[str, Any]:
    """One SQS record as Lambda delivers it.

    ``attributes`` are the message's system attributes as ReceiveMessage returns them (defaults: received once,
    sent now); ``message_attributes`` are strings (String attributes) or boto3's MessageAttributeValue dicts.
    """
    text = body.decode() if isinstance(body, bytes) else body
    sent = str(_now_ms() if sent_timestamp_ms is None else sent_timestamp_ms)
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": receipt_handle or base64.b64encode(uuid.uuid4().bytes * 2).decode(),
        "body": text,
        "attributes": dict(attributes)
        if attributes
        else {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": sent,
            "SenderId": ACCOUNT,
            "ApproximateFirstReceiveTimestamp": sent,
        },
        "messageAttributes": {name: _message_attribute(v) for name, v in (message_attributes or {}).items()},
        "md5OfBody": hashlib.md5(text.encode()).hexdigest(),  # noqa: S324 - SQS's own checksum, not security
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


def _message_attribute(value: Union[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A message attribute as the SQS event carries it (binary values base64-encoded)."""
    if isinstance(value, str):
        value = {"DataType": "String", "StringValue": value}
    attribute: dict[str, Any] = {}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        data = value["BinaryValue"]
        attribute["binaryValue"] = base64.b64encode(data).decode() if isinstance(data, bytes) else data
    return {**attribute, "stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}


def received_message(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """The SQS record for a message as boto3's ReceiveMessage returns it (what the event source mapping sends)."""
    return sqs_record(
        message["Body"],
        queue_arn,
        message["MessageId"],
        message["ReceiptHandle"],
        {str(k): str(v) for k, v in message.get("Attributes", {}).items()},
        message.get("MessageAttributes"),
    )


def sqs_event(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """An SQS event source batch of ready-made records."""
    return {"Records": list(records)}


def sqs_batch(
    bodies: Sequence[Raw],
    *,
    queue_arn: str = DELAY_QUEUE_ARN,
    message_attributes: Optional[Mapping[str, str]] = None,
    receive_count: int = 1,
) -> dict[str, Any]:
    """An SQS event source batch of ``bodies`` (each record gets a fresh message id)."""
    return sqs_event(
        [
            sqs_record(body, queue_arn, message_attributes=message_attributes, receive_count=receive_count)
            for body in bodies
        ]
    )


# --- EventBridge schedule ------------------------------------------------------------------------------------


def scheduled_event(
    at: Optional[datetime] = None, *, rule_arn: str = SCHEDULE_RULE_ARN, event_id: Optional[str] = None
) -> dict[str, Any]:
    """The EventBridge event a ``rate()``/``cron()`` rule sends, for the tick at ``at`` (default: now)."""
    moment = (at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": moment.isoformat().replace("+00:00", "Z"),
        "region": rule_arn.split(":")[3],
        "resources": [rule_arn],
        "detail": {},
    }


# --- SES event publishing, through SNS -----------------------------------------------------------------------

FEEDBACK_TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:notification-service-FeedbackTopic"
_SES_SECTIONS = {"Rendering Failure": "failure", "DeliveryDelay": "deliveryDelay"}


def ses_event(
    event_type: str,
    message_id: str,
    recipient: str,
    tags: Mapping[str, str],
    section: Mapping[str, Any],
    *,
    sent_at: str = "2026-11-24T12:00:00.000Z",
    configuration_set: str = "notification-service-emails",
    source: str = "notifications@example.com",
) -> dict[str, Any]:
    """One SES event as SES publishes it to a configuration set's destination (AWS's event-publishing format).

    ``section`` is the event's own object (``delivery``, ``bounce``, ``complaint``, ``open``, ``click``,
    ``reject``, ``deliveryDelay``, ``failure``); ``tags`` are the send's tags, returned in ``mail.tags`` as lists.
    """
    key = _SES_SECTIONS.get(event_type, event_type[:1].lower() + event_type[1:])
    return {
        "eventType": event_type,
        "mail": {
            "timestamp": sent_at,
            "source": source,
            "sourceArn": f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/{source}",
            "sendingAccountId": ACCOUNT,
            "messageId": message_id,
            "destination": [recipient],
            "headersTruncated": False,
            "tags": {
                "ses:configuration-set": [configuration_set],
                "ses:source-ip": ["192.0.2.1"],
                "ses:from-domain": [source.split("@")[-1]],
                "ses:caller-identity": ["notification-service-worker"],
                **{k: [v] for k, v in tags.items()},
            },
        },
        key: dict(section),
    }


def sns_event(messages: Sequence[str], topic_arn: str = FEEDBACK_TOPIC_ARN) -> dict[str, Any]:
    """The event SNS invokes a subscribed function with: one record per message."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic_arn}:{uuid.uuid5(uuid.NAMESPACE_URL, topic_arn)}",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": str(uuid.uuid5(uuid.NAMESPACE_URL, message)),
                    "TopicArn": topic_arn,
                    "Subject": None,
                    "Message": message,
                    "Timestamp": "2026-11-24T12:00:06.000Z",
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-0000.pem",
                    "UnsubscribeUrl": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe",
                    "MessageAttributes": {},
                },
            }
            for message in messages
        ]
    }
