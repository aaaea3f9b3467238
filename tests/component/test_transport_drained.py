"""``python -m ops transport-drained`` against Tansu and moto server (``ops/drain.py``): while anything of the
transport being left is unread, being handled, or (SQS) delayed, the answer is NOT DRAINED (exit 1); once the worker's
Kafka event source mapping (the local runner's, as template.yaml configures it) has committed every record, or the
jobs queue's last message is deleted, it is DRAINED (exit 0). The function behind the mapping is a stand-in that
holds its first batch until told: what is under test is what the command sees."""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from kafka import KafkaAdminClient, KafkaProducer

from local.infra import create_topic
from local.mappings import KafkaMapping
from local.processes import free_port
from local.stack import LocalStack
from ops.__main__ import main
from ops.aliases import Alias, align
from ops.drain import CONSUMER_GROUP

from .helpers import deployed_function

pytestmark = pytest.mark.usefixtures("local_stack")


def _drained(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The command's exit status and what it printed (stdout, then stderr)."""
    capsys.readouterr()
    try:
        code = main(["transport-drained", *args])
    except SystemExit as exited:  # argparse's refusals
        code = int(exited.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _until_drained(capsys: pytest.CaptureFixture[str], *args: str, timeout: float = 60) -> str:
    """Poll the command until it answers DRAINED (a ceiling: it returns as soon as it does)."""
    deadline = time.monotonic() + timeout
    while True:
        code, out = _drained(capsys, *args)
        if code == 0:
            return out
        assert code == 1 and time.monotonic() < deadline, out
        time.sleep(0.3)


class Holding:
    """The worker as the mapping invokes it: it keeps every value and holds its first batch until ``release``."""

    name = "WorkerFunction"

    def __init__(self) -> None:
        self.seen: list[bytes] = []
        self.holding = threading.Event()
        self.release = threading.Event()

    def invoke(self, event: dict[str, Any]) -> Any:
        self.seen += [base64.b64decode(r["value"]) for rs in event["records"].values() for r in rs]
        self.holding.set()
        assert self.release.wait(60), "the test never released the batch"
        return {"batchItemFailures": []}


def _produce(bootstrap: str, topic: str, values: dict[int, list[bytes]]) -> None:
    """Each value a batch of its own: Tansu answers a partition's end offset as its last batch's first offset plus
    one, not its last record's (Kafka's high watermark), so a batch of several records would look like one."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, api_version=(2, 8, 0), acks="all")
    try:
        for partition, records in values.items():
            for value in records:
                producer.send(topic, value, partition=partition)
                producer.flush(10)
    finally:
        producer.close()


@pytest.fixture
def topic(kafka_bootstrap: str) -> str:
    name = f"drain-{uuid.uuid4().hex[:8]}"
    create_topic(kafka_bootstrap, name, partitions=2)
    return name


def test_the_group_the_command_reads_is_the_one_the_worker_mapping_commits_as(local_stack: LocalStack) -> None:
    assert local_stack.kafka_wiring("WorkerFunction").source.consumer_group == CONSUMER_GROUP


def test_a_topic_is_drained_once_the_worker_mapping_has_committed_every_record_and_not_before(
    local_stack: LocalStack, topic: str, capsys: pytest.CaptureFixture[str]
) -> None:
    group = f"group-{uuid.uuid4().hex[:8]}"
    kafka = ("--transport", "kafka", "--bootstrap-servers", local_stack.bootstrap, "--topic", topic)
    args = (*kafka, "--kafka-auth", "none", "--group", group, "--timeout", "10")
    # Nothing written yet: an empty topic is drained, whether or not the group ever committed.
    code, out = _drained(capsys, *args)
    assert code == 0 and out.startswith("DRAINED"), out
    # Written, never read: every record counts, from the start of each partition (the mapping's TRIM_HORIZON).
    _produce(local_stack.bootstrap, topic, {0: [b"a-0", b"a-1", b"a-2"], 1: [b"b-0", b"b-1"]})
    code, out = _drained(capsys, *args)
    assert code == 1, out
    assert out.startswith(f"NOT DRAINED  kafka topic {topic}, group {group}: 5 waiting"), out
    assert "partition 0 3, partition 1 2" in out
    # Read and being handled: the batch is not committed until the worker answers for it, so it still counts.
    wiring = local_stack.kafka_wiring("WorkerFunction")
    source = dataclasses.replace(wiring.source, consumer_group=group)
    handler = Holding()
    mapping = KafkaMapping(handler, dataclasses.replace(wiring, source=source, topic=topic))
    mapping.start()
    try:
        assert handler.holding.wait(60), "the mapping never invoked the worker"
        code, out = _drained(capsys, *args)
        assert code == 1 and "NOT DRAINED" in out, out
        handler.release.set()
        out = _until_drained(capsys, *args)
        assert out.startswith(f"DRAINED      kafka topic {topic}, group {group}: nothing waits"), out
        assert sorted(handler.seen) == [b"a-0", b"a-1", b"a-2", b"b-0", b"b-1"]
    finally:
        handler.release.set()
        mapping.stop()
    # A record published afterwards (by a version still on the old transport, say) makes it undrained again.
    _produce(local_stack.bootstrap, topic, {1: [b"late"]})
    code, out = _drained(capsys, *args)
    assert code == 1 and "1 waiting (partition 1 1)" in out, out


def test_kafka_that_cannot_be_reached_is_neither_drained_nor_not(capsys: pytest.CaptureFixture[str]) -> None:
    unreachable = f"127.0.0.1:{free_port()}"
    code, out = _drained(
        capsys, "--transport", "kafka", "--bootstrap-servers", unreachable, "--kafka-auth", "none", "--timeout", "2"
    )
    assert code == 2 and f"cannot read Kafka at {unreachable}" in out, out


def test_a_topic_kafka_does_not_know_is_neither_drained_nor_created(
    local_stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped --topic (or KafkaTopic): Tansu, as Kafka by default, creates a topic a Metadata request names and
    allows to be created, and an empty topic would be DRAINED."""
    missing = f"drain-missing-{uuid.uuid4().hex[:8]}"
    code, out = _drained(
        capsys, "--transport", "kafka", "--bootstrap-servers", local_stack.bootstrap, "--topic", missing,
        "--kafka-auth", "none", "--timeout", "10",
    )  # fmt: skip
    assert code == 2 and f"Kafka at {local_stack.bootstrap}: Kafka knows no topic {missing}" in out, out
    admin = KafkaAdminClient(bootstrap_servers=local_stack.bootstrap, api_version=(2, 8, 0))
    try:
        assert missing not in admin.list_topics()
    finally:
        admin.close()


@pytest.mark.parametrize("where", [("--stack", "notification-service"), ("--transport", "sqs", "--queue-url", "q")])
def test_aws_that_cannot_be_reached_is_neither_drained_nor_not(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: tuple[str, ...]
) -> None:
    """The stack (DescribeStacks) or the jobs queue (GetQueueAttributes) behind an endpoint that does not answer."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    code, out = _drained(capsys, *where)
    assert code == 2 and out.startswith("transport-drained: cannot read AWS: Could not connect"), out
    assert "Traceback" not in out and len(out.splitlines()) == 1, out


@pytest.fixture
def jobs_queue() -> Iterator[str]:
    """A jobs queue of the test's own, with the template's visibility timeout."""
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=f"jobs-{uuid.uuid4().hex[:12]}", Attributes={"VisibilityTimeout": "720"})
    yield str(url["QueueUrl"])
    sqs.delete_queue(QueueUrl=url["QueueUrl"])


def test_the_jobs_queue_is_drained_once_no_message_waits_is_in_flight_or_is_delayed(
    jobs_queue: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = boto3.client("sqs")
    args = ("--transport", "sqs", "--queue-url", jobs_queue)
    code, out = _drained(capsys, *args)
    assert code == 0 and out.startswith(f"DRAINED      sqs {jobs_queue}: nothing waits"), out
    sqs.send_message(QueueUrl=jobs_queue, MessageBody=json.dumps({"job_id": "j1"}))
    assert _drained(capsys, *args) == (1, f"NOT DRAINED  sqs {jobs_queue}: 1 waiting (waiting 1)\n")
    # Received by the event source and not yet deleted: the worker is handling it, or it comes back.
    (message,) = sqs.receive_message(QueueUrl=jobs_queue, MaxNumberOfMessages=10)["Messages"]
    assert _drained(capsys, *args) == (1, f"NOT DRAINED  sqs {jobs_queue}: 1 waiting (in flight 1)\n")
    sqs.delete_message(QueueUrl=jobs_queue, ReceiptHandle=message["ReceiptHandle"])
    assert _drained(capsys, *args)[0] == 0
    # A message sent with a delay waits too, though nothing can receive it yet.
    sqs.send_message(QueueUrl=jobs_queue, MessageBody=json.dumps({"job_id": "j2"}), DelaySeconds=900)
    assert _drained(capsys, *args) == (1, f"NOT DRAINED  sqs {jobs_queue}: 1 waiting (delayed 1)\n")


# A stack as CloudFormation describes it: its DrainTransport and, while the jobs queue is read, its URL.
STACK_TEMPLATE = {
    "Parameters": {"Transport": {"Type": "String"}, "DrainTransport": {"Type": "String"}},
    "Resources": {"JobsQueue": {"Type": "AWS::SQS::Queue"}},
    "Outputs": {"JobsQueueUrl": {"Value": {"Ref": "JobsQueue"}}},
}


@pytest.fixture
def stack() -> Iterator[str]:
    """A CloudFormation stack in moto that drains its jobs queue (Transport kafka, DrainTransport sqs)."""
    cloudformation = boto3.client("cloudformation")
    name = f"drain-{uuid.uuid4().hex[:8]}"
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=json.dumps(STACK_TEMPLATE),
        Parameters=[
            {"ParameterKey": "Transport", "ParameterValue": "kafka"},
            {"ParameterKey": "DrainTransport", "ParameterValue": "sqs"},
        ],
    )
    yield name
    cloudformation.delete_stack(StackName=name)


def test_with_a_stack_the_command_checks_what_the_stack_drains_where_its_outputs_say(
    stack: str, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
    (url,) = [o["OutputValue"] for o in outputs if o["OutputKey"] == "JobsQueueUrl"]
    code, out = _drained(capsys, "--stack", stack)
    assert code == 0 and out.startswith(f"DRAINED      sqs {url}"), out
    boto3.client("sqs").send_message(QueueUrl=url, MessageBody="{}")
    code, out = _drained(capsys, "--stack", stack)
    assert code == 1 and out.startswith(f"NOT DRAINED  sqs {url}"), out


@pytest.fixture
def worker_alias(stack: str, monkeypatch: pytest.MonkeyPatch) -> Alias:
    """The stack's worker in moto's Lambda, as a deployment leaves it: version 1 published, the alias `live` on it.
    moto's CloudFormation makes no AWS::Lambda::Alias, so the stack's aliases (ListStackResources' summaries, which
    ops.aliases.aliases_of reads: tests/unit/test_align_aliases.py) are given as they would be found."""
    name = deployed_function("drain-worker", {"TRANSPORT": "sqs"})
    alias = Alias("WorkerFunction", name, "live")
    monkeypatch.setattr("ops.__main__.stack_aliases", lambda _, found: [alias] if found == stack else [])
    return alias


def test_while_an_alias_runs_a_version_behind_latest_the_stack_is_not_drained(
    stack: str, worker_alias: Alias, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bare `sam deploy` of the first step changed TRANSPORT on $LATEST and published nothing: the alias's version
    still publishes to the jobs queue being drained, which may be empty now and not in a minute."""
    client = boto3.client("lambda")
    client.update_function_configuration(
        FunctionName=worker_alias.function, Environment={"Variables": {"TRANSPORT": "kafka"}}
    )
    code, out = _drained(capsys, "--stack", stack)
    assert code == 1, out
    assert out == (
        f"NOT DRAINED  alias {worker_alias.function}:live still on version 1, behind $LATEST's Environment:"
        " run make align-aliases\n"
    )
    list(align(client, [worker_alias]))  # what make align-aliases does
    code, out = _drained(capsys, "--stack", stack)
    assert code == 0 and out.startswith("DRAINED      sqs"), out
