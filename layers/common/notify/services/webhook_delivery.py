"""Status webhooks' delivery (issue 24): one :class:`~notify.models.WebhookTask` from the delay queue, one POST at most.

Each task is one message to one endpoint. :meth:`WebhookDeliveryService.handle` posts it once, records the attempt in
the endpoint's deliveries log and decides what follows:

- **delivered** (a 2xx): done; the endpoint's ``failing_since`` is cleared if it was set.
- **disabled**: the receiver answered 410 (the endpoint is disabled as ``gone``), or this failure comes 24 h or more
  after the endpoint's ``failing_since`` (disabled as ``failing``). A 410 says the receiver wants no more: its
  message and the others queued for the endpoint are dropped. An endpoint disabled for failing has not said so: its
  message, and each other one queued for it when its turn comes, is dead-lettered (``webhook_undeliverable``), so
  once the receiver is mended and the endpoint enabled again, a redrive delivers them.
- **retrying**: any other failure (no answer in 10 s, no connection, TLS, 3xx, 429, 5xx, a destination now refused
  because the name resolves to a private address): the task is queued again on :func:`notify.webhooks.next_delay`'s
  schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, then 10 h until 24 h after its first attempt), waits longer than
  the delay queue's 15 minutes hopping without writing anything.
- **dead_lettered**: the schedule is spent: a ``webhook_undeliverable`` letter carries the task (see
  :func:`replayed` for what a redrive of it does).
- **dropped**: the endpoint was deleted, disabled by its owner or by a 410, or no longer subscribes to the message's
  type.

The ``webhook-id`` is the task's ``message_id`` on every attempt and after a redrive, so a receiver that got a
message whose answer was lost can tell the repeat. Only the store's, the delay queue's and the DLQ's failures raise
(:class:`~notify.errors.StoreUnavailable`): whatever the receiver or its DNS does is an attempt's outcome.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import Any, Optional

from notify.clock import Clock, iso
from notify.errors import DeliveryError, StoreUnavailable
from notify.limits import MAX_ERROR_CHARS
from notify.models import WebhookTask
from notify.ports import DeadLetterQueue, DelayQueue, WebhookSender, WebhookStore
from notify.records import DeadLetter, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookOutcome
from notify.retry import MAX_SQS_DELAY
from notify.webhooks import (
    GIVE_UP_AFTER,
    Resolver,
    body,
    check_url,
    headers,
    next_delay,
    resolve_public,
    signing_secrets,
    subscribed,
)

log = logging.getLogger(__name__)

UNDELIVERABLE = "webhook_undeliverable"
FAILING = "failing"  # disabled_reason of an endpoint that failed for 24 h
# What handle() answers (the worker counts each as a metric of that name).
WAITING = "waiting"
DROPPED = "dropped"
DELIVERED = "delivered"
DISABLED = "disabled"
RETRYING = "retrying"
DEAD_LETTERED = "dead_lettered"


def replayed(task_json: dict[str, Any]) -> WebhookTask:
    """The task a redrive of a ``webhook_undeliverable`` letter queues again: the letter's ``job`` (the task as it
    was when it gave up) with its retry budget restarted (attempt 0, no first attempt, due now), and the same
    ``message_id``, so the receiver sees the same ``webhook-id`` and can drop it if an earlier attempt did arrive.
    The endpoint is read again when it runs: a redrive to an endpoint deleted, disabled or no longer subscribed is
    dropped. Raises pydantic's ValidationError if ``task_json`` is not a webhook task."""
    task = WebhookTask.model_validate(task_json)
    return task.model_copy(update={"attempt": 0, "first_attempt_at": None, "not_before": None})


class WebhookDeliveryService:
    """Posts status webhook messages to their endpoints, once per task; see the module's docstring.

    ``resolver`` answers a host's addresses (:func:`notify.webhooks.system_resolver` in Lambda);
    ``allow_loopback`` lets the local stack post to ``http://127.0.0.1``.
    """

    def __init__(
        self,
        store: WebhookStore,
        sender: WebhookSender,
        delay_queue: DelayQueue,
        dlq: DeadLetterQueue,
        clock: Clock,
        *,
        resolver: Resolver,
        allow_loopback: bool,
    ) -> None:
        self._store = store
        self._sender = sender
        self._delay = delay_queue
        self._dlq = dlq
        self._clock = clock
        self._resolve = resolver
        self._allow_loopback = allow_loopback

    def handle(self, task: WebhookTask) -> str:
        """Deliver one task (at most one POST) and answer its outcome: ``waiting``, ``dropped``, ``delivered``,
        ``disabled``, ``retrying`` or ``dead_lettered``. Raises StoreUnavailable when the store, the delay queue or
        the DLQ cannot record the outcome (the task is then handled again, with the same ``webhook-id``)."""
        now = self._clock()
        if task.not_before is not None and task.not_before > now:
            self._enqueue(task, math.ceil((task.not_before - now).total_seconds()))  # a hop: nothing written
            return WAITING
        endpoint = self._store.get(task.webhook_id)
        if endpoint is None or not subscribed(endpoint.events, task.message_type):
            return DROPPED
        if not endpoint.enabled:
            if endpoint.disabled_reason != FAILING:
                return DROPPED
            self._give_up(task, task.first_attempt_at or now, now, "the endpoint was disabled after failing for 24 h")
            return DEAD_LETTERED
        first_at = task.first_attempt_at or now
        attempt = self._post(endpoint, task, now)
        self._store.record(
            WebhookDelivery(
                webhook_id=endpoint.webhook_id,
                at=iso(now),
                message_id=task.message_id,
                message_type=task.message_type,
                attempt=task.attempt,
                outcome=attempt.outcome,
                status_code=attempt.status_code,
                latency_ms=attempt.latency_ms,
                error=_cut(attempt.error),
            )
        )
        if attempt.outcome is WebhookOutcome.DELIVERED:
            if endpoint.failing_since is not None:
                self._store.mark_recovered(endpoint.webhook_id)
            return DELIVERED
        if attempt.outcome is WebhookOutcome.GONE:
            self._store.disable(endpoint.webhook_id, "gone", iso(now))
            return DISABLED
        failing_since = endpoint.failing_since or iso(now)
        if now - datetime.fromisoformat(failing_since) >= GIVE_UP_AFTER:
            self._store.disable(endpoint.webhook_id, FAILING, iso(now))
            self._give_up(task, first_at, now, f"failing for 24 h, the endpoint was disabled: {_said(attempt)}")
            return DISABLED
        if endpoint.failing_since is None:
            self._store.mark_failing(endpoint.webhook_id, iso(now))
        delay = next_delay(task.attempt, first_at, now)
        if delay is None:
            hours = (now - first_at) / timedelta(hours=1)
            self._give_up(
                task, first_at, now, f"gave up after {task.attempt + 1} attempts in {hours:.1f} h: {_said(attempt)}"
            )
            return DEAD_LETTERED
        nxt = task.model_copy(
            update={"attempt": task.attempt + 1, "first_attempt_at": first_at, "not_before": now + delay}
        )
        self._enqueue(nxt, math.ceil(delay.total_seconds()))
        return RETRYING

    # -- steps ----------------------------------------------------------------------------------------------------

    def _post(self, endpoint: WebhookEndpoint, task: WebhookTask, now: datetime) -> WebhookAttempt:
        """One POST of the task's message to the endpoint's checked address, or a failed attempt without one when
        the URL or its addresses are refused now (a name may resolve somewhere private since it was registered)."""
        try:
            target = check_url(endpoint.url, allow_http_loopback=self._allow_loopback)
            address = resolve_public(target, self._resolve, allow_loopback=self._allow_loopback)
        except ValueError as exc:  # UnsafeDestination, or a name the resolver cannot even encode
            return WebhookAttempt(WebhookOutcome.RETRY, None, 0, f"destination refused: {exc}")
        payload = body(task.message_type, task.created_at, task.data)
        sent = headers(signing_secrets(endpoint, now), task.message_id, now, payload)
        try:
            return self._sender.post(target, address, sent, payload)
        except Exception as exc:  # noqa: BLE001 - the sender promises not to raise; a bug there is one failed attempt
            log.exception("posting webhook %s to %s raised", task.message_id, endpoint.webhook_id)
            return WebhookAttempt(WebhookOutcome.RETRY, None, 0, f"internal error: {type(exc).__name__}")

    def _give_up(self, task: WebhookTask, first_at: datetime, now: datetime, error: str) -> None:
        tried = task.model_copy(update={"first_attempt_at": first_at, "not_before": None})
        letter = DeadLetter(
            UNDELIVERABLE,
            _cut(error) or "",
            task.attempt,
            job=tried.model_dump(mode="json"),
            source="webhook",
            failed_at=iso(now),
        )
        try:
            self._dlq.send(letter)
        except DeliveryError as exc:
            raise StoreUnavailable(f"dead-letter queue unavailable: {exc}") from exc

    def _enqueue(self, task: WebhookTask, wait_seconds: int) -> None:
        try:
            self._delay.enqueue([task], min(MAX_SQS_DELAY, max(0, wait_seconds)))
        except DeliveryError as exc:
            raise StoreUnavailable(f"delay queue unavailable: {exc}") from exc


def _said(attempt: WebhookAttempt) -> str:
    return attempt.error or f"HTTP {attempt.status_code}"


def _cut(error: Optional[str]) -> Optional[str]:
    if error is not None and len(error) > MAX_ERROR_CHARS:
        return error[:MAX_ERROR_CHARS] + "…"
    return error
