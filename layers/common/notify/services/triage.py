"""The worker's first step for every record: what it is, and who handles it.

A Kafka value or an SQS body is parsed (:func:`parse_message`): a notification job goes to
:class:`~notify.services.delivery.DeliveryService`, a fan-out task (one page of a segment) to
:class:`~notify.services.fanout.FanoutService`, a digest's flush task to
:class:`~notify.services.digests.DigestService` (and the digest's job it makes to delivery), a status webhook's
message to :class:`~notify.services.webhook_delivery.WebhookDeliveryService`, and anything else to the DLQ with
its raw bytes and the reason (:func:`raw_letter`), so that no record can stop the records behind it.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from typing import Optional

from pydantic import ValidationError

from notify.clock import Clock, iso
from notify.errors import DeliveryError, PermanentError, StoreUnavailable
from notify.limits import MAX_ERROR_CHARS
from notify.models import JOB_SCHEMA_VERSION, DigestFlushTask, FanoutTask, NotificationJob, WebhookTask
from notify.ports import DeadLetterQueue
from notify.records import DeadLetter
from notify.services.delivery import DeliveryService, Outcome
from notify.services.digests import DigestService
from notify.services.fanout import FanoutService
from notify.services.webhook_delivery import WebhookDeliveryService

log = logging.getLogger(__name__)

# A dead letter keeps at most this much of a raw record (SQS takes 256 KiB per message, base64 adds a third).
MAX_RAW_BYTES = 96 * 1024


@dataclass(frozen=True)
class Result:
    """What happened to one record, with the job when it was one."""

    outcome: Outcome
    job: Optional[NotificationJob]


class InvalidJob(ValueError):
    """A record that is not a job this worker understands."""


def parse_message(raw: str | bytes) -> NotificationJob | FanoutTask | DigestFlushTask | WebhookTask:
    """Parse a Kafka value or SQS body; refuse unknown schema versions."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidJob(f"not UTF-8 text: {exc}") from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidJob(f"not JSON: {exc}") from None
    except RecursionError:
        raise InvalidJob("not a job: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidJob("not a JSON object")
    version = data.get("schema_version")
    if version != JOB_SCHEMA_VERSION:
        raise InvalidJob(f"unsupported schema_version {version!r}; this worker reads {JOB_SCHEMA_VERSION}")
    try:
        if data.get("kind") == "fanout":
            return FanoutTask.model_validate(data)
        if data.get("kind") == "digest_flush":
            return DigestFlushTask.model_validate(data)
        if data.get("kind") == "webhook":
            return WebhookTask.model_validate(data)
        return NotificationJob.model_validate(data)
    except ValidationError as exc:
        raise InvalidJob(f"invalid job: {exc.errors(include_url=False)}") from None


class Triage:
    """Routes each raw record to the service that handles it; whatever it holds, it ends in a recorded outcome or
    in the DLQ. Raises :class:`StoreUnavailable` only when an outcome cannot be recorded."""

    def __init__(
        self,
        delivery: DeliveryService,
        dlq: DeadLetterQueue,
        clock: Clock,
        fanout: Optional[FanoutService] = None,
        digests: Optional[DigestService] = None,
        webhooks: Optional[WebhookDeliveryService] = None,
    ) -> None:
        self._delivery = delivery
        self._webhooks = webhooks
        self._digests = digests
        self._dlq = dlq
        self._clock = clock
        self._fanout = fanout

    def handle_raw(self, raw: str | bytes, source: str) -> Result:
        """Parse and deliver one record. Whatever it holds, it ends in a recorded outcome or in the DLQ.

        Only :class:`StoreUnavailable` escapes (the outcome could not be recorded): the caller reports that
        record alone for a retry. Any other exception dead-letters the record with its raw bytes and the reason,
        so no record can stop the records behind it.
        """
        try:
            message = parse_message(raw)
        except InvalidJob as exc:
            self.dead_letter_raw("invalid_job", str(exc), raw, source)
            return Result(Outcome.DEAD_LETTERED, None)
        try:
            if isinstance(message, FanoutTask):
                if self._fanout is None:
                    raise PermanentError("this worker does not fan out")
                page = self._fanout.handle(message)
                outcome = Outcome.FANNED_OUT if page.outcome == "expanded" else Outcome(page.outcome)
                return Result(outcome, None)
            if isinstance(message, DigestFlushTask):
                if self._digests is None:
                    raise PermanentError("this worker does not send digests")
                outcome, digest = self._digests.flush(message)
                if digest is None:
                    return Result(outcome, None)
                return Result(self._delivery.handle(digest), digest)
            if isinstance(message, WebhookTask):
                if self._webhooks is None:
                    raise PermanentError("this worker does not post webhooks")
                return Result(Outcome(f"webhook_{self._webhooks.handle(message)}"), None)
            return Result(self._delivery.handle(message), message)
        except StoreUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - isolation: one record must never stop the batch
            log.exception("a record made the worker raise; it is dead-lettered")
            self.dead_letter_raw("internal_error", f"{type(exc).__name__}: {exc}", raw, source)
            return Result(Outcome.DEAD_LETTERED, message if isinstance(message, NotificationJob) else None)

    def dead_letter_raw(self, reason: str, error: str, raw: str | bytes, source: str) -> None:
        """Dead-letter a record that is not (or could not be handled as) a job, or that the trigger could not even
        hand over as bytes."""
        letter = raw_letter(reason, error, raw, source)
        stamped = DeadLetter(**{**letter.__dict__, "failed_at": iso(self._clock())})
        try:
            self._dlq.send(stamped)
        except DeliveryError as exc:
            raise StoreUnavailable(f"dead-letter queue unavailable: {exc}") from exc


def raw_letter(reason: str, error: str, raw: str | bytes, source: str) -> DeadLetter:
    """A dead letter for a record that is not (or could not be handled as) a job: its raw bytes and the reason.

    Text is kept as text; bytes that are not UTF-8 are kept base64-encoded in ``raw_base64``. Both are cut at
    :data:`MAX_RAW_BYTES` (``raw_size`` says how big the record was).
    """
    data = raw.encode() if isinstance(raw, str) else bytes(raw)
    kept = data[:MAX_RAW_BYTES]
    text: Optional[str] = None
    try:
        text = kept.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if text is not None and len(json.dumps(text)) > 2 * MAX_RAW_BYTES:
        text = None  # mostly escapes (control characters): base64 is smaller
    encoded = None if text is not None else base64.b64encode(kept).decode()
    return DeadLetter(
        reason,
        error[:MAX_ERROR_CHARS],
        0,
        raw=text,
        raw_base64=encoded,
        raw_size=len(data),
        source=source,
    )
