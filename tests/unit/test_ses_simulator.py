"""The local stack's SES event publishing (local/ses_simulator.py): one invocation per event, as SNS makes them,
and a failed invocation tried again as Lambda retries an asynchronous one."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from local.cfn import template
from local.ses_simulator import MailboxSimulator, events_for, published_events


def _send(to: str) -> tuple[bytes, bytes]:
    request = {
        "FromEmailAddress": "notifications@example.com",
        "Destination": {"ToAddresses": [to]},
        "ConfigurationSetName": "feedback",
        "EmailTags": [{"Name": "job_id", "Value": "job-1"}],
    }
    return json.dumps(request).encode(), b'{"MessageId": "m-1"}'


def _until(check: Callable[[], bool], ceiling: float = 30.0) -> None:
    deadline = time.monotonic() + ceiling
    while not check():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.01)


def test_each_event_is_its_own_invocation_and_a_failed_one_is_tried_twice_more() -> None:
    calls: list[dict[str, Any]] = []

    def feedback(event: dict[str, Any]) -> None:
        calls.append(event)
        if len(calls) <= 2:
            raise RuntimeError("the job has not recorded its send yet")

    simulator = MailboxSimulator(feedback, delay=0.0, retry_delays=(0.01, 0.01)).start()
    try:
        simulator.sent(*_send("complaint@simulator.amazonses.com"))  # Delivery, then Complaint
        _until(lambda: simulator.published == 2)
    finally:
        simulator.stop()
    assert [len(call["Records"]) for call in calls] == [1, 1, 1, 1]
    types = [json.loads(call["Records"][0]["Sns"]["Message"])["eventType"] for call in calls]
    assert types == ["Delivery", "Complaint", "Delivery", "Complaint"]
    assert simulator.retried == 2


def test_an_invocation_that_keeps_failing_is_given_up_after_three_tries() -> None:
    tries: list[float] = []

    def feedback(event: dict[str, Any]) -> None:
        tries.append(time.monotonic())
        raise RuntimeError("the table is unreachable")

    simulator = MailboxSimulator(feedback, delay=0.0, retry_delays=(0.01, 0.05)).start()
    try:
        simulator.sent(*_send("success@simulator.amazonses.com"))  # one Delivery event
        _until(lambda: len(tries) == 3)
        _until(lambda: not simulator._due)  # nothing more scheduled
    finally:
        simulator.stop()
    assert (len(tries), simulator.retried, simulator.published) == (3, 2, 0)
    assert tries[2] - tries[1] >= 0.05  # the second retry waited its own delay


def test_a_send_gets_only_the_events_its_configuration_sets_destination_takes() -> None:
    names = {logical_id: f"p-{logical_id}" for logical_id in template().resources("AWS::SES::ConfigurationSet")}
    published = published_events(template(), names)
    tracked, untracked = published["p-EmailConfigurationSet"], published["p-UntrackedEmailConfigurationSet"]
    assert {"Delivery", "Bounce", "Complaint", "Open", "Click"} <= tracked
    assert {"Delivery", "Bounce", "Complaint"} <= untracked and not {"Open", "Click"} & untracked  # account mail's
    request = json.loads(_send("complaint@simulator.amazonses.com")[0])
    assert [e["eventType"] for e in events_for(request, "m-1")] == ["Delivery", "Complaint"]
    only_bounces = {"feedback": frozenset({"Bounce"})}
    assert events_for(request, "m-1", only_bounces) == []
    assert events_for({**request, "ConfigurationSetName": "unknown"}, "m-1", published) == []
