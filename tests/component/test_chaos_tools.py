"""The chaos run's instruments, against real peers: the provider-fault proxy in front of moto server, a function
run in a child process that can be cut off like a Lambda timeout, and Tansu keeping its log in moto's S3."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from notify.adapters.aws import SEND_CONFIG
from notify.adapters.kafka import KafkaConfig, KafkaJobPublisher
from notify.adapters.ses import SesEmailSender
from notify.adapters.sns import SnsPushSender
from notify.catalog import EVENT_TYPES
from notify.errors import TransientError
from notify.jobs import EventPlan, new_event_id
from notify.models import Channel
from notify.records import RenderedMessage

from local.container import ContainerFunction
from local.infra import create_topic
from local.invoke import TaskTimedOut
from local.processes import Process, tansu_process
from local.provider_faults import ProviderFaults

from .helpers import push_endpoints

MESSAGE = RenderedMessage("t", 1, "en", subject="Hi", text="Hello", title="Hi", body="Hello")


def _clients(url: str) -> tuple[Any, Any]:
    return boto3.client("sesv2", endpoint_url=url, config=SEND_CONFIG), boto3.client(
        "sns", endpoint_url=url, config=SEND_CONFIG
    )


def test_the_proxy_throttles_sends_in_the_providers_own_format_and_counts_the_rest_per_job(
    moto_endpoint: str, stack_env: dict[str, str]
) -> None:
    proxy = ProviderFaults(moto_endpoint, email_throttle_rate=1.0, push_throttle_rate=1.0, seed=1).start()
    try:
        ses, sns = _clients(proxy.url)
        email = SesEmailSender(ses, stack_env["SENDER_EMAIL"])
        push = SnsPushSender(sns)
        (endpoint,) = push_endpoints(1)
        # botocore parses both as throttling, and the adapters call them transient (SNS's code is "Throttled").
        with pytest.raises(TransientError, match="TooManyRequestsException"):
            email.send_email("a@example.com", MESSAGE, tags={"job_id": "job-1"})
        with pytest.raises(TransientError, match="Throttled"):
            push.send_push(endpoint, MESSAGE, {"job_id": "job-2"})
        assert (proxy.ledger.throttled_emails, proxy.ledger.throttled_pushes) == (1, 1)
        assert proxy.ledger.reached() == set()

        proxy.email_throttle_rate = proxy.push_throttle_rate = 0.0
        email.send_email("a@example.com", MESSAGE, tags={"job_id": "job-1"})
        email.send_email("a@example.com", MESSAGE, tags={"job_id": "job-1"})
        push.send_push(endpoint, MESSAGE, {"job_id": "job-2"})
        assert proxy.ledger.emails == {"job-1": 2}
        assert proxy.ledger.pushes == {("job-2", endpoint): 1}
        assert proxy.ledger.duplicates() == {"job-1": 1}
    finally:
        proxy.stop()


def slow_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Test handler: writes one line per record to MARKS, a second apart; answers its container's pid."""
    with open(os.environ["MARKS"], "a") as marks:
        for record in event["Records"]:
            time.sleep(1.0 if len(event["Records"]) > 1 else 0.0)
            marks.write(record["body"] + "\n")
            marks.flush()
    return {"pid": os.getpid()}


def test_a_cut_off_kills_the_container_mid_batch_and_the_next_invocation_gets_a_fresh_one(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    # A minute's timeout: the first invocation starts the container (a Python importing boto3 and the handler).
    function = ContainerFunction("Slow", "tests.component.test_chaos_tools.slow_handler", 60, env={"MARKS": str(marks)})
    event = {"Records": [{"body": str(n)} for n in range(10)]}
    try:
        small = {"Records": [{"body": "small"}]}
        first = function.invoke(small)["pid"]
        # 3 s into a 10 s batch: the first record is done within a second, however busy the machine, and not all 10.
        cut = function.cut_off(after=3.0, min_records=5)
        assert function.invoke(small)["pid"] == first  # too small for the cut: same container, cut still armed
        with pytest.raises(TaskTimedOut, match="cut off"):
            function.invoke(event)
        done = marks.read_text().split()[2:]
        assert 0 < len(done) < 10  # killed part-way: what it had done stays done
        assert (cut.records, function.cut) == (10, [cut])
        time.sleep(0.3)
        assert len(marks.read_text().split()[2:]) == len(done)  # and nothing more happened after the kill
        assert function.invoke(small)["pid"] != first  # the next invocation gets a fresh container
        assert function.containers == 2
    finally:
        function.stop()


def test_tansu_on_s3_keeps_its_records_across_a_restart(moto_endpoint: str, tmp_path: Path) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    bucket = f"kafka-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    broker = tansu_process(0, tmp_path / "tansu.log", (moto_endpoint, bucket))
    broker.start()
    bootstrap = f"127.0.0.1:{broker.port}"
    try:
        create_topic(bootstrap, "jobs", partitions=3)
        producer = KafkaProducer(bootstrap_servers=bootstrap, api_version=(2, 8, 0), acks="all")
        for n in range(30):
            producer.send("jobs", str(n).encode(), partition=n % 3)
        producer.flush()
        producer.close()
        broker.stop()
        broker.start()
        consumer = KafkaConsumer(
            "jobs",
            bootstrap_servers=bootstrap,
            api_version=(2, 8, 0),
            group_id="g",
            auto_offset_reset="earliest",
            session_timeout_ms=6000,
            heartbeat_interval_ms=2000,
            max_poll_interval_ms=10000,
            request_timeout_ms=8000,
        )
        seen: list[bytes] = []
        deadline = time.monotonic() + 120  # a ceiling: joining the group on a restarted broker, then 30 records
        while len(seen) < 30 and time.monotonic() < deadline:
            seen += [r.value for rs in consumer.poll(500).values() for r in rs]
        consumer.close()
        assert sorted(int(v) for v in seen) == list(range(30))
    finally:
        broker.stop()


def test_a_producer_that_failed_is_replaced_so_a_broker_restart_cannot_leave_it_crawling(
    kafka_broker: Process, kafka_bootstrap: str, stack_env: dict[str, str]
) -> None:
    # Found by `make chaos`: after a restart, the producer that had failed took seconds per publish for good.
    spec = EVENT_TYPES["password_reset"]
    now = datetime.now(UTC)
    jobs = EventPlan(
        new_event_id(), spec, spec.sample_payload(), ["u1"], [Channel.EMAIL], spec.priority, now, now + timedelta(1)
    ).jobs()
    publisher = KafkaJobPublisher(KafkaConfig(kafka_bootstrap, stack_env["KAFKA_TOPIC"], 10.0))
    publisher.publish(jobs)
    first = publisher._producer
    kafka_broker.stop()
    try:
        with pytest.raises(TransientError):
            publisher.publish(jobs)
        assert publisher._producer is None  # dropped, not kept for the next call
    finally:
        kafka_broker.start()
    deadline = time.monotonic() + 60  # a ceiling: the restarted broker's metadata for a fresh producer
    while True:
        try:
            publisher.publish(jobs)
            break
        except TransientError:
            assert time.monotonic() < deadline, "no publish succeeded within a minute of the restart"
    assert publisher._producer is not None and publisher._producer is not first
    publisher.close()


def test_an_sqs_outage_refuses_every_sqs_call_through_the_proxy_until_it_ends(moto_endpoint: str) -> None:
    from botocore.config import Config as BotoConfig
    from notify.adapters.sqs import SqsJobPublisher

    proxy = ProviderFaults(moto_endpoint).start()
    try:
        direct = boto3.client("sqs", endpoint_url=moto_endpoint)
        url = direct.create_queue(QueueName=f"outage-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        through = boto3.client("sqs", endpoint_url=proxy.url, config=BotoConfig(retries={"max_attempts": 2}))
        publisher = SqsJobPublisher(through, url)
        spec, now = EVENT_TYPES["password_reset"], datetime.now(UTC)
        jobs = EventPlan(
            new_event_id(), spec, spec.sample_payload(), ["u1"], [Channel.EMAIL], spec.priority, now, now + timedelta(1)
        ).jobs()
        proxy.sqs_outage(True)
        # As SQS's own 503: botocore retries it, then the adapter calls it transient (the API's truthful 503).
        with pytest.raises(TransientError):
            publisher.publish(jobs)
        with pytest.raises(through.exceptions.ClientError, match="ServiceUnavailable"):
            through.receive_message(QueueUrl=url, WaitTimeSeconds=0)
        assert proxy.ledger.sqs_refused >= 4  # two attempts of each call
        assert "Messages" not in direct.receive_message(QueueUrl=url, WaitTimeSeconds=0)  # nothing got through
        proxy.sqs_outage(False)
        publisher.publish(jobs)
        (message,) = direct.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
        assert jobs[0].job_id in message["Body"]
    finally:
        proxy.stop()


def test_the_local_sqs_mapping_rides_out_an_outage_and_a_batch_it_could_not_delete_comes_back(
    moto_endpoint: str,
) -> None:
    """The runner's SQS poller through the proxy: receives refused while SQS is down (a warning, no crash), the
    message taken once it is back; a delete refused leaves the batch to return after the visibility timeout (1 s
    here), as Lambda's poller does, and the function gets it again."""
    from local.mappings import SqsMapping

    proxy = ProviderFaults(moto_endpoint).start()
    direct = boto3.client("sqs", endpoint_url=moto_endpoint)
    url = direct.create_queue(QueueName=f"poller-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "1"})[
        "QueueUrl"
    ]
    arn = direct.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    got: list[str] = []

    class Recorder:
        name = "Recorder"

        def invoke(self, event: dict[str, Any]) -> Any:
            got.extend(r["body"] for r in event["Records"])
            if len(got) == 1:
                proxy.sqs_outage(True)  # SQS goes down while the first batch runs: its delete is refused
            return {"batchItemFailures": []}

    os.environ["AWS_ENDPOINT_URL_SQS"] = proxy.url
    try:
        mapping = SqsMapping(Recorder(), url, arn, 10)
    finally:
        os.environ.pop("AWS_ENDPOINT_URL_SQS")
    direct.send_message(QueueUrl=url, MessageBody="one")
    mapping.start()
    try:
        deadline = time.monotonic() + 60
        while len(got) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert got == ["one"]
        time.sleep(2.5)  # down: the poller's receives are refused, past the message's visibility timeout
        assert got == ["one"] and proxy.ledger.sqs_refused > 0
        proxy.sqs_outage(False)
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert got == ["one", "one"]  # not deleted the first time: it came back
        while time.monotonic() < deadline:  # deleted this time: the queue empties
            counts = direct.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            )["Attributes"]
            if sum(int(v) for v in counts.values()) == 0:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the message was never deleted: {counts}")
    finally:
        mapping.stop()
        proxy.stop()
