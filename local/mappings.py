"""Event source mappings, locally: Kafka and SQS pollers and the schedule, delivering batches to a function."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional, Protocol

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from local.cfn import KafkaSource, SqsSource
from local.events import (
    consumer_record,
    function_arn,
    kafka_event,
    kafka_on_failure_record,
    received_message,
    scheduled_event,
    sqs_event,
)
from local.invoke import Function, TaskTimedOut

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


class Invocable(Protocol):
    name: str

    def invoke(self, event: dict[str, Any]) -> Any: ...


@dataclass(frozen=True)
class KafkaWiring:
    """A Kafka event source mapping with its template values resolved to this machine's resources."""

    source: KafkaSource
    bootstrap: str  # where the poller connects
    topic: str
    on_failure_url: Optional[str] = None  # the SQS queue of DestinationConfig.OnFailure, if any

    @property
    def event_bootstrap(self) -> str:
        """``bootstrapServers`` of the events: the mapping's endpoints (self-managed) or the cluster's brokers."""
        return self.source.bootstrap_servers or self.bootstrap


def source_access(source: KafkaSource, secrets: Optional[Any] = None) -> dict[str, Any]:
    """kafka-python's options for the mapping's SourceAccessConfigurations, as Lambda's pollers use them: the
    secret of SASL_SCRAM_256_AUTH, SASL_SCRAM_512_AUTH or CLIENT_CERTIFICATE_TLS_AUTH to log in (over TLS) and the
    CA of SERVER_ROOT_CA_CERTIFICATE to verify the brokers with, each read from Secrets Manager when the consumer
    connects (``secrets``: a reader by ARN, moto's Secrets Manager by default). No secret: PLAINTEXT, as today."""
    from notify.adapters.kafka import SOURCE_ACCESS_AUTH, auth_options
    from notify.adapters.secrets import SecretsManagerJson

    access = dict(source.secrets)
    if not access:
        return {}
    read = secrets or SecretsManagerJson(max_age=0)
    logins = [(SOURCE_ACCESS_AUTH[kind], arn) for kind, arn in access.items() if kind in SOURCE_ACCESS_AUTH]
    auth, arn = logins[0] if logins else ("tls", None)
    root_ca = access.get("SERVER_ROOT_CA_CERTIFICATE")
    return auth_options(auth, read(arn) if arn else None, read(root_ca) if root_ca else None, arn or "")


Key = tuple[str, int, int]  # topic, partition, offset


class KafkaMapping(_Loop):
    """Like Lambda's Kafka event source mapping (Amazon MSK or self-managed) with its error handling controls.

    Batches of up to BatchSize records in the event shape of the mapping's kind. After an invocation, each
    partition is committed past its records, except where records failed: the function raised (the whole batch
    failed; with BisectBatchOnFunctionError the batch is split in halves and each retried, without using up
    retries) or, with ReportBatchItemFailures, returned ``{"batchItemFailures": [{"itemIdentifier": {"partition":
    "<topic>-<partition>", "offset": n}}]}``. Such a partition is committed up to, and re-delivered from, its
    lowest failed offset. A record that failed more than MaximumRetryAttempts times (10 when -1 with an
    on-failure destination), or that is older than MaximumRecordAgeInSeconds, is discarded: its invocation record
    (metadata, no payload) goes to the on-failure destination and the partition moves past it. With -1 and no
    destination Lambda would retry forever, and so does this (loudly).

    Like Lambda's poller, it stays in the consumer group for as long as a batch may run: ``max.poll.interval.ms``
    is the function's timeout plus a margin, and while the function runs (every invocation of a bisected batch
    included) the mapping keeps polling with its partitions paused, so no invocation, however long, gets it
    kicked out of the group. If the group moves on anyway (a rebalance, the broker gone), the Kafka error is one
    warning line and the batch comes again from the last committed offset: at least once, as on Lambda.
    """

    RETRY_DELAY = 0.5
    KEEP_ALIVE = 0.5  # seconds between the polls that keep the group membership while the function runs
    POLL_MARGIN = 10.0  # seconds of max.poll.interval beyond the function's timeout (a commit, a poll)
    LAMBDA_MAX_TIMEOUT = 900  # for an invocable that states no timeout

    def __init__(
        self,
        function: Invocable,
        wiring: KafkaWiring,
        sqs: Optional[Any] = None,
        max_poll_interval: Optional[float] = None,
    ) -> None:
        super().__init__("kafka-mapping")
        self._function = function
        self._wiring = wiring
        self._source = wiring.source
        timeout = getattr(function, "timeout", None) or self.LAMBDA_MAX_TIMEOUT
        # Seconds the consumer may go without polling before the group gives its partitions to another member.
        self.max_poll_interval = max_poll_interval or timeout + self.POLL_MARGIN
        self._consumer: Optional[Any] = None
        self._sqs = sqs if sqs is not None or wiring.on_failure_url is None else boto3.client("sqs")
        self._failures: dict[Key, int] = {}  # failed invocations per record still to be committed
        self._function_error: dict[Key, Optional[str]] = {}
        if self._source.retry_limit is None and wiring.on_failure_url is None:
            log.warning(
                "%s retries failing records forever (MaximumRetryAttempts -1, no on-failure destination)",
                self._source.logical_id,
            )

    def _connect(self) -> Any:
        from kafka import KafkaConsumer

        return KafkaConsumer(
            self._wiring.topic,
            **source_access(self._source),
            bootstrap_servers=self._wiring.bootstrap,
            group_id=self._source.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="latest" if self._source.starting_position == "LATEST" else "earliest",
            api_version=(2, 8, 0),
            # Tansu needs these: a consumer that left is noticed within seconds, not minutes.
            session_timeout_ms=6000,
            heartbeat_interval_ms=2000,
            max_poll_interval_ms=int(self.max_poll_interval * 1000),
            request_timeout_ms=8000,
        )

    def event(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The event this mapping sends for these records (``kafka_record`` dicts)."""
        return kafka_event(
            records,
            event_source=self._source.event_source,
            bootstrap_servers=self._wiring.event_bootstrap,
            event_source_arn=self._source.event_source_arn,
        )

    def poll(self) -> None:
        from kafka.errors import KafkaError

        try:
            self._poll_batch()
        except KafkaError as exc:  # the group or the broker moved on: the next poll rejoins, as Lambda's does
            log.warning("%s: %s; polling again", self._source.logical_id, _one_line(exc))
            self._stop.wait(self.RETRY_DELAY)

    def _poll_batch(self) -> None:
        from kafka.errors import KafkaError

        if self._consumer is None:
            self._consumer = self._connect()
        batch = self._consumer.poll(timeout_ms=500, max_records=self._source.batch_size)
        fetched = sorted(
            (consumer_record(r) for rs in batch.values() for r in rs),
            key=lambda r: (r["topic"], r["partition"], r["offset"]),
        )
        if not fetched:
            return
        try:
            retry = self._handle_polling(fetched)
            if retry is None:
                return  # stopping: not committed, so the group's next consumer delivers the batch again
            self._commit(batch, retry)
        except KafkaError as exc:
            self._rewind(batch)
            log.warning(
                "%s: %s; the batch of %d records comes again from the last committed offset",
                self._source.logical_id,
                _one_line(exc),
                len(fetched),
            )
            self._stop.wait(self.RETRY_DELAY)
            return
        except BaseException:
            self._rewind(batch)  # nothing committed: fetch these again
            raise
        if retry:
            self._stop.wait(self.RETRY_DELAY)

    def _handle_polling(self, records: Sequence[dict[str, Any]]) -> Optional[dict[tuple[str, int], int]]:
        """``handle(records)`` in a thread of its own while this one keeps polling with every partition paused.

        A consumer that does not poll for ``max.poll.interval`` is put out of its group, and one batch can take
        longer than that: a slow function, or a failed batch bisected into several invocations. Polling keeps
        the membership (and takes part in any rebalance) without fetching anything. None if the mapping was
        stopped meanwhile.
        """
        from kafka.errors import KafkaError

        assert self._consumer is not None
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                outcome["retry"] = self.handle(records)
            except BaseException as exc:  # raised again in the polling thread
                outcome["error"] = exc
            finally:
                done.set()

        threading.Thread(target=work, name="kafka-mapping-invoke", daemon=True).start()
        self._consumer.pause(*self._consumer.assignment())
        trouble: Optional[str] = None
        try:
            while not done.wait(self.KEEP_ALIVE):
                if self._stop.is_set():
                    return None
                try:
                    self._keep_alive()
                except KafkaError as exc:  # the commit afterwards tells whether the membership survived
                    if trouble is None:
                        trouble = _one_line(exc)
                        log.warning("%s: %s while the function runs", self._source.logical_id, trouble)
        finally:
            self._consumer.resume(*self._consumer.paused())
        if "error" in outcome:
            raise outcome["error"]
        retry: dict[tuple[str, int], int] = outcome["retry"]
        return retry

    def _keep_alive(self) -> None:
        """One poll that fetches nothing: it shows the group this consumer is alive and rejoins if need be."""
        assert self._consumer is not None
        self._consumer.pause(*self._consumer.assignment())  # a rejoin assigns partitions afresh, not paused
        for tp, rs in self._consumer.poll(timeout_ms=100).items():
            # Fetched in the poll that rejoined, before they could be paused: leave them to a later batch.
            first = min(r.offset for r in rs)
            self._consumer.seek(tp, first)
            self._consumer.pause(tp)
            log.debug(
                "%s: set aside %s-%d from %d, fetched while the function runs",
                self._source.logical_id,
                tp.topic,
                tp.partition,
                first,
            )

    def handle(self, records: Sequence[dict[str, Any]]) -> dict[tuple[str, int], int]:
        """Deliver one fetched batch; the offsets to re-deliver from, by (topic, partition)."""
        age_limit = self._source.record_age_limit
        fresh = list(records)
        if age_limit is not None:
            oldest = (time.time() - age_limit) * 1000
            expired = [r for r in records if r["timestamp"] < oldest]
            fresh = [r for r in records if r["timestamp"] >= oldest]
            for record in expired:
                self._discard(record, "RecordAgeExceeded")
        failed = self._deliver(fresh) if fresh else set()
        retry: dict[tuple[str, int], int] = {}
        for record in fresh:
            key = _key(record)
            if key not in failed:
                continue
            self._failures[key] = self._failures.get(key, 0) + 1
            limit = self._source.retry_limit
            if limit is not None and self._failures[key] > limit:
                self._discard(record, "RetryAttemptsExhausted")
                continue
            tp = (record["topic"], record["partition"])
            retry[tp] = min(retry.get(tp, record["offset"]), record["offset"])
        committed = {(r["topic"], r["partition"]): r["offset"] + 1 for r in records}  # sorted: the last wins
        committed |= retry
        for key in [k for k in self._failures if k[2] < committed.get((k[0], k[1]), -1)]:
            del self._failures[key]  # committed past: forget it
            self._function_error.pop(key, None)
        return retry

    def _deliver(self, records: Sequence[dict[str, Any]]) -> set[Key]:
        """Invoke the function with these records; the keys of the records that failed."""
        event = self.event(records)
        try:
            result = self._function.invoke(event)
        except Exception as exc:
            log.warning("%s raised on a Kafka batch of %d: %r", self._function.name, len(records), exc)
            if self._source.bisect_batch_on_function_error and len(records) > 1:
                half = len(records) // 2
                return self._deliver(records[:half]) | self._deliver(records[half:])
            for record in records:
                self._function_error[_key(record)] = "Unhandled"
            return {_key(r) for r in records}
        failed = self._reported(result, records)
        for key in failed:
            self._function_error[key] = None
        return failed

    def _reported(self, result: Any, records: Sequence[dict[str, Any]]) -> set[Key]:
        """The records a partial batch response names; all of them if it names something not in the batch."""
        if not self._source.report_batch_item_failures or not isinstance(result, dict):
            return set()  # without ReportBatchItemFailures, Lambda reads any answer as success
        items = result.get("batchItemFailures") or []
        keys = {_key(r) for r in records}
        failed: set[Key] = set()
        for item in items:
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            partition = identifier.get("partition") if isinstance(identifier, dict) else None
            offset = identifier.get("offset") if isinstance(identifier, dict) else None
            topic, _, number = str(partition).rpartition("-")
            key = (topic, int(number), offset) if number.isdigit() and type(offset) is int else None
            if key is None or key not in keys:
                log.warning(
                    "%s reported a failure of no record in the batch: %r; the whole batch failed",
                    self._function.name,
                    item,
                )
                return keys
            failed.add(key)
        return failed

    def _discard(self, record: dict[str, Any], condition: str) -> None:
        """Send the record's invocation record to the on-failure destination (if any); the mapping moves on."""
        key = _key(record)
        invokes = self._failures.get(key, 0)
        body = kafka_on_failure_record(
            [record],
            function_arn=function_arn(self._function.name),
            condition=condition,
            invoke_count=invokes,
            bootstrap_servers=self._wiring.event_bootstrap,
            event_source_arn=self._source.event_source_arn,
            function_error=self._function_error.get(key),
            invoked=invokes > 0,
            payload_size=len(json.dumps(self.event([record]))),
        )
        log.error(
            "%s: discarding %s-%d@%d after %d invocations (%s)", self._source.logical_id, *key, invokes, condition
        )
        if self._wiring.on_failure_url is not None:
            assert self._sqs is not None
            self._sqs.send_message(QueueUrl=self._wiring.on_failure_url, MessageBody=json.dumps(body))

    def _commit(self, batch: dict[Any, list[Any]], retry: dict[tuple[str, int], int]) -> None:
        """Commit each partition past its records (or at its first record to retry), then seek there.

        In that order: a seek on a partition this consumer lost in a rebalance raises, and the commit tells
        whether the group has moved on. A partition lost while the function ran is left to its new owner, who
        delivers its records again from the last committed offset.
        """
        from kafka.structs import OffsetAndMetadata

        assert self._consumer is not None
        positions = {tp: retry.get((tp.topic, tp.partition), max(r.offset for r in rs) + 1) for tp, rs in batch.items()}
        assigned = self._consumer.assignment()
        lost = sorted(f"{tp.topic}-{tp.partition}" for tp in positions if tp not in assigned)
        if lost:
            log.warning(
                "%s: a rebalance moved %s to another consumer while the function ran; not committed, they come "
                "again from the last committed offset",
                self._source.logical_id,
                ", ".join(lost),
            )
        kept = {tp: position for tp, position in positions.items() if tp in assigned}
        if kept:
            self._consumer.commit({tp: OffsetAndMetadata(p, "", -1) for tp, p in kept.items()})
        for tp, position in kept.items():
            self._consumer.seek(tp, position)  # a rejoin meanwhile may have put it back at the committed offset

    def _rewind(self, batch: dict[Any, list[Any]]) -> None:
        """Fetch the batch again (the partitions still assigned; another consumer starts a lost one afresh)."""
        if self._consumer is None:
            return
        assigned = self._consumer.assignment()
        for tp, rs in batch.items():
            if tp in assigned:
                self._consumer.seek(tp, min(r.offset for r in rs))

    def stop(self) -> None:
        super().stop()
        if self._consumer is not None:
            self._consumer.close()


def _key(record: dict[str, Any]) -> Key:
    return (str(record["topic"]), int(record["partition"]), int(record["offset"]))


def _one_line(exc: BaseException) -> str:
    """The exception as one log line: its type and message (Kafka's run over several lines)."""
    text = " ".join(str(exc).split()).rstrip(".")
    name = type(exc).__name__
    return text if text.startswith(name) else f"{name}: {text}"


class SqsMapping(_Loop):
    """Like Lambda's SQS event source mapping: the SAM event on the delay queue, or a plain mapping on a queue
    (Transport sqs's jobs queue), with the values of its :class:`SqsSource`.

    A batch is up to BatchSize messages; once the first has arrived, the poller keeps receiving for up to
    MaximumBatchingWindowInSeconds or until the batch is full, as Lambda gathers a batch. With
    ReportBatchItemFailures only the messages the answer names stay on the queue (an answer naming a message not
    in the batch fails the whole batch, as Lambda reads it); without it any answer deletes the whole batch. A
    raised invocation deletes nothing. What stays comes back after the queue's visibility timeout, and after
    maxReceiveCount receives the queue's redrive policy moves it to its dead-letter queue (moto does that, as SQS).
    One poller invokes one batch at a time: ScalingConfig.MaximumConcurrency (at least 2) is never reached here.
    """

    def __init__(
        self,
        function: Invocable,
        queue_url: str,
        queue_arn: str,
        batch_size: int = 10,
        *,
        batching_window_seconds: float = 0,
        report_batch_item_failures: bool = True,
        name: str = "sqs-mapping",
    ) -> None:
        super().__init__(name)
        self._function = function
        self._url = queue_url
        self._arn = queue_arn
        self._batch_size = min(10, batch_size)  # one ReceiveMessage's most (Lambda's larger batches need a window)
        self._window = batching_window_seconds
        self._partial = report_batch_item_failures
        self._sqs = boto3.client("sqs")

    @classmethod
    def of(cls, function: Invocable, source: SqsSource, queue_url: str, queue_arn: str) -> SqsMapping:
        """The mapping ``source`` describes, on the queue at ``queue_url``."""
        return cls(
            function,
            queue_url,
            queue_arn,
            source.batch_size,
            batching_window_seconds=source.batching_window_seconds,
            report_batch_item_failures=source.report_batch_item_failures,
            name=f"sqs-mapping-{source.queue}",
        )

    def _receive(self, count: int, wait: int) -> list[dict[str, Any]]:
        resp = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return [dict(m) for m in resp.get("Messages", [])]

    def batch(self) -> list[dict[str, Any]]:
        """The next batch: what one long poll brings, then more until the batching window ends or it is full."""
        messages = self._receive(self._batch_size, 1)
        deadline = time.monotonic() + self._window
        while messages and len(messages) < self._batch_size and not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            more = self._receive(self._batch_size - len(messages), 1 if left >= 1 else 0)
            messages += more
            if not more:
                self._stop.wait(min(left, 0.1))
        return messages

    def poll(self) -> None:
        """One batch: received, handed to the function, and what it did not report deleted. SQS failing (a receive
        or a delete refused) is a warning line, as Lambda's poller only retries: a batch whose delete failed comes
        back after the visibility timeout, and the worker's claim drops what it already did."""
        try:
            messages = self.batch()
        except (BotoCoreError, ClientError) as exc:
            log.warning("%s could not receive: %s; polling again in 1 s", self._thread.name, _one_line(exc))
            self._stop.wait(1.0)
            return
        if not messages:
            return
        event = sqs_event([received_message(m, self._arn) for m in messages])
        try:
            result = self._function.invoke(event)
        except TaskTimedOut as exc:
            log.warning("%s: %s; the batch returns after the visibility timeout", self._function.name, exc)
            return
        except Exception:
            log.exception(
                "%s raised on an SQS batch of %d; it returns after the visibility timeout",
                self._function.name,
                len(messages),
            )
            return
        failed = self._reported(result, messages)
        done = [m for m in messages if m["MessageId"] not in failed]
        for i in range(0, len(done), 10):
            entries: list[Any] = [
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done[i : i + 10])
            ]
            try:
                self._sqs.delete_message_batch(QueueUrl=self._url, Entries=entries)
            except (BotoCoreError, ClientError) as exc:
                log.warning(
                    "%s could not delete %d handled messages: %s; they return after the visibility timeout",
                    self._thread.name,
                    len(entries),
                    _one_line(exc),
                )

    def _reported(self, result: Any, messages: Sequence[dict[str, Any]]) -> set[str]:
        """The message ids a partial batch response names; all of them if it names one not in the batch."""
        if not self._partial or not isinstance(result, dict):
            return set()  # without ReportBatchItemFailures, Lambda reads any answer as success
        ids = {str(m["MessageId"]) for m in messages}
        failed: set[str] = set()
        for item in result.get("batchItemFailures") or []:
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not isinstance(identifier, str) or identifier not in ids:
                log.warning(
                    "%s reported a failure of no message in the batch: %r; the whole batch failed",
                    self._function.name,
                    item,
                )
                return ids
            failed.add(identifier)
        return failed


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
