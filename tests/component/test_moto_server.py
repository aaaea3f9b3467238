"""The local stack's moto server's own changes to moto (local/moto_server.py), checked on moto's backends in process:
an SQS message is retained exactly as moto decides it, without building the queue's attributes per message."""

from __future__ import annotations

import time

from moto.core import DEFAULT_ACCOUNT_ID
from moto.sqs.models import Message, sqs_backends

from local.moto_server import _retained


def test_a_message_is_retained_for_its_queues_retention_period_and_no_longer() -> None:
    backend = sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    backend.create_queue("retention-check", MessageRetentionPeriod="60")
    fresh = Message("m-1", "fresh")
    old = Message("m-2", "old")
    fresh.mark_sent()
    old.sent_timestamp = int((time.time() - 61) * 1000)  # type: ignore[assignment]
    assert _retained(backend, "retention-check", fresh)
    assert not _retained(backend, "retention-check", old)
    assert [_retained(backend, "retention-check", m) for m in (fresh, old)] == [
        backend.is_message_valid_based_on_retention_period("retention-check", m) for m in (fresh, old)
    ]
