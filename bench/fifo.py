"""A FIFO jobs queue, for the benchmarks only: what Transport sqs would cost with a FIFO queue in place of the standard
one template.yaml makes (docs/ARCHITECTURE.md#transport says why it is standard).

:class:`FifoJobPublisher` is :class:`~notify.adapters.sqs.SqsJobPublisher` with what a FIFO queue requires of each
message: ``MessageGroupId`` the job's user (Kafka's key: a fan-out task's event), ``MessageDeduplicationId`` the job's
id, and no per-message ``DelaySeconds``. It sends as the standard publisher does (``SendMessageBatch`` of ten, up to
:data:`~notify.adapters.sqs.PARALLEL_BATCHES` at once, failed entries sent once more), so the two differ only in the
queue. Sending a request's chunks at once keeps order between users, not within one: a real FIFO publisher would have
to send one user's chunks one after the other. Every measured request names each user once, so it makes no
difference here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any
from unittest import mock

from notify.adapters.kafka import _key
from notify.adapters.sqs import PARALLEL_BATCHES, SqsJobPublisher, _attributes, _batches, _send_batch
from notify.models import FanoutTask, Message, NotificationJob

from bench.peers import sqs_transport


def deduplication_id(message: Message) -> str:
    """A job's id; a fan-out task's event, page and attempt (only jobs and fan-out tasks travel on the jobs queue)."""
    if isinstance(message, NotificationJob):
        return message.job_id
    assert isinstance(message, FanoutTask), message.kind_name()
    return f"{message.event_id}-{message.page}-{message.attempt}"


def fifo_entry(index: int, message: Message) -> dict[str, Any]:
    """One ``SendMessageBatch`` entry of a FIFO jobs queue: the standard publisher's body and attributes, grouped by
    user and deduplicated by job id."""
    return {
        "Id": str(index),
        "MessageBody": message.model_dump_json(exclude_none=True),
        "MessageAttributes": _attributes(message),
        "MessageGroupId": _key(message),
        "MessageDeduplicationId": deduplication_id(message),
    }


class FifoJobPublisher(SqsJobPublisher):
    """Transport sqs's publisher for a FIFO jobs queue (benchmarks only; see the module's docstring)."""

    def publish(self, jobs: Sequence[Message]) -> None:
        chunks = [[fifo_entry(i, m) for i, m in enumerate(chunk)] for chunk in _batches(list(jobs))]
        if len(chunks) <= 1:
            for entries in chunks:
                _send_batch(self._client, self._url, entries)
            return
        with ThreadPoolExecutor(max_workers=min(PARALLEL_BATCHES, len(chunks)), thread_name_prefix="fifo-send") as pool:
            for future in [pool.submit(_send_batch, self._client, self._url, entries) for entries in chunks]:
                future.result()


@contextmanager
def fifo_transport(queue_url: str) -> Iterator[None]:
    """:func:`~bench.peers.sqs_transport` to the FIFO queue at ``queue_url``, the handlers' publisher built as a
    :class:`FifoJobPublisher` (``publisher_for`` finds ``SqsJobPublisher`` in its module when a container starts)."""
    assert queue_url.endswith(".fifo"), queue_url
    with mock.patch("notify.adapters.transport.SqsJobPublisher", FifoJobPublisher), sqs_transport(queue_url):
        assert os.environ["JOBS_QUEUE_URL"] == queue_url
        yield
