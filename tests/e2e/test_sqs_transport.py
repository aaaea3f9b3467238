"""`TRANSPORT=sqs make local` as a black box: the whole service with no Kafka, jobs travelling on the SQS jobs queue.

The session's sqs stack (tests/e2e/conftest.py) is shared with test_local_stack, whose end-to-end slice runs on it
as well as on Kafka; here is what only this transport has: no Kafka at all, and poison on the jobs queue."""

from __future__ import annotations

import base64
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.events import REGION
from local.launch import StackProcess
from local.processes import port_open

from .jobs import new_film_emails
from .waits import poll

pytestmark = pytest.mark.e2e
# Every wait is a ceiling that returns as soon as its condition holds (a loaded machine gets the time).


def _raw(letter: dict[str, Any]) -> bytes:
    """The bytes a dead letter keeps (as text, or base64 when they are not)."""
    return base64.b64decode(letter["raw_base64"]) if letter.get("raw_base64") else str(letter.get("raw") or "").encode()


@pytest.mark.timeout(360)  # the session's sqs stack may start in this test's time (240 s)
def test_no_kafka_runs_and_the_banner_names_the_jobs_queue(sqs_stack: StackProcess) -> None:
    stack = sqs_stack
    assert stack.transport == "sqs"
    assert not port_open(stack.ports["KAFKA_PORT"])
    children = subprocess.run(["pgrep", "-P", str(stack.process.pid)], capture_output=True, text=True).stdout.split()
    commands = [Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode() for pid in children]
    assert commands and not [c for c in commands if "tansu" in c], commands  # moto server only
    queue = stack.queue_url("JobsQueue")
    log = poll(stack.log.read_text, lambda text: "local stack is up" in text, timeout=60)
    assert "local stack is up, transport sqs" in log
    assert f"Jobs queue        {queue}" in log
    assert "Kafka (Tansu)" not in log and "  Kafka  " not in log


@pytest.mark.timeout(420)  # 180 s for the jobs, 120 s for the letters
def test_poison_messages_between_good_jobs_on_the_jobs_queue_go_to_the_dlq_alone(sqs_stack: StackProcess) -> None:
    """Messages that are no job (text, a JSON array, JSON 5,000 deep, an object of no known shape) sent straight
    to the jobs queue in one SendMessageBatch between good jobs. SQS takes only text, so bytes that are not UTF-8
    cannot reach this queue (the Kafka transport's test sends those)."""
    stack = sqs_stack
    jobs = new_film_emails(["demo-user-30", "demo-user-31", "demo-user-32"])
    tag = uuid.uuid4().hex
    poison = [f"\u00ff not a job {tag}", f'["{tag}", 1]', "[" * 5000 + f'"{tag}"' + "]" * 5000, f'{{"key": "{tag}"}}']
    good = [job.model_dump_json() for job in jobs]
    bodies = [good[0], poison[0], good[1], poison[1], good[2], *poison[2:]]  # good, bad, good, bad, good, bad, bad
    sqs = boto3.client(
        "sqs",
        endpoint_url=stack.moto,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    answer = sqs.send_message_batch(
        QueueUrl=stack.queue_url("JobsQueue"),
        Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)],
    )
    assert not answer.get("Failed"), answer
    deadline = time.monotonic() + 180
    for job in jobs:
        stack.wait_status(job.job_id, "SENT", timeout=max(1, deadline - time.monotonic()))

    def letters() -> list[dict[str, Any]]:
        status, body = stack.call("GET", "/api/v1/dlq?limit=200")
        assert status == 200, body
        return [x for x in body["items"] if tag.encode() in _raw(x)]

    # A listing hides what it returns for 2 s (dlq.LIST_VISIBILITY_SECONDS): each within the ceiling sees the rest.
    found: dict[str, dict[str, Any]] = {}

    def all_letters() -> dict[str, dict[str, Any]]:
        found.update({x["message_id"]: x for x in letters()})
        return found

    poll(all_letters, lambda seen: len(seen) == len(poison), timeout=120, every=3)
    assert all(x["reason"] == "invalid_job" for x in found.values()), found
    # Each letter names its queue and message, as a Kafka record's names its coordinates.
    queue = stack.queue_url("JobsQueue").rsplit("/", 1)[-1]
    sent = {int(entry["Id"]): entry["MessageId"] for entry in answer["Successful"]}
    poisoned = {f"sqs:{queue}@{sent[i]}" for i, body in enumerate(bodies) if body in poison}
    assert {x["source"] for x in found.values()} == poisoned, found
