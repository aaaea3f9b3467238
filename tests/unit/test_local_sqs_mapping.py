"""The local runner's SQS event source mapping (local/mappings.py) against a stand-in SQS client: what it does with
a batch, as Lambda's mapping does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from local.cfn import SqsSource
from local.mappings import SqsMapping

ARN = "arn:aws:sqs:us-east-1:123456789012:notify-local-JobsQueue"
URL = "https://sqs.us-east-1.amazonaws.com/123456789012/notify-local-JobsQueue"


def _message(n: int) -> dict[str, Any]:
    return {"MessageId": f"m-{n}", "ReceiptHandle": f"r-{n}", "Body": f'{{"n": {n}}}', "Attributes": {}}


class Sqs:
    """ReceiveMessage answers in the order given (then nothing); DeleteMessageBatch is recorded."""

    def __init__(self, *receives: Sequence[dict[str, Any]]) -> None:
        self.receives = [list(r) for r in receives]
        self.asked: list[int] = []  # MaxNumberOfMessages of each receive
        self.deleted: list[str] = []

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["QueueUrl"] == URL
        self.asked.append(kwargs["MaxNumberOfMessages"])
        return {"Messages": self.receives.pop(0)[: kwargs["MaxNumberOfMessages"]] if self.receives else []}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:  # noqa: N803
        assert QueueUrl == URL and len(Entries) <= 10
        self.deleted += [e["ReceiptHandle"] for e in Entries]
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}


class Worker:
    name = "WorkerFunction"

    def __init__(self, answer: Any = None, raises: bool = False) -> None:
        self.answer, self.raises = answer, raises
        self.batches: list[list[str]] = []

    def invoke(self, event: dict[str, Any]) -> Any:
        self.batches.append([r["messageId"] for r in event["Records"]])
        assert {r["eventSourceARN"] for r in event["Records"]} == {ARN}
        if self.raises:
            raise RuntimeError("boom")
        return self.answer


def _mapping(monkeypatch: pytest.MonkeyPatch, sqs: Sqs, worker: Worker, **source: Any) -> SqsMapping:
    monkeypatch.setattr("local.mappings.boto3.client", lambda service: sqs)
    return SqsMapping.of(worker, SqsSource("WorkerJobsQueueEventSource", "JobsQueue", **source), URL, ARN)


def test_the_batching_window_gathers_what_arrives_after_the_first_message(monkeypatch: pytest.MonkeyPatch) -> None:
    sqs, worker = Sqs([_message(1)], [_message(2), _message(3)]), Worker()
    _mapping(monkeypatch, sqs, worker, batch_size=3, batching_window_seconds=1).poll()
    assert worker.batches == [["m-1", "m-2", "m-3"]] and sqs.asked == [3, 2]  # full: no third receive
    assert sqs.deleted == ["r-1", "r-2", "r-3"]


def test_without_a_batching_window_one_receive_is_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    sqs, worker = Sqs([_message(1)], [_message(2)]), Worker()
    _mapping(monkeypatch, sqs, worker, batch_size=10).poll()
    assert worker.batches == [["m-1"]] and sqs.asked == [10]


def test_only_the_reported_messages_stay_on_the_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    sqs = Sqs([_message(1), _message(2), _message(3)])
    worker = Worker({"batchItemFailures": [{"itemIdentifier": "m-2"}]})
    _mapping(monkeypatch, sqs, worker, report_batch_item_failures=True).poll()
    assert sqs.deleted == ["r-1", "r-3"]


@pytest.mark.parametrize(
    "failures",
    [[{"itemIdentifier": "m-9"}], [{"itemIdentifier": ""}], [{"itemIdentifier": None}], ["m-1"]],
    ids=["not-in-the-batch", "empty", "null", "not-an-object"],
)
def test_a_report_naming_no_message_of_the_batch_fails_the_whole_batch(
    monkeypatch: pytest.MonkeyPatch, failures: list[Any]
) -> None:
    sqs = Sqs([_message(1), _message(2)])
    _mapping(monkeypatch, sqs, Worker({"batchItemFailures": failures}), report_batch_item_failures=True).poll()
    assert sqs.deleted == []


def test_without_report_batch_item_failures_any_answer_deletes_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    sqs = Sqs([_message(1), _message(2)])
    _mapping(monkeypatch, sqs, Worker({"batchItemFailures": [{"itemIdentifier": "m-1"}]})).poll()
    assert sqs.deleted == ["r-1", "r-2"]


def test_a_raised_invocation_deletes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    sqs = Sqs([_message(1), _message(2)])
    _mapping(monkeypatch, sqs, Worker(raises=True), report_batch_item_failures=True).poll()
    assert sqs.deleted == []
