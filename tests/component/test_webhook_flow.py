"""Status webhooks from a status change to a receiver over TCP (issue 24's component proof): the endpoints and the
deliveries log in moto's DynamoDB, the messages on moto's SQS, the service's own HTTP sender and the demo receiver.

- A receiver that fails 3 times and then answers 200 gets the message 4 times under one webhook-id and counts it
  once; the endpoint's deliveries log shows the 4 attempts.
- A 410 disables the endpoint (``gone``); its other messages are dropped.
- A message whose retries are spent lands in the DLQ as ``webhook_undeliverable``, and a redrive delivers it, with
  the same webhook-id.

Each message taken off the queue is handled as though its wait had passed (its ``not_before`` and first attempt
moved back by the wait), so 24 hours of retries take seconds while every message is signed at the real time, which
the receiver's verifier checks (it refuses a timestamp 5 minutes off its clock). The queues get each message with no
delay for the same reason.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import boto3
import pytest
from notify.adapters.dynamodb.status import DynamoStatusReader
from notify.adapters.dynamodb.webhooks import DynamoWebhookStore
from notify.adapters.sqs import SqsDeadLetterQueue, SqsDelayQueue
from notify.adapters.webhook_http import HttpWebhookSender
from notify.clock import iso
from notify.models import Message, Status, WebhookTask
from notify.records import WebhookEndpoint, WebhookOutcome
from notify.services.dlq import DeadLetterService
from notify.services.webhook_delivery import UNDELIVERABLE, WebhookDeliveryService
from notify.services.webhook_emitter import WebhookEmitter, for_status
from notify.webhooks import new_secret

from local.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.usefixtures("local_stack")
JOB = {"job_id": "j-flow", "event_id": "e-1", "event_type": "review_liked", "user_id": "u-1", "channel": "email"}


class NoWait(SqsDelayQueue):
    """The delay queue on moto, its messages visible at once: the test's clock does the waiting."""

    def enqueue(self, jobs: Sequence[Message], delay_seconds: int = 0) -> None:
        super().enqueue(jobs, 0)


@dataclass
class Flow:
    store: DynamoWebhookStore
    receiver: WebhookReceiver
    queue_url: str
    dlq_url: str
    service: WebhookDeliveryService
    emitter: WebhookEmitter
    redrive: DeadLetterService

    def register(self, events: tuple[str, ...] = ("*",)) -> WebhookEndpoint:
        secret = new_secret()
        self.receiver.add_secret(secret)
        at = iso(datetime.now(UTC))
        endpoint = WebhookEndpoint(
            f"wh_{uuid.uuid4().hex[:24]}", f"{self.receiver.url}/hooks", events, (secret,), at, at
        )
        self.store.put(endpoint)
        return endpoint

    def run(self) -> list[str]:
        """Handle what the queue holds, each message at its time, until it is empty: the outcomes in turn."""
        sqs = boto3.client("sqs")
        outcomes: list[str] = []
        while True:
            got = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=1).get("Messages", [])
            if not got:
                return outcomes
            task = WebhookTask.model_validate_json(got[0]["Body"])
            now = datetime.now(UTC)
            if task.not_before is not None and task.not_before > now:
                waited = task.not_before - now
                first = task.first_attempt_at - waited if task.first_attempt_at else None
                task = task.model_copy(update={"not_before": now, "first_attempt_at": first})
            outcomes.append(self.service.handle(task))
            sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=got[0]["ReceiptHandle"])


@pytest.fixture
def flow(stack_env: dict[str, str]) -> Iterator[Flow]:
    sqs, dynamodb = boto3.client("sqs"), boto3.client("dynamodb")
    name = uuid.uuid4().hex[:12]
    queue_url = sqs.create_queue(QueueName=f"webhooks-{name}")["QueueUrl"]
    dlq_url = sqs.create_queue(QueueName=f"webhooks-dlq-{name}")["QueueUrl"]
    store = DynamoWebhookStore(
        dynamodb, stack_env["TEMPLATES_TABLE"], stack_env["NOTIFICATIONS_TABLE"], cache_seconds=0
    )
    receiver = WebhookReceiver(port=0).start()
    sender = HttpWebhookSender.build(timeout_seconds=5)
    queue, dlq = NoWait(sqs, queue_url), SqsDeadLetterQueue(sqs, dlq_url)
    flow = Flow(store, receiver, queue_url, dlq_url, None, None, None)  # type: ignore[arg-type]
    clock = lambda: datetime.now(UTC)  # noqa: E731
    flow.service = WebhookDeliveryService(
        store, sender, queue, dlq, clock, resolver=lambda host, port: ["127.0.0.1"], allow_loopback=True
    )
    flow.emitter = WebhookEmitter(store, queue, clock)
    reader = DynamoStatusReader(dynamodb, stack_env["NOTIFICATIONS_TABLE"])
    flow.redrive = DeadLetterService(dlq, reader, queue, clock)
    yield flow
    sender.close()
    receiver.stop()
    for endpoint in store.all():
        store.delete(endpoint.webhook_id)
    for url in (queue_url, dlq_url):
        sqs.delete_queue(QueueUrl=url)


def _attempts(flow: Flow, endpoint: WebhookEndpoint) -> list[tuple[str, int, WebhookOutcome]]:
    found, _ = flow.store.deliveries(endpoint.webhook_id, 50, None)
    return sorted((d.message_id, d.attempt, d.outcome) for d in found)


def test_a_receiver_failing_three_times_gets_the_message_four_times_under_one_id_and_counts_it_once(
    flow: Flow,
) -> None:
    endpoint = flow.register()
    flow.receiver.fail_next(3, status=503)
    assert flow.emitter.emit(for_status(JOB, Status.SENT, {"provider_message_id": "ses-1"})) == 1
    assert flow.run() == ["retrying", "retrying", "retrying", "delivered"]
    counts = flow.receiver.counts()
    assert (counts.injected_failures, counts.valid, counts.unique, counts.repeats) == (3, 1, 1, 0)
    attempts = _attempts(flow, endpoint)
    assert [(a, o) for _, a, o in attempts] == [
        (0, WebhookOutcome.RETRY),
        (1, WebhookOutcome.RETRY),
        (2, WebhookOutcome.RETRY),
        (3, WebhookOutcome.DELIVERED),
    ]
    assert len({message_id for message_id, _, _ in attempts}) == 1
    (received,) = flow.receiver.messages()
    assert received.id == attempts[0][0] and received.type == "notification.sent" and received.valid


def test_a_410_disables_the_endpoint_and_its_other_messages_are_dropped(flow: Flow) -> None:
    endpoint = flow.register()
    flow.receiver.fail_next(1, status=410)
    flow.emitter.emit(for_status(JOB, Status.SENT))
    assert flow.run() == ["disabled"]
    stored = flow.store.get(endpoint.webhook_id)
    assert stored is not None and (stored.enabled, stored.disabled_reason) == (False, "gone")
    # The emitter reads enabled endpoints only; a message already queued when it was disabled is dropped.
    assert flow.emitter.emit(for_status(JOB, Status.DELIVERED)) == 0
    flow.service.handle(
        WebhookTask(
            webhook_id=endpoint.webhook_id,
            message_id="msg_queued_before",
            message_type="notification.delivered",
            subject="j-flow#DELIVERED",
            created_at=datetime.now(UTC),
            data=JOB,
        )
    )
    assert flow.receiver.counts().valid == 0


def test_spent_retries_land_in_the_dlq_and_a_redrive_delivers_the_same_message(flow: Flow) -> None:
    endpoint = flow.register()
    flow.receiver.fail_rate(1.0, seed=1)
    flow.emitter.emit(for_status(JOB, Status.FAILED, {"reason": "attempts_exhausted"}))
    outcomes = flow.run()
    assert outcomes[-1] == "dead_lettered" and set(outcomes[:-1]) == {"retrying"}
    assert 6 <= len(outcomes) <= 8  # 5 s, 5 min, 30 min, 2 h, 5 h, 10 h: the 24 h are spent
    letters = boto3.client("sqs").receive_message(QueueUrl=flow.dlq_url, VisibilityTimeout=0).get("Messages", [])
    (letter,) = letters
    assert json.loads(letter["Body"])["reason"] == UNDELIVERABLE
    first_id = _attempts(flow, endpoint)[0][0]

    flow.receiver.fail_rate(0.0)
    redriven = flow.redrive.redrive()
    assert redriven["redriven"] == [f"webhook:{endpoint.webhook_id}:{first_id}"], redriven
    assert flow.run() == ["delivered"]
    (received,) = flow.receiver.messages()
    assert received.id == first_id and received.valid and received.type == "notification.failed"
    stored = flow.store.get(endpoint.webhook_id)
    assert stored is not None and stored.enabled and stored.failing_since is None
