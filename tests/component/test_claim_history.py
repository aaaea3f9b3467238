"""The job ledger's claim on moto (DynamoJobLedger): a copy of a finished job gets its history (so the worker can
queue again the status webhooks its first delivery may not have queued), a stale copy of an older attempt none."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest
from notify.adapters.dynamodb.jobs import DynamoJobLedger
from notify.catalog import EVENT_TYPES
from notify.clock import utc_now
from notify.jobs import EventPlan, new_event_id
from notify.models import Channel, NotificationJob, Status
from notify.records import ClaimOutcome

pytestmark = pytest.mark.usefixtures("local_stack")


def _job() -> NotificationJob:
    spec = EVENT_TYPES["user_registered"]
    now = utc_now()
    plan = EventPlan(
        new_event_id(),
        spec,
        spec.sample_payload(),
        ["u-claim"],
        [Channel.EMAIL],
        spec.priority,
        now,
        now + timedelta(1),
    )
    return plan.jobs()[0]


def test_a_finished_jobs_copy_gets_its_history_and_a_stale_copy_none(stack_env: dict[str, str]) -> None:
    ledger = DynamoJobLedger(boto3.client("dynamodb"), stack_env["NOTIFICATIONS_TABLE"])
    sent = _job()
    claim = ledger.claim(sent, utc_now(), 60)
    ledger.transition(sent, Status.SENT, utc_now(), claim.token, detail={"provider_message_id": "ses-42"})
    again = ledger.claim(sent, utc_now(), 60)
    assert (again.outcome, again.current) == (ClaimOutcome.DUPLICATE, Status.SENT)
    assert [(t.status, t.detail.get("provider_message_id")) for t in again.history][-1] == (Status.SENT, "ses-42")

    retried = _job()
    claim = ledger.claim(retried, utc_now(), 60)
    ledger.transition(retried, Status.RETRYING, utc_now(), claim.token, attempt=1, detail={"retry_in": 10})
    stale = ledger.claim(retried, utc_now(), 60)  # attempt 0's record again, after attempt 1 was planned
    assert (stale.outcome, stale.history) == (ClaimOutcome.DUPLICATE, ())


def test_a_first_click_forgotten_makes_the_next_click_first_again(stack_env: dict[str, str]) -> None:
    ledger = DynamoJobLedger(boto3.client("dynamodb"), stack_env["NOTIFICATIONS_TABLE"])
    job = _job()
    claim = ledger.claim(job, utc_now(), 60)
    ledger.transition(job, Status.SENT, utc_now(), claim.token)
    first = ledger.record_click(job.job_id, "A" * 16, "2026-12-07T12:00:00.000Z", "https://example.com/a")
    assert first is not None and first["job_id"] == job.job_id
    ledger.forget_first_click(job.job_id, "2026-12-07T11:59:59.000Z")  # another click's: kept
    assert ledger.record_click(job.job_id, "A" * 16, "2026-12-07T12:00:01.000Z", None) is None
    ledger.forget_first_click(job.job_id, "2026-12-07T12:00:00.000Z")
    again = ledger.record_click(job.job_id, "A" * 16, "2026-12-07T12:00:02.000Z", None)
    assert again is not None and again["job_id"] == job.job_id
    assert ledger.link_clicks(job.job_id, "A" * 16) == 3  # the counts were never undone
