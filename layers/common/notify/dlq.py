"""Dead-letter operations: list letters with their reasons, redrive jobs back into the pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Optional

from pydantic import ValidationError

from notify.clock import Clock
from notify.models import FanoutTask, NotificationJob
from notify.ports import DeadLetterInbox, DelayQueue, ReceivedLetter, StatusStore

LIST_VISIBILITY_SECONDS = 2
REDRIVE_VISIBILITY_SECONDS = 60


def envelope(body: dict[str, Any]) -> dict[str, Any]:
    """A letter's body in the worker's shape, whoever wrote it.

    A bare job or task was moved here by the delay queue's own redrive policy; an invocation record with
    ``KafkaBatchInfo`` was sent by a Kafka event source that gave up on records (its on-failure destination):
    it names the records (partition and offsets), which stay in Kafka until the topic's retention drops them.
    """
    if "KafkaBatchInfo" in body and "requestContext" in body:
        context, batch = body.get("requestContext") or {}, body.get("KafkaBatchInfo") or {}
        where = ", ".join(
            f"{partition} offsets {info.get('firstRecordOffset')}-{info.get('lastRecordOffset')}"
            for partition, info in (batch.get("recordsInfo") or {}).items()
        )
        return {
            "reason": "kafka_event_source_gave_up",
            "error": f"{context.get('condition')} after {context.get('approximateInvokeCount')} invocations: {where}",
            "attempt": context.get("approximateInvokeCount"),
            "failed_at": body.get("timestamp"),
            "source": "kafka-event-source",
            "kafka": batch.get("recordsInfo"),
        }
    if "schema_version" in body and "reason" not in body:
        return {
            "reason": "max_receives_exceeded",
            "error": "the worker failed on it on every receive",
            "attempt": body.get("attempt"),
            "job": body,
            "source": "sqs-redrive",
        }
    return body


def letter_view(letter: ReceivedLetter) -> dict[str, Any]:
    """The public JSON shape of one dead letter."""
    body = envelope(letter.body)
    job = body.get("job") or {}
    sent_at = None
    if letter.sent_at.isdigit():
        sent_at = datetime.fromtimestamp(int(letter.sent_at) / 1000, UTC).isoformat().replace("+00:00", "Z")
    return {
        "message_id": letter.message_id,
        "reason": body.get("reason"),
        "error": body.get("error"),
        "attempt": body.get("attempt"),
        "failed_at": body.get("failed_at"),
        "source": body.get("source"),
        "job_id": job.get("job_id"),
        "event_id": job.get("event_id"),
        "event_type": job.get("event_type"),
        "user_id": job.get("user_id"),
        "channel": job.get("channel"),
        "raw": body.get("raw"),
        "raw_base64": body.get("raw_base64"),
        "raw_size": body.get("raw_size"),
        "kafka": body.get("kafka"),
        "dead_lettered_at": sent_at,
        "receive_count": letter.receive_count,
    }


class DeadLetterService:
    def __init__(self, inbox: DeadLetterInbox, store: StatusStore, delay_queue: DelayQueue, clock: Clock) -> None:
        self._inbox = inbox
        self._store = store
        self._delay = delay_queue
        self._clock = clock

    def list(self, limit: int = 50) -> list[dict[str, Any]]:
        """Up to ``limit`` letters (SQS shows a sample when the queue holds more)."""
        return [letter_view(letter) for letter in self._inbox.receive(limit, LIST_VISIBILITY_SECONDS)]

    def redrive(self, job_ids: Optional[Sequence[str]] = None, limit: int = 100) -> dict[str, Any]:
        """Send the selected (or all) jobs back through the worker with a fresh retry budget.

        Idempotency still applies: a job that is not FAILED any more is dropped
        from the queue without being sent again.
        """
        wanted = set(job_ids) if job_ids else None
        redriven: list[str] = []
        skipped: list[dict[str, Any]] = []
        for letter in self._inbox.receive(limit, REDRIVE_VISIBILITY_SECONDS):
            raw_job = envelope(letter.body).get("job")
            job_id = (raw_job or {}).get("job_id")
            if wanted is not None and job_id not in wanted:
                continue  # becomes visible again after the visibility timeout
            if not raw_job:
                skipped.append({"message_id": letter.message_id, "reason": "not a job; cannot be redriven"})
                continue
            if raw_job.get("kind") == "fanout":
                try:
                    task = FanoutTask.model_validate(raw_job)
                except ValidationError as exc:
                    skipped.append({"message_id": letter.message_id, "reason": f"invalid task: {exc.error_count()}"})
                    continue
                self._delay.enqueue([task.model_copy(update={"attempt": 0, "not_before": None})], 0)
                self._inbox.delete(letter.receipt)
                redriven.append(f"fanout:{task.event_id}:{task.page}")
                continue
            try:
                job = NotificationJob.model_validate(raw_job)
            except ValidationError as exc:
                skipped.append({"message_id": letter.message_id, "reason": f"invalid job: {exc.error_count()} errors"})
                continue
            record = self._store.get_job(job.job_id)
            attempt = (record.attempt if record else job.attempt) + 1
            if record is not None and not self._store.reopen(job, self._clock(), attempt, letter.message_id):
                self._inbox.delete(letter.receipt)
                skipped.append({"job_id": job.job_id, "reason": f"job is {record.status.value}, not FAILED"})
                continue
            again = job.model_copy(update={"attempt": attempt, "retry_base": attempt, "not_before": None})
            self._delay.enqueue([again], 0)
            self._inbox.delete(letter.receipt)
            redriven.append(job.job_id)
        return {"redriven": redriven, "skipped": skipped}
