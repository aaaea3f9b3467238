"""Helpers for component tests: invoke handlers with AWS-shaped events and read what reached the peers."""

from __future__ import annotations

import io
import json
import os
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Optional

import boto3
import pytest
from notify.adapters.dynamodb.connections import DynamoConnectionStore
from notify.adapters.secrets import SsmSecret
from notify.catalog import EVENT_TYPES
from notify.clock import utc_now
from notify.jobs import EventPlan, new_event_id
from notify.models import Channel, NotificationJob
from notify.usertokens import UserTokens
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from local.emails import sent_emails
from local.events import (
    ConsumerRecord,
    consumer_record,
    http_api_event,
    kafka_record,
    msk_event,
    received_message,
    sqs_event,
)
from local.invoke import Function, LambdaContext

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


def parsed(record: ConsumerRecord) -> Any:
    """A Kafka record's value, parsed as JSON (a tombstone's as null)."""
    return json.loads(record.value or b"null")


def kafka_records(
    bootstrap: str,
    topic: str,
    contains: str,
    *,
    since: Mapping[int, int],
    count: int = 0,
    timeout: float = 60.0,
    unique: bool = True,
) -> list[ConsumerRecord]:
    """The records published on the topic after ``since`` (:func:`topic_ends`) whose value contains ``contains``,
    as a Kafka consumer fetches them, one per :func:`record_key` of the value (every copy with ``unique=False``), in
    the order they were read.

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
        found: dict[Any, ConsumerRecord] = {}
        copies: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout
        while len(found) < count or any(consumer.position(tp) < ends[tp] for tp in partitions):
            assert time.monotonic() < deadline, (
                f"{len(found)} of {count} records containing {contains!r} on {topic} after {timeout:g} s"
            )
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    if record.value is not None and contains.encode() in record.value:
                        found.setdefault(record_key(parsed(record)), record)
                        copies.append(record)
        return list(found.values()) if unique else copies
    finally:
        consumer.close()


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
    """The values of :func:`kafka_records` (same arguments), parsed."""
    records = kafka_records(bootstrap, topic, contains, since=since, count=count, timeout=timeout, unique=unique)
    return [parsed(r) for r in records]


def emails_to(endpoint: str, address: str) -> list[dict[str, Any]]:
    """The emails moto accepted for ``address``, oldest first (its SES store's index: no whole-state dump)."""
    return sent_emails(endpoint, to=address)


def job_id_of(body: Mapping[str, Any]) -> Optional[str]:
    """The job a delay-queue message is (its ``job_id``) or a dead letter is about (its job's)."""
    job = body.get("job")
    return body.get("job_id") or (job.get("job_id") if isinstance(job, dict) else None)


def queue_messages(
    url: str,
    job_ids: Collection[str] = (),
    *,
    where: Optional[Callable[[dict[str, Any]], bool]] = None,
    count: int = 0,
    wait: float = 60.0,
) -> list[dict[str, Any]]:
    """Receive and delete a test's own messages on a queue, as ReceiveMessage returns them (their attributes and
    message attributes included): those whose body is of ``job_ids`` (:func:`job_id_of`), or one ``where`` accepts.

    Every message visible now is looked at; until ``count`` of the test's own have come (a delayed one turning
    visible), the queue is read again, failing after ``wait`` seconds. Other messages (other tests': delayed ones,
    or letters a listing hid, outlive a purge) stay on the queue, visible again when this returns.
    """
    sqs = boto3.client("sqs")
    wanted = set(job_ids)

    def mine(body: dict[str, Any]) -> bool:
        return job_id_of(body) in wanted or (where is not None and where(body))

    found: list[dict[str, Any]] = []
    others: list[str] = []  # receipts of messages left for their own tests: hidden while this reads on
    deadline = time.monotonic() + wait
    try:
        while True:
            messages = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            for m in messages:
                try:
                    body = json.loads(m["Body"])
                except ValueError:
                    body = None
                if isinstance(body, dict) and mine(body):
                    found.append(dict(m))
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                else:
                    others.append(m["ReceiptHandle"])
            if messages:
                continue
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, f"{len(found)} of {count} messages on {url} after {wait:g} s"
            time.sleep(0.2)
    finally:
        for i in range(0, len(others), 10):
            entries = [
                {"Id": str(n), "ReceiptHandle": r, "VisibilityTimeout": 0} for n, r in enumerate(others[i : i + 10])
            ]
            sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]


def queue_bodies(
    url: str,
    job_ids: Collection[str] = (),
    *,
    where: Optional[Callable[[dict[str, Any]], bool]] = None,
    count: int = 0,
    wait: float = 60.0,
) -> list[dict[str, Any]]:
    """The bodies of :func:`queue_messages` (same arguments), parsed."""
    messages = queue_messages(url, job_ids, where=where, count=count, wait=wait)
    return [json.loads(m["Body"]) for m in messages]


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


# --- the worker: jobs, MSK batches, its outcomes, and botocore hooks to fail or crash it ---------------------------


def job_for(user: str, event_type: str = "user_registered", **changes: Any) -> NotificationJob:
    """The email job of an ``event_type`` event for ``user`` (the catalog's sample payload, created now, a day to
    live), with ``changes`` made to it."""
    spec = EVENT_TYPES[event_type]
    now = datetime.now(UTC)
    plan = EventPlan(
        new_event_id(),
        spec,
        spec.sample_payload(),
        [user],
        [Channel.EMAIL],
        spec.priority,
        now,
        now + timedelta(days=1),
    )
    return plan.jobs()[0].model_copy(update=changes)


def kafka_batch(*values: bytes | NotificationJob) -> dict[str, Any]:
    """An MSK event with these records on the jobs topic (a job as its JSON, bytes as they are)."""
    raw = [v.model_dump_json().encode() if isinstance(v, NotificationJob) else v for v in values]
    return msk_event([kafka_record("notification-jobs", 0, i, v, b"k") for i, v in enumerate(raw)], "127.0.0.1:9092")


def run_worker(event: dict[str, Any]) -> Any:
    """WorkerFunction's handler with ``event``; its answer."""
    from worker.app import lambda_handler

    return lambda_handler(event, LambdaContext("WorkerFunction", 120))


def worker_outcomes(event: dict[str, Any]) -> dict[str, int]:
    """The worker's outcome counts for a Kafka batch; every record must have ended somewhere."""
    from worker.app import kafka_processor

    assert run_worker(event) == {"batchItemFailures": []}
    return kafka_processor.outcomes


def job_status(job_id: str) -> dict[str, Any]:
    """``GET /api/v1/notifications/{job_id}``'s body (it must answer 200)."""
    status, body = call_api("GET", f"/api/v1/notifications/{job_id}")
    assert status == 200
    return body


def expire_lease(stack_env: dict[str, str], job_id: str) -> None:
    """The claim's lease runs out, as it does for a worker that died holding it."""
    boto3.client("dynamodb").update_item(
        TableName=stack_env["NOTIFICATIONS_TABLE"],
        Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}},
        UpdateExpression="SET lease_until = :past",
        ExpressionAttributeValues={":past": {"N": "0"}},
    )


@contextmanager
def hooked(event: str, handler: Callable[..., Any]) -> Iterator[None]:
    """``handler`` on botocore's ``event`` (``before-call.sesv2.SendEmail``...) for the block, in every client of
    the default session (the handlers' own clients, once built)."""
    session = boto3._get_default_session()
    session.events.register(event, handler, unique_id=event)
    try:
        yield
    finally:
        session.events.unregister(event, unique_id=event)


@contextmanager
def dies_after(operation: str, why: str) -> Iterator[None]:
    """The worker dies (SystemExit) right after botocore's ``operation`` (``sesv2.SendEmail``...) was answered: the
    block must end that way."""

    def crash(**_: Any) -> None:
        raise SystemExit(why)

    with hooked(f"after-call.{operation}", crash), pytest.raises(SystemExit):
        yield


# --- the jobs' transport (TRANSPORT, issue 25): what the functions published, handed to the worker ---------------


@dataclass(frozen=True)
class Received:
    """Jobs a transport carried (their JSON, parsed), and the event its event source hands WorkerFunction them in."""

    jobs: list[dict[str, Any]]
    event: dict[str, Any]


class JobsTransport:
    """Where the functions publish jobs in a test, and how WorkerFunction gets them (the ``transport`` fixture sets
    the functions' variables): ``kafka``, the stack's topic, read from where it ended when the test began, the
    records handed over in an MSK event; or ``sqs``, a jobs queue of the test's own, its messages received and
    handed over in the SQS event of its event source mapping."""

    def __init__(self, name: str, *, bootstrap: str = "", topic: str = "", queue_url: str = "") -> None:
        self.name = name
        self._bootstrap, self._topic, self._queue_url = bootstrap, topic, queue_url
        self._since = topic_ends(bootstrap, topic) if name == "kafka" else {}
        self._queue_arn = (
            boto3.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            if name == "sqs"
            else ""
        )

    def receive(self, job_ids: Collection[str], *, copies: bool = False, timeout: float = 60.0) -> Received:
        """The published jobs of ``job_ids``, once each came (looking again for up to ``timeout`` seconds): the first
        copy of each (both transports deliver at least once), or every copy published so far with ``copies``.

        Kafka's records stay on the topic; the queue's messages are received and deleted, as the event source does.
        """
        wanted = set(job_ids)
        taken: list[tuple[dict[str, Any], Any]] = []  # (job, its record or message), in the order they came
        deadline = time.monotonic() + timeout
        while True:
            if self.name == "kafka":
                records = kafka_records(self._bootstrap, self._topic, "", since=self._since, unique=False)
                taken = [(job, r) for r in records if (job := parsed(r)).get("job_id") in wanted]
            else:
                messages = queue_messages(self._queue_url, wanted, wait=0)
                taken += [(json.loads(m["Body"]), m) for m in messages]
            if {job["job_id"] for job, _ in taken} >= wanted:
                break
            assert time.monotonic() < deadline, f"{len(taken)} of {len(wanted)} jobs on {self.name} after {timeout:g} s"
            time.sleep(0.2)
        if not copies:
            firsts: dict[str, tuple[dict[str, Any], Any]] = {}
            for job, raw in taken:
                firsts.setdefault(job["job_id"], (job, raw))
            taken = list(firsts.values())
        jobs = [job for job, _ in taken]
        if self.name == "kafka":
            return Received(jobs, msk_event([consumer_record(r) for _, r in taken], self._bootstrap))
        return Received(jobs, sqs_event([received_message(m, self._queue_arn) for _, m in taken]))

    def run(self, received: Received) -> dict[str, int]:
        """WorkerFunction over the received jobs; its outcome counts (every record must have ended somewhere)."""
        from worker.app import kafka_processor, sqs_processor

        assert run_worker(received.event) == {"batchItemFailures": []}
        return (kafka_processor if self.name == "kafka" else sqs_processor).outcomes

    def deliver(self, job_ids: Collection[str]) -> dict[str, int]:
        """:meth:`receive` the jobs (one copy each) and :meth:`run` the worker over them."""
        return self.run(self.receive(job_ids))


# --- WebSocketFunction behind the local WebSocket gateway (its fixtures are in conftest.py) ------------------------


class Recorded:
    """WebSocketFunction's handler, keeping every event the gateway invoked it with (the handler runs for real)."""

    def __init__(self) -> None:
        self.function = Function("WebSocketFunction", "websocket.app.lambda_handler")
        self.events: list[dict[str, Any]] = []
        self._running = threading.Lock()  # held by an invocation, or by idle()

    def invoke(self, event: dict[str, Any]) -> Any:
        self.events.append(event)
        with self._running:
            return self.function.invoke(event)

    @contextmanager
    def idle(self) -> Iterator[None]:
        """No invocation runs inside the block (one under way finishes first, the next waits for the block's end).

        Where a test changes the function's environment and clears its cached services: an invocation under way
        (a $disconnect of the previous test's sockets, say) may have read the old environment and would cache what
        it built from it after the clear, for every invocation of the test to run on.
        """
        with self._running:
            yield

    def of(self, route: str, connection_id: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e["requestContext"]["routeKey"] == route and e["requestContext"]["connectionId"] == connection_id
        ]


def token_for(user: str) -> str:
    """A user token for ``user`` under the stack's user-token keys (in SSM, as the API issues them)."""
    return UserTokens(SsmSecret(os.environ["USER_TOKEN_KEYS_PARAMETER"])).issue(user, utc_now())[0]


def connections() -> DynamoConnectionStore:
    """The connections table, through the real store."""
    return DynamoConnectionStore(boto3.client("dynamodb"), os.environ["CONNECTIONS_TABLE"])


def eventually(check: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait until ``check()`` holds (looking every 50 ms), for up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.05)


def lambda_zip(source: str) -> bytes:
    """A Lambda deployment package holding ``source`` as app.py."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


def deployed_function(prefix: str, environment: dict[str, str], **configuration: Any) -> str:
    """A function in moto's Lambda as a deployment leaves it: version 1 published from ``$LATEST``, the alias
    ``live`` on it; its name."""
    client = boto3.client("lambda")
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    role = boto3.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    client.create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": lambda_zip("def handler(event, context):\n    return 1\n")},
        Environment={"Variables": environment},
        **configuration,
    )
    client.create_alias(
        FunctionName=name, Name="live", FunctionVersion=client.publish_version(FunctionName=name)["Version"]
    )
    return name
