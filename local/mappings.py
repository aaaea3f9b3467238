"""Event source mappings, locally: Kafka and SQS pollers and the schedule, delivering batches to a function."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Optional

import boto3

from local.events import kafka_record, msk_event, scheduled_event, sqs_event, sqs_record
from local.invoke import Function

log = logging.getLogger("local.mappings")


class _Loop:
    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:  # keep polling, as the managed mapping does
                log.exception("%s failed; retrying", self._thread.name)
                self._stop.wait(1.0)

    def poll(self) -> None:
        raise NotImplementedError


class KafkaMapping(_Loop):
    """Like Lambda's Kafka event source mapping: batches of up to ``batch_size``; on error the batch is retried."""

    def __init__(self, function: Function, bootstrap: str, topic: str, group: str, batch_size: int) -> None:
        super().__init__("kafka-mapping")
        self._function = function
        self._bootstrap = bootstrap
        self._topic = topic
        self._group = group
        self._batch_size = batch_size
        self._consumer: Optional[Any] = None

    def _connect(self) -> Any:
        from kafka import KafkaConsumer

        return KafkaConsumer(
            self._topic,
            bootstrap_servers=self._bootstrap,
            group_id=self._group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            api_version=(2, 8, 0),
            session_timeout_ms=6000,
            heartbeat_interval_ms=2000,
            max_poll_interval_ms=10000,
            request_timeout_ms=8000,
        )

    def poll(self) -> None:
        if self._consumer is None:
            self._consumer = self._connect()
        batch = self._consumer.poll(timeout_ms=500, max_records=self._batch_size)
        records = [r for partition_records in batch.values() for r in partition_records]
        if not records:
            return
        event = msk_event(
            [
                kafka_record(r.topic, r.partition, r.offset, r.value, r.key, r.headers or (), r.timestamp)
                for r in records
            ],
            self._bootstrap,
        )
        try:
            self._function.invoke(event)
        except Exception:
            log.exception("worker raised on a Kafka batch of %d; retrying it", len(records))
            for tp, partition_records in batch.items():
                self._consumer.seek(tp, partition_records[0].offset)
            self._stop.wait(1.0)
            return
        self._consumer.commit()

    def stop(self) -> None:
        super().stop()
        if self._consumer is not None:
            self._consumer.close()


class SqsMapping(_Loop):
    """Like Lambda's SQS event source mapping with ReportBatchItemFailures."""

    def __init__(self, function: Function, queue_url: str, queue_arn: str, batch_size: int) -> None:
        super().__init__("sqs-mapping")
        self._function = function
        self._url = queue_url
        self._arn = queue_arn
        self._batch_size = min(10, batch_size)
        self._sqs = boto3.client("sqs")

    def poll(self) -> None:
        resp = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = resp.get("Messages", [])
        if not messages:
            return
        event = sqs_event(
            [
                sqs_record(
                    m["Body"],
                    self._arn,
                    m["MessageId"],
                    m["ReceiptHandle"],
                    {str(k): v for k, v in m.get("Attributes", {}).items()},
                    m.get("MessageAttributes"),
                )
                for m in messages
            ]
        )
        try:
            result = self._function.invoke(event) or {}
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        except Exception:
            log.exception("worker raised on an SQS batch of %d; it returns after the visibility timeout", len(messages))
            return
        done = [m for m in messages if m["MessageId"] not in failed]
        for i in range(0, len(done), 10):
            self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done[i : i + 10])],
            )


class Schedule(_Loop):
    """An EventBridge rule: a scheduled event every ``seconds``."""

    def __init__(self, function: Function, seconds: float) -> None:
        super().__init__("schedule")
        self._function = function
        self._seconds = seconds
        self._next = time.monotonic()

    def poll(self) -> None:
        if self._stop.wait(max(0.0, self._next - time.monotonic())):
            return
        self._next += self._seconds
        try:
            self._function.invoke(scheduled_event())
        except Exception:
            log.exception("scheduler raised")


def rate_seconds(expression: str) -> float:
    """Seconds between runs of an EventBridge ``rate(...)`` expression."""
    inner = expression.strip().removeprefix("rate(").removesuffix(")")
    amount, unit = inner.split()
    return float(amount) * {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}[unit]
