"""The sample events in events/ have AWS's shapes, carry valid jobs, and are what `make events` writes; the
builders in local/events.py, which the local runner delivers with, make exactly those shapes."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventV2Model,
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
    EventBridgeModel,
    KafkaMskEventModel,
    KafkaSelfManagedEventModel,
    SnsModel,
    SqsModel,
)
from kafka.consumer.fetcher import ConsumerRecord
from notify.jobs import job_id
from notify.models import JOB_SCHEMA_VERSION, EventRequest, NotificationJob
from pydantic import BaseModel

from local.cfn import template
from local.events import (
    EVENTS,
    consumer_record,
    event_names,
    load_event,
    msk_batch,
    received_message,
    scheduled_event,
    self_managed_kafka_batch,
    sqs_batch,
    sqs_event,
    websocket_connect_event,
    websocket_disconnect_event,
    websocket_id,
    websocket_message_event,
)
from local.mappings import KafkaMapping, KafkaWiring
from local.stack import Config, LocalStack
from tools.sample_events import write_events

MODELS: dict[str, type[BaseModel]] = {
    "api_post_event": APIGatewayProxyEventV2Model,
    "msk_batch": KafkaMskEventModel,
    "msk_batch_selfmanaged": KafkaSelfManagedEventModel,
    "sqs_delay_batch": SqsModel,
    "schedule_tick": EventBridgeModel,
    "ses_delivery_sns": SnsModel,
    "ses_bounce_sns": SnsModel,
    "ses_complaint_sns": SnsModel,
    "ws_connect": APIGatewayWebSocketConnectEventModel,
    "ws_message": APIGatewayWebSocketMessageEventModel,
    "ws_disconnect": APIGatewayWebSocketDisconnectEventModel,
}


def test_every_sample_event_is_known_here() -> None:
    assert event_names() == sorted(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_sample_events_parse_with_the_powertools_models(name: str) -> None:
    MODELS[name].model_validate(load_event(name))


def test_the_committed_events_are_what_make_events_writes(tmp_path: Path) -> None:
    written = {p.name: p.read_text() for p in write_events(tmp_path)}
    assert sorted(written) == sorted(p.name for p in EVENTS.glob("*.json"))
    stale = [name for name, text in written.items() if (EVENTS / name).read_text() != text]
    assert not stale, f"events/ is stale ({', '.join(stale)}): run `make events` and commit the result"


def test_load_event_returns_a_fresh_copy() -> None:
    event = load_event("msk_batch")
    event["records"].clear()
    assert load_event("msk_batch")["records"]


def _check_job(raw: str | bytes, user_id: str) -> NotificationJob:
    job = NotificationJob.model_validate_json(raw)
    assert job.schema_version == JOB_SCHEMA_VERSION
    assert uuid.UUID(job.event_id).version == 4
    assert job.job_id == job_id(job.event_id, job.user_id, job.channel)  # deterministic, never random
    assert (job.event_type, job.template_key, job.channel.value, job.user_id) == (
        "user_registered",
        "user_registered",
        "email",
        user_id,
    )
    assert job.expires_at is not None and job.expires_at > datetime.now(UTC)  # never expired when a test runs
    return job


def test_the_api_event_posts_a_valid_event() -> None:
    event = APIGatewayProxyEventV2Model.model_validate(load_event("api_post_event"))
    assert (event.requestContext.http.method, event.rawPath) == ("POST", "/api/v1/events")
    assert event.headers["x-api-key"] == "local-dev-key"
    assert event.headers["content-type"] == "application/json"
    assert event.body is not None and not event.isBase64Encoded
    request = EventRequest.model_validate_json(str(event.body))
    assert request.event_type == "user_registered" and request.recipients.user_ids == ["demo-user-1"]
    # The proxy route of the HTTP API delivers the path as {proxy}.
    assert event.pathParameters == {"proxy": "api/v1/events"}


@pytest.mark.parametrize(("name", "user_id"), [("msk_batch", "demo-user-1"), ("msk_batch_selfmanaged", "demo-user-3")])
def test_the_kafka_batches_carry_valid_jobs_keyed_by_user(name: str, user_id: str) -> None:
    model = MODELS[name].model_validate(load_event(name))
    assert isinstance(model, KafkaMskEventModel | KafkaSelfManagedEventModel)
    assert list(model.records) == ["notification-jobs-0"]
    for records in model.records.values():
        for record in records:
            _check_job(str(record.value), user_id)  # the parser model base64-decodes the value
            assert record.key == user_id.encode()
            assert record.headers == [{"kind": b"job"}, {"schema_version": b"1"}]


def test_the_sqs_batch_carries_a_valid_job_with_a_true_checksum() -> None:
    event = load_event("sqs_delay_batch")
    model = SqsModel.model_validate(event)
    (record,) = model.Records
    body = str(record.body)
    _check_job(body, "demo-user-2")
    assert record.md5OfBody == hashlib.md5(body.encode()).hexdigest()  # noqa: S324
    assert record.eventSourceARN.endswith("DelayQueue")


def test_the_samples_carry_different_jobs() -> None:
    msk = load_event("msk_batch")["records"]["notification-jobs-0"][0]["value"]
    smk = load_event("msk_batch_selfmanaged")["records"]["notification-jobs-0"][0]["value"]
    sqs = load_event("sqs_delay_batch")["Records"][0]["body"]
    ids = {json.loads(base64.b64decode(v))["job_id"] for v in (msk, smk)} | {json.loads(sqs)["job_id"]}
    assert len(ids) == 3


def test_the_schedule_tick_is_a_scheduled_event() -> None:
    event = EventBridgeModel.model_validate(load_event("schedule_tick"))
    assert (event.source, event.detail_type) == ("aws.events", "Scheduled Event")


# --- the builders make exactly the shapes of the files ---------------------------------------------------


def _shape(value: Any) -> Any:
    """The keys and types of ``value``, not its values."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__


def _first_value(event: dict[str, Any]) -> bytes:
    return base64.b64decode(event["records"]["notification-jobs-0"][0]["value"])


def test_msk_batch_builds_the_sample_exactly() -> None:
    sample = load_event("msk_batch")
    record = sample["records"]["notification-jobs-0"][0]
    built = msk_batch(
        [_first_value(sample)],
        keys=["demo-user-1"],
        headers=[("kind", "job"), ("schema_version", "1")],
        first_offset=record["offset"],
        timestamp_ms=record["timestamp"],
    )
    assert built == sample


def test_self_managed_kafka_batch_builds_the_sample_exactly() -> None:
    sample = load_event("msk_batch_selfmanaged")
    record = sample["records"]["notification-jobs-0"][0]
    built = self_managed_kafka_batch(
        [_first_value(sample).decode()],
        keys=[b"demo-user-3"],
        headers={"kind": b"job", "schema_version": b"1"},
        first_offset=record["offset"],
        timestamp_ms=record["timestamp"],
    )
    assert built == sample


def test_kafka_batches_of_many_values_parse() -> None:
    values: list[bytes | str] = [b"one", "two", "tr\u00e8s"]
    event = msk_batch(values, keys=[b"k1", None, "k3"], partition=2, first_offset=10)
    parsed = KafkaMskEventModel.model_validate(event).records["notification-jobs-2"]
    assert [r.offset for r in parsed] == [10, 11, 12]
    assert [r.key for r in parsed] == [b"k1", None, b"k3"]
    assert [r.value for r in parsed] == ["one", "two", "tr\u00e8s"]
    assert KafkaSelfManagedEventModel.model_validate(self_managed_kafka_batch(values))
    with pytest.raises(ValueError):
        msk_batch(values, keys=[b"k1"])


def test_kafka_builders_carry_any_bytes() -> None:
    # Powertools' parser models reject a value that is not UTF-8; the builders must still deliver it, as
    # Lambda does, so poison records can be tested.
    event = msk_batch([b"\x00\xff"])
    assert base64.b64decode(event["records"]["notification-jobs-0"][0]["value"]) == b"\x00\xff"


def test_sqs_batch_has_the_shape_of_the_sample() -> None:
    sample = load_event("sqs_delay_batch")
    built = sqs_batch([sample["Records"][0]["body"], b"second"], message_attributes={"kind": "job"})
    assert _shape(built) == _shape(sample)
    first = built["Records"][0]
    assert {k: first[k] for k in ("body", "md5OfBody", "messageAttributes", "eventSourceARN", "awsRegion")} == {
        k: sample["Records"][0][k] for k in ("body", "md5OfBody", "messageAttributes", "eventSourceARN", "awsRegion")
    }
    model = SqsModel.model_validate(built)
    assert len({r.messageId for r in model.Records}) == 2


def test_scheduled_event_has_the_shape_of_the_sample() -> None:
    sample = load_event("schedule_tick")
    built = scheduled_event(datetime(2026, 11, 24, 12, 1, tzinfo=UTC))
    assert _shape(built) == _shape(sample)
    assert {k: v for k, v in built.items() if k != "id"} == {k: v for k, v in sample.items() if k != "id"}


# --- the local runner delivers the Kafka shape of the template's KafkaMode ----------------------------------


class _Unused:
    name = "WorkerFunction"

    def invoke(self, event: dict[str, Any]) -> Any:
        raise AssertionError("not invoked here")


def _delivered(mode: str | None) -> tuple[str, dict[str, Any]]:
    """(KafkaMode, the event the runner's Kafka mapping makes of two fetched records) for a stack in ``mode``."""
    stack = LocalStack(Config(kafka_mode=mode))
    parameters = stack.parameters()
    source = stack.template.kafka_source("WorkerFunction", parameters)
    mapping = KafkaMapping(_Unused(), KafkaWiring(source, stack.bootstrap, str(source.topic)))
    value = base64.b64decode(load_event("msk_batch")["records"]["notification-jobs-0"][0]["value"])
    fetched = [
        ConsumerRecord(
            "notification-jobs",
            1,
            -1,
            5,
            1795492800000,
            0,
            b"demo-user-1",
            value,
            [("kind", b"job")],
            None,
            11,
            len(value),
            -1,
        ),
        ConsumerRecord("notification-jobs", 1, -1, 6, 1795492800001, 0, None, b"\xff\x00", [], None, -1, 2, -1),
    ]
    return parameters["KafkaMode"], mapping.event([consumer_record(r) for r in fetched])


def _same_shape(event: dict[str, Any], sample: dict[str, Any]) -> bool:
    """The same keys, and records with the same keys and types, whatever the topic-partition."""
    (records,) = event["records"].values()
    (sample_records,) = sample["records"].values()
    return set(event) == set(sample) and _shape(records[0]) == _shape(sample_records[0])


def test_the_local_stack_delivers_self_managed_kafka_events_by_default() -> None:
    mode, event = _delivered(None)
    assert mode == template().parameter_defaults()["KafkaMode"] == "self-managed"
    assert event["eventSource"] == "SelfManagedKafka" and "eventSourceArn" not in event
    assert _same_shape(event, load_event("msk_batch_selfmanaged"))
    parsed = KafkaSelfManagedEventModel.model_validate(
        {**event, "records": {k: v[:1] for k, v in event["records"].items()}}
    )
    (record,) = parsed.records["notification-jobs-1"]
    _check_job(str(record.value), "demo-user-1")


def test_the_local_stack_delivers_msk_events_in_msk_mode() -> None:
    mode, event = _delivered("msk")
    assert mode == "msk"
    assert event["eventSource"] == "aws:kafka" and event["eventSourceArn"].startswith("arn:aws:kafka:")
    assert _same_shape(event, load_event("msk_batch"))
    parsed = KafkaMskEventModel.model_validate({**event, "records": {k: v[:1] for k, v in event["records"].items()}})
    assert parsed.records["notification-jobs-1"][0].key == b"demo-user-1"


def test_the_runner_delivers_any_bytes_and_keyless_records() -> None:
    _, event = _delivered(None)
    second = event["records"]["notification-jobs-1"][1]
    assert "key" not in second and base64.b64decode(second["value"]) == b"\xff\x00"
    assert [r["offset"] for r in event["records"]["notification-jobs-1"]] == [5, 6]


def test_an_unknown_kafka_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="KAFKA_MODE"):
        LocalStack(Config(kafka_mode="confluent")).parameters()


def test_the_runner_delivers_received_sqs_messages_in_the_sample_shape() -> None:
    sample = load_event("sqs_delay_batch")["Records"][0]
    received = {  # as boto3's ReceiveMessage answers with AttributeNames and MessageAttributeNames "All"
        "MessageId": sample["messageId"],
        "ReceiptHandle": sample["receiptHandle"],
        "MD5OfBody": sample["md5OfBody"],
        "Body": sample["body"],
        "Attributes": sample["attributes"],
        "MessageAttributes": {"kind": {"StringValue": "job", "DataType": "String"}},
    }
    record = received_message(received, sample["eventSourceARN"])
    assert record == sample
    SqsModel.model_validate(sqs_event([record]))


@pytest.mark.parametrize("name", ["ses_delivery_sns", "ses_bounce_sns", "ses_complaint_sns"])
def test_the_ses_feedback_samples_are_ses_events_the_feedback_service_reads(name: str) -> None:
    from notify.services.feedback import SesEvent

    (record,) = SnsModel.model_validate(load_event(name)).Records
    event = SesEvent.parse(json.loads(record.Sns.Message))
    assert event.job_id and event.message_id and event.event_type in ("Delivery", "Bounce", "Complaint")
    assert event.body and event.timestamp


# --- the WebSocket API's events ---------------------------------------------------------------------------


def test_the_websocket_samples_are_one_connection_of_demo_user_5() -> None:
    connect = APIGatewayWebSocketConnectEventModel.model_validate(load_event("ws_connect"))
    message = APIGatewayWebSocketMessageEventModel.model_validate(load_event("ws_message"))
    disconnect = APIGatewayWebSocketDisconnectEventModel.model_validate(load_event("ws_disconnect"))
    contexts = [e.request_context for e in (connect, message, disconnect)]
    assert {c.connection_id for c in contexts} == {"BFaT_fALIAMCKug="}
    assert [c.route_key for c in contexts] == ["$connect", "$default", "$disconnect"]
    assert len({c.connected_at for c in contexts}) == 1  # API Gateway keeps the connection's time in each
    token = load_event("ws_connect")["queryStringParameters"]["token"]
    assert load_event("ws_connect")["multiValueQueryStringParameters"] == {"token": [token]}
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert payload["u"] == "demo-user-5"
    assert json.loads(str(message.body)) == {"action": "counts"} and not message.is_base64_encoded
    assert (disconnect.request_context.disconnect_status_code, disconnect.request_context.disconnect_reason) == (
        1001,
        "Client-side close frame status code 1001",
    )


def test_websocket_builders_make_what_the_models_read() -> None:
    connection = websocket_id()
    assert len(connection) == 16 and connection.endswith("=") and "/" not in connection and "+" not in connection
    connect = websocket_connect_event(
        connection, "token=a%2Bb&x=1&x=2", [("Host", "127.0.0.1:3002"), ("User-Agent", "probe")]
    )
    APIGatewayWebSocketConnectEventModel.model_validate(connect)
    assert connect["queryStringParameters"] == {"token": "a+b", "x": "2"}  # the last value of each name
    assert connect["multiValueQueryStringParameters"] == {"token": ["a+b"], "x": ["1", "2"]}
    assert connect["requestContext"]["identity"] == {"sourceIp": "127.0.0.1", "userAgent": "probe"}
    assert "queryStringParameters" not in websocket_connect_event(connection)
    at = connect["requestContext"]["connectedAt"]
    text = websocket_message_event(connection, "h\u00e9", at)
    binary = websocket_message_event(connection, b"\xff\x00", at)
    for event in (text, binary):
        APIGatewayWebSocketMessageEventModel.model_validate(event)
    assert (text["body"], text["isBase64Encoded"]) == ("h\u00e9", False)
    assert base64.b64decode(binary["body"]) == b"\xff\x00" and binary["isBase64Encoded"] is True
    assert text["requestContext"]["messageId"] != binary["requestContext"]["messageId"]
    closed = websocket_disconnect_event(connection, at)
    APIGatewayWebSocketDisconnectEventModel.model_validate(closed)
    assert closed["requestContext"]["disconnectStatusCode"] == 1005
    assert closed["requestContext"]["disconnectReason"] == "Client-side close frame status not set"
