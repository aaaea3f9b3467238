"""What ``python -m ops transport-drained`` counts and reports (``ops/drain.py``), and how it reads a stack
(DescribeStacks' shape, from AWS's API)."""

from __future__ import annotations

import io
from typing import Any

import pytest

from ops.__main__ import main
from ops.drain import Backlog, partition_lag, report, stack_transports


def test_a_partition_lags_by_the_records_after_the_committed_offset() -> None:
    ends = {0: 10, 1: 7, 2: 5, 3: 4}
    beginnings = {0: 0, 1: 0, 2: 3, 3: 4}
    # 0: committed 6 of 10; 1: all; 2: never committed, so from its first record (TRIM_HORIZON); 3: empty.
    assert partition_lag(ends, beginnings, {0: 6, 1: 7, 2: None, 3: None}) == {0: 4, 1: 0, 2: 2, 3: 0}


def test_a_commit_before_what_the_topic_still_holds_counts_from_its_first_record() -> None:
    # Retention dropped offsets 0-4: the mapping resumes at 5, so those records are not waiting.
    assert partition_lag({0: 9}, {0: 5}, {0: 2}) == {0: 4}
    assert partition_lag({0: 9}, {0: 5}, {0: -1}) == {0: 4}  # Kafka's "no offset"


def test_a_backlog_is_drained_only_when_nothing_waits_anywhere() -> None:
    out = io.StringIO()
    kafka = Backlog("kafka", "topic jobs, group g", {"partition 0": 0, "partition 1": 3, "partition 2": 1})
    assert not kafka.drained and kafka.total == 4
    assert report(kafka, out) == 1
    assert out.getvalue() == "NOT DRAINED  kafka topic jobs, group g: 4 waiting (partition 1 3, partition 2 1)\n"
    empty = Backlog("sqs", "https://queue", {"waiting": 0, "in flight": 0, "delayed": 0})
    assert report(empty, out) == 0
    assert out.getvalue().splitlines()[-1].startswith("DRAINED      sqs https://queue: nothing waits; SQS's counts")


class CloudFormation:
    """DescribeStacks of one stack, as AWS answers it."""

    def __init__(self, parameters: dict[str, str], outputs: dict[str, str]) -> None:
        self.stack = {
            "StackName": "notification-service",
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
        }

    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803 - boto3's argument name
        assert StackName == "notification-service"
        return {"Stacks": [self.stack]}


def test_a_stack_says_which_transport_it_drains_and_where_its_jobs_queue_is() -> None:
    queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/notification-service-JobsQueue-AbC"
    found = stack_transports(
        CloudFormation({"Transport": "kafka", "DrainTransport": "sqs"}, {"JobsQueueUrl": queue}),
        "notification-service",
    )
    assert (found.draining, found.jobs_queue_url) == ("sqs", queue)
    done = stack_transports(
        CloudFormation({"Transport": "kafka", "DrainTransport": "none"}, {}), "notification-service"
    )
    assert (done.draining, done.jobs_queue_url) == (None, None)
    # A stack deployed before DrainTransport existed has no such parameter: it drains nothing.
    assert stack_transports(CloudFormation({"Transport": "sqs"}, {}), "notification-service").draining is None


def test_without_a_stack_or_a_transport_there_is_nothing_to_check(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["transport-drained"])
    assert exited.value.code == 2
    assert "give --transport kafka or sqs" in capsys.readouterr().err
