"""SQS adapters: the delay queue, the jobs queue (``TRANSPORT`` sqs) and the dead-letter queue."""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any, Optional

from botocore.exceptions import BotoCoreError, ClientError

from notify.errors import PermanentError, TransientError
from notify.models import FanoutTask, Message, NotificationJob
from notify.records import DeadLetter, QueueDepth, ReceivedLetter

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


def _batches(items: Sequence[Any], size: int = 10) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _attributes(message: Message) -> dict[str, Any]:
    """A message's ``kind`` (job, fanout, digest_flush, webhook) and, for a job or a fan-out task, its
    ``event_id``."""
    attributes: dict[str, Any] = {"kind": {"DataType": "String", "StringValue": message.kind_name()}}
    if isinstance(message, (NotificationJob, FanoutTask)):
        attributes["event_id"] = {"DataType": "String", "StringValue": message.event_id}
    return attributes


# At most this many SendMessageBatch calls of one send are in flight together: a batch of events may make 10,000 jobs,
# 1,000 calls, too many round trips one after the other for a request API Gateway waits 30 s for. Within botocore's
# default pool of 10 connections.
PARALLEL_BATCHES = 8


def send_batches(client: SQSClient, queue_url: str, messages: Sequence[Message], delay_seconds: int = 0) -> None:
    """``SendMessageBatch`` in chunks of ten, up to :data:`PARALLEL_BATCHES` at once: each message as JSON, with
    ``kind`` and ``event_id`` attributes, visible after ``delay_seconds``.

    Entries SQS reports as failed are sent once more; any still failing, or a call that fails, is TransientError
    once the calls under way have ended (chunks sent stay sent; those not started yet are not sent). The messages
    are idempotent (deterministic job ids), so a caller that sends them all again elsewhere duplicates, never loses.
    """
    chunks = [
        [
            {
                "Id": str(i),
                "MessageBody": message.model_dump_json(exclude_none=True),
                "DelaySeconds": delay_seconds,
                "MessageAttributes": _attributes(message),
            }
            for i, message in enumerate(chunk)
        ]
        for chunk in _batches(list(messages))
    ]
    if len(chunks) <= 1:
        for entries in chunks:
            _send_batch(client, queue_url, entries)
        return
    # Threads of this call only (none outlives it, so none is in a SnapStart snapshot); boto3 clients are thread-safe.
    with ThreadPoolExecutor(max_workers=min(PARALLEL_BATCHES, len(chunks)), thread_name_prefix="sqs-send") as pool:
        futures = [pool.submit(_send_batch, client, queue_url, entries) for entries in chunks]
        failed = next((f.exception() for f in as_completed(futures) if f.exception() is not None), None)
        if failed is not None:
            for future in futures:
                future.cancel()  # the rest go wherever the caller sends them all next
    if failed is not None:
        raise failed


def _send_batch(client: SQSClient, queue_url: str, entries: list[dict[str, Any]]) -> None:
    for _ in range(2):
        try:
            resp = client.send_message_batch(QueueUrl=queue_url, Entries=entries)  # type: ignore[arg-type]
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"SQS send failed: {exc}") from exc
        failed = {f["Id"] for f in resp.get("Failed", [])}
        if not failed:
            return
        entries = [e for e in entries if e["Id"] in failed]
    raise TransientError(f"SQS refused {len(entries)} messages")


class SqsDelayQueue:
    """Sends jobs with DelaySeconds; batches of ten, failed entries retried once then raised."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def enqueue(self, jobs: Sequence[Message], delay_seconds: int = 0) -> None:
        """Queue the messages, visible after ``delay_seconds``: :func:`send_batches` (TransientError if any is not
        taken)."""
        send_batches(self._client, self._url, jobs, delay_seconds)


class SqsJobPublisher:
    """The jobs queue of ``TRANSPORT`` sqs (a :class:`~notify.ports.JobPublisher`): what the Kafka topic carries
    otherwise, as the same messages the delay queue carries, which the worker reads through its SQS event source.

    A standard queue: nothing depends on one user's jobs arriving in order (docs/ARCHITECTURE.md#transport).
    """

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def publish(self, jobs: Sequence[Message]) -> None:
        """:func:`send_batches` with no delay; TransientError, as the Kafka publisher raises, when any message is not
        taken, so ingestion parks them all in the delay queue (the worker's claim drops the copies)."""
        send_batches(self._client, self._url, jobs)


class SqsDeadLetterQueue:
    """The DLQ: one JSON message per letter with the reason, the error and the job or raw record."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def send(self, letter: DeadLetter) -> None:
        """``SendMessage`` of the letter's fields (those set) as JSON, with ``reason`` and ``job_id`` attributes.

        InvalidParameterValue (the queue refused the content) is PermanentError; any other failure is TransientError.
        """
        body = {k: v for k, v in letter.__dict__.items() if v is not None}
        attributes = {"reason": {"DataType": "String", "StringValue": letter.reason}}
        job_id: Optional[str] = (letter.job or {}).get("job_id")
        if job_id:
            attributes["job_id"] = {"DataType": "String", "StringValue": job_id}
        try:
            self._client.send_message(
                QueueUrl=self._url,
                MessageBody=json.dumps(body, default=str),
                MessageAttributes=attributes,  # type: ignore[arg-type]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidParameterValue":
                raise PermanentError(f"DLQ refused the letter: {exc}") from exc
            raise TransientError(f"DLQ send failed: {exc}") from exc
        except BotoCoreError as exc:
            raise TransientError(f"DLQ send failed: {exc}") from exc

    def receive(self, limit: int, visibility_seconds: int) -> list[ReceivedLetter]:
        """Up to ``limit`` distinct letters, hidden from other readers for ``visibility_seconds``."""
        seen: dict[str, ReceivedLetter] = {}
        empty_reads = 0
        while len(seen) < limit and empty_reads < 2:
            try:
                resp = self._client.receive_message(
                    QueueUrl=self._url,
                    MaxNumberOfMessages=min(10, limit - len(seen)),
                    VisibilityTimeout=visibility_seconds,
                    WaitTimeSeconds=0,
                    MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
                )
            except (ClientError, BotoCoreError) as exc:
                raise TransientError(f"DLQ receive failed: {exc}") from exc
            messages = resp.get("Messages", [])
            fresh = [m for m in messages if m["MessageId"] not in seen]
            empty_reads = 0 if fresh else empty_reads + 1
            for m in fresh:
                attributes = m.get("Attributes", {})
                try:
                    body = json.loads(m["Body"])
                except ValueError:
                    body = {"reason": "unreadable", "raw": m["Body"]}
                seen[m["MessageId"]] = ReceivedLetter(
                    message_id=m["MessageId"],
                    receipt=m["ReceiptHandle"],
                    body=body if isinstance(body, dict) else {"raw": body},
                    sent_at=str(attributes.get("SentTimestamp", "")),
                    receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
                )
        return list(seen.values())

    def delete(self, receipt: str) -> None:
        """``DeleteMessage`` by receipt handle; TransientError if SQS cannot be reached or refuses it."""
        try:
            self._client.delete_message(QueueUrl=self._url, ReceiptHandle=receipt)
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"DLQ delete failed: {exc}") from exc

    def release(self, receipt: str) -> None:
        """Make a received letter visible again at once (best effort: it returns after its timeout anyway)."""
        try:
            self._client.change_message_visibility(QueueUrl=self._url, ReceiptHandle=receipt, VisibilityTimeout=0)
        except (ClientError, BotoCoreError):
            pass


class SqsQueueStats:
    """A queue's depth from ``GetQueueAttributes`` (the approximate counts SQS keeps; one cheap call)."""

    ATTRIBUTES = (
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    )

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def depth(self) -> QueueDepth:
        """The counts of messages visible, in flight and delayed; TransientError if SQS cannot be read."""
        try:
            resp = self._client.get_queue_attributes(QueueUrl=self._url, AttributeNames=list(self.ATTRIBUTES))  # type: ignore[arg-type]
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"SQS attributes unavailable: {exc}") from exc
        attributes: dict[str, Any] = {str(k): v for k, v in resp.get("Attributes", {}).items()}
        counts = [int(attributes.get(name, 0)) for name in self.ATTRIBUTES]
        return QueueDepth(visible=counts[0], in_flight=counts[1], delayed=counts[2])
