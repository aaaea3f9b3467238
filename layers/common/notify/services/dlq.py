"""Dead-letter operations: list letters with their reasons, redrive jobs back into the pipeline."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Optional

from pydantic import ValidationError

from notify.clock import Clock
from notify.errors import DeliveryError
from notify.models import FanoutTask, NotificationJob, Status, WebhookTask
from notify.ports import DeadLetterInbox, DelayQueue, StatusReader
from notify.records import JobRecord, ReceivedLetter
from notify.services.webhook_delivery import replayed

LIST_VISIBILITY_SECONDS = 2
REDRIVE_VISIBILITY_SECONDS = 60


MAX_FEEDBACK_CHARS = 64_000  # of an SNS event kept in a letter's view


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
    records = body.get("Records")
    if (
        isinstance(records, list)
        and records
        and isinstance(records[0], dict)
        and records[0].get("EventSource") == "aws:sns"
    ):
        # Lambda's own dead letter for FeedbackFunction: the SNS event it could not apply after its retries.
        return {
            "reason": "feedback_not_applied",
            "error": "FeedbackFunction failed on these SES events after Lambda's retries; invoke it again with them",
            "source": "feedback-function",
            "raw": json.dumps(body)[:MAX_FEEDBACK_CHARS],
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


def replay(job: NotificationJob, record: Optional[JobRecord]) -> NotificationJob:
    """The copy of a dead-lettered job that a redrive queues.

    A FAILED job gets a redrive copy (``retry_base == attempt``, one attempt past the recorded one): the
    worker's claim lets exactly such a copy take a FAILED job back, so there is no separate reopen write that
    an enqueue failure could strand, and a stray copy of an older attempt can never revive a FAILED job. A job
    that is not terminal (its letter came from the delay queue's own redrive policy, say after a DynamoDB
    outage) is queued again as it stands; the claim decides, as for any redelivery.
    """
    recorded = record.attempt if record is not None else job.attempt
    if record is None or record.status is Status.FAILED:
        attempt = max(recorded, job.attempt) + 1
        return job.model_copy(update={"attempt": attempt, "retry_base": attempt, "not_before": None, "waiting": False})
    return job.model_copy(update={"attempt": max(recorded, job.attempt), "not_before": None, "waiting": False})


class DeadLetterService:
    """The dead-letter queue for operators: list letters with their reasons, and redrive jobs with a fresh
    retry budget (the worker's claim still drops a job that was delivered meanwhile)."""

    def __init__(self, inbox: DeadLetterInbox, store: StatusReader, delay_queue: DelayQueue, clock: Clock) -> None:
        self._inbox = inbox
        self._store = store
        self._delay = delay_queue
        self._clock = clock

    def list(self, limit: int = 50) -> list[dict[str, Any]]:
        """Up to ``limit`` letters (SQS shows a sample when the queue holds more)."""
        return [letter_view(letter) for letter in self._inbox.receive(limit, LIST_VISIBILITY_SECONDS)]

    def redrive(self, job_ids: Optional[Sequence[str]] = None, limit: int = 100) -> dict[str, Any]:
        """Send the selected (or all) jobs back through the worker with a fresh retry budget.

        A letter is deleted only after its copy is queued, so a failure part-way keeps it. A job that was
        SENT, EXPIRED or SKIPPED meanwhile is not queued again (its letter is deleted); a fan-out task and a status
        webhook message (``webhook_undeliverable``, issue 24) are queued again with their retry budget restarted;
        letters that are not jobs, and the Kafka event source's records, stay.
        """
        wanted = set(job_ids) if job_ids else None
        redriven: list[str] = []
        skipped: list[dict[str, Any]] = []
        for letter in self._inbox.receive(limit, REDRIVE_VISIBILITY_SECONDS):
            raw_job = envelope(letter.body).get("job")
            job_id = (raw_job or {}).get("job_id")
            if wanted is not None and job_id not in wanted:
                self._inbox.release(letter.receipt)  # not asked for: visible again now, not in a minute
                continue
            if not raw_job:
                self._inbox.release(letter.receipt)
                skipped.append({"message_id": letter.message_id, "reason": "not a job; cannot be redriven"})
                continue
            if raw_job.get("kind") in ("fanout", "webhook"):
                try:
                    task: FanoutTask | WebhookTask = (
                        FanoutTask.model_validate(raw_job).model_copy(update={"attempt": 0, "not_before": None})
                        if raw_job["kind"] == "fanout"
                        else replayed(raw_job)
                    )
                except ValidationError as exc:
                    skipped.append({"message_id": letter.message_id, "reason": f"invalid task: {exc.error_count()}"})
                    continue
                try:
                    self._delay.enqueue([task], 0)
                except DeliveryError as exc:
                    self._inbox.release(letter.receipt)
                    skipped.append({"message_id": letter.message_id, "reason": f"not queued, kept: {exc}"})
                    continue
                self._inbox.delete(letter.receipt)
                redriven.append(
                    f"fanout:{task.event_id}:{task.page}"
                    if isinstance(task, FanoutTask)
                    else f"webhook:{task.webhook_id}:{task.message_id}"
                )
                continue
            try:
                job = NotificationJob.model_validate(raw_job)
            except ValidationError as exc:
                skipped.append({"message_id": letter.message_id, "reason": f"invalid job: {exc.error_count()} errors"})
                continue
            record = self._store.get_job(job.job_id)
            if record is not None and record.status.terminal and record.status is not Status.FAILED:
                self._inbox.delete(letter.receipt)  # SENT, EXPIRED or SKIPPED meanwhile: nothing to replay
                skipped.append({"job_id": job.job_id, "reason": f"job is {record.status.value}, not FAILED"})
                continue
            try:
                self._delay.enqueue([replay(job, record)], 0)
            except DeliveryError as exc:
                # Nothing changed: the job is as it was and its letter stays, visible again for the next try.
                self._inbox.release(letter.receipt)
                skipped.append({"job_id": job.job_id, "reason": f"not queued, the letter is kept: {exc}"})
                continue
            self._inbox.delete(letter.receipt)  # only once the copy is queued
            redriven.append(job.job_id)
        return {"redriven": redriven, "skipped": skipped}
