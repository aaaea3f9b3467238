"""The local stack's moto server's own changes to moto (local/moto_server.py), checked on moto's backends in process:
an SQS message is retained exactly as moto decides it, without building the queue's attributes per message, and a
send costs the same whatever the queue's backlog, while the queue's attributes read as moto's own."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sqs.models import Message, Queue, SQSBackend, sqs_backends

from local.moto_server import SQS_PATCHES, _queue_attributes, _retained

BACKLOG = 2_000


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[SQSBackend]:
    """moto's SQS backend in this process with the server's SQS patches, and none of its queues after the test."""
    for owner, name, value in SQS_PATCHES:
        monkeypatch.setattr(owner, name, value)
    backend: SQSBackend = sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    before = set(backend.queues)
    yield backend
    for name in set(backend.queues) - before:
        backend.delete_queue(name)


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times a message's visibility was checked (``Message.visible``, which each count of moto's walks for
    every message of the queue): one number, in a list."""
    checked = [0]
    visible = Message.visible.fget  # type: ignore[attr-defined]

    def counted(message: Message) -> bool:
        checked[0] += 1
        return bool(visible(message))

    monkeypatch.setattr(Message, "visible", property(counted))
    return checked


def _entries(start: int, fifo: bool = False) -> dict[str, dict[str, Any]]:
    """Ten entries of a SendMessageBatch as moto's responses hand them to the backend."""
    entries: dict[str, dict[str, Any]] = {}
    for i in range(start, start + 10):
        entry: dict[str, Any] = {"Id": str(i), "MessageBody": f"job {i}", "MessageAttributes": {}, "DelaySeconds": None}
        if fifo:
            entry.update(MessageGroupId=f"user-{i % 7}", MessageDeduplicationId=f"job-{i}")
        entries[str(i)] = entry
    return entries


def test_a_message_is_retained_for_its_queues_retention_period_and_no_longer(sqs: SQSBackend) -> None:
    sqs.create_queue("retention-check", MessageRetentionPeriod="60")
    fresh = Message("m-1", "fresh")
    old = Message("m-2", "old")
    fresh.mark_sent()
    old.sent_timestamp = int((time.time() - 61) * 1000)  # type: ignore[assignment]
    assert _retained(sqs, "retention-check", fresh)
    assert not _retained(sqs, "retention-check", old)
    assert [_retained(sqs, "retention-check", m) for m in (fresh, old)] == [
        sqs.is_message_valid_based_on_retention_period("retention-check", m) for m in (fresh, old)
    ]


@pytest.mark.parametrize("fifo", [False, True], ids=["standard", "fifo"])
def test_a_send_does_not_walk_the_queues_backlog(sqs: SQSBackend, walks: list[int], fifo: bool) -> None:
    """moto's own Queue.attributes counted the messages for every message sent: a SendMessageBatch of ten with 2,000
    messages waiting checked 40,090 messages' visibility (240,360 in a FIFO queue, whose validation and deduplication
    read the attributes too), and filling the queue took minutes. No send checks any now, and a count asked for still
    counts them all."""
    name = "backlog.fifo" if fifo else "backlog"
    sqs.create_queue(name, tags=None, **({"FifoQueue": "true"} if fifo else {}))
    for start in range(0, BACKLOG, 10):
        sqs.send_message_batch(name, _entries(start, fifo))
    walks[0] = 0
    sent, failed = sqs.send_message_batch(name, _entries(BACKLOG, fifo))
    assert (len(sent), failed) == (10, [])
    assert walks[0] == 0, f"a SendMessageBatch of 10 checked {walks[0]:,} messages, with {BACKLOG:,} in the queue"
    counts = sqs.get_queue_attributes(name, ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    assert counts == {"ApproximateNumberOfMessages": BACKLOG + 10, "ApproximateNumberOfMessagesNotVisible": 0}


def test_a_queues_attributes_read_as_moto_builds_them(sqs: SQSBackend) -> None:
    """Every name, value and order of moto's own property, for a standard queue with a redrive policy and a FIFO
    queue with a key, a policy and content-based deduplication, messages in flight and delayed included."""
    dlq = sqs.create_queue("attributes-dlq")
    redrive = json.dumps({"deadLetterTargetArn": dlq.queue_arn, "maxReceiveCount": 5})
    standard = sqs.create_queue("attributes", VisibilityTimeout="720", RedrivePolicy=redrive)
    fifo = sqs.create_queue(
        "attributes.fifo",
        FifoQueue="true",
        ContentBasedDeduplication="true",
        KmsMasterKeyId="alias/aws/sqs",
        Policy=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )
    sqs.send_message_batch("attributes", _entries(0))
    sqs.send_message("attributes", "later", delay_seconds=60)
    sqs.receive_message("attributes", 3, 0, 30)
    sqs.send_message_batch("attributes.fifo", _entries(0, fifo=True))
    queue: Queue
    for queue in (standard, fifo):
        assert list(queue.attributes.items()) == list(_queue_attributes(queue).items())
        assert sqs.get_queue_attributes(queue.name, ["All"]) == _queue_attributes(queue)
    assert [
        standard.attributes[n] for n in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
    ] == [7, 3]
    assert standard.attributes["ApproximateNumberOfMessagesDelayed"] == 1
    assert fifo.attributes.get("ContentBasedDeduplication") == "true"
