"""Digests in the worker against moto and the real handler (issue 23): 50 likes of one review make one email listing
50 likers; a redelivered batch changes nothing; a worker killed between closing the bucket and making its job still
sends one email; a late member lands in the next digest."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from notify.adapters.dynamodb.digest_rules import DynamoDigestRules
from notify.digests import DigestRule, StoredDigestRule, bucket_id
from notify.models import DigestFlushTask

from local.auth_service import AuthService
from local.events import sqs_batch

from .helpers import (
    call_api,
    dies_after,
    emails_to,
    job_for,
    job_status,
    kafka_batch,
    run_worker,
    worker_outcomes,
)

pytestmark = pytest.mark.usefixtures("local_stack", "purge_queues", "fresh_services")
RULE = {"event_type": "review_liked", "channels": ["email"], "window": {"seconds": 20}, "key": ["review_id"]}


@pytest.fixture
def rules(stack_env: dict[str, str]) -> Iterator[DynamoDigestRules]:
    """review_liked email digested per review for this test alone (rules are the whole stack's)."""
    store = DynamoDigestRules(boto3.client("dynamodb"), stack_env["TEMPLATES_TABLE"], cache_seconds=0)
    store.put(StoredDigestRule(DigestRule.model_validate(RULE), "2026-12-07T00:00:00Z"))
    yield store
    store.delete("review_liked")


def _user(auth_service: AuthService) -> str:
    user = f"digest-{uuid.uuid4().hex[:8]}"
    auth_service.add_user(user, segments=(), email=f"{user}@example.com")
    return user


def _like(user: str, liked_by: str, review_id: str = "r-1") -> Any:
    job = job_for(user, "review_liked")
    return job.model_copy(update={"payload": {**job.payload, "liked_by": liked_by, "review_id": review_id}})


def _due_task(member_job_id: str) -> str:
    """The flush task of a member's bucket as it comes back from the delay queue once the window has ended (built
    from the member's DIGESTED entry, so the test does not wait out the 20 s; the unit tests check the wait and the
    task the bucket's opener queues)."""
    bucket = job_status(member_job_id)["history"][-1]["detail"]["bucket_id"]
    group, generation = bucket.rsplit("-", 1)
    task = DigestFlushTask(group_key=group, generation=int(generation), due_at=datetime.now(UTC))
    return task.model_dump_json()


def _sqs_outcomes(*bodies: str) -> dict[str, int]:
    from worker.app import sqs_processor

    assert run_worker(sqs_batch(list(bodies))) == {"batchItemFailures": []}
    return sqs_processor.outcomes


@pytest.mark.usefixtures("rules")
def test_fifty_likes_make_one_email_listing_fifty_likers_and_a_redelivered_batch_changes_nothing(
    auth_service: AuthService, stack_env: dict[str, str], moto_endpoint: str
) -> None:
    user = _user(auth_service)
    likers = [f"Liker{i:02d}" for i in range(50)]
    likes = [_like(user, name) for name in likers]
    assert worker_outcomes(kafka_batch(*likes)) == {"digested": 50}
    assert worker_outcomes(kafka_batch(*likes)) == {"duplicate": 50}  # Kafka delivering the batch again
    assert _sqs_outcomes(_due_task(likes[0].job_id)) == {"sent": 1}
    (mail,) = emails_to(moto_endpoint, f"{user}@example.com")
    assert all(name in json.dumps(mail) for name in likers)
    member = job_status(likes[0].job_id)
    assert member["status"] == "DIGESTED"
    detail = member["history"][-1]["detail"]
    assert member["digest_job_id"] == detail["digest_job_id"]  # the member points to its digest
    digest = job_status(detail["digest_job_id"])
    assert digest["status"] == "SENT"
    # The digest lists its members: the first 20 in its view, all 50 through the members' pages.
    assert (digest["digest"]["bucket_id"], digest["digest"]["count"]) == (detail["bucket_id"], 50)
    listed = [m["job_id"] for m in digest["digest"]["members"]]
    cursor = digest["digest"]["members_next_cursor"]
    while cursor:
        status, page = call_api("GET", f"/api/v1/notifications/{digest['job_id']}/members?limit=15&cursor={cursor}")
        assert status == 200
        listed += [m["job_id"] for m in page["items"]]
        cursor = page["next_cursor"]
    assert sorted(listed) == sorted(job.job_id for job in likes)
    status, error = call_api("GET", f"/api/v1/notifications/{likes[0].job_id}/members")  # a member is no digest
    assert (status, error["error"]["code"]) == (404, "not_found")
    listing = call_api("GET", f"/api/v1/users/{user}/notifications?limit=1")[1]["next_cursor"]
    for query, field in (
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("cursor=x", "cursor"),
        (f"cursor={listing}", "cursor"),
    ):
        status, error = call_api("GET", f"/api/v1/notifications/{digest['job_id']}/members?{query}")
        assert (status, error["error"]["fields"][0]["loc"].split(".")[-1]) == (422, field), query


@pytest.mark.usefixtures("rules")
def test_a_worker_killed_after_closing_the_bucket_sends_one_email_when_the_task_comes_again_and_a_late_member_waits(
    auth_service: AuthService, stack_env: dict[str, str], moto_endpoint: str
) -> None:
    user = _user(auth_service)
    ann = _like(user, "Ann")
    assert worker_outcomes(kafka_batch(ann, _like(user, "Bob"))) == {"digested": 2}
    due = _due_task(ann.job_id)
    from worker import app as worker_app

    worker_app.services.cache_clear()  # clients built under the hook below (botocore copies a session's handlers)
    with dies_after("dynamodb.UpdateItem", "killed after closing the bucket, before recording it"):
        run_worker(sqs_batch([due]))
    worker_app.services.cache_clear()  # a new container, without the hook
    late = _like(user, "Cy")
    assert worker_outcomes(kafka_batch(late)) == {"digested": 1}
    task = json.loads(due)
    assert job_status(late.job_id)["history"][-1]["detail"]["bucket_id"] == bucket_id(
        task["group_key"], task["generation"] + 1
    )
    assert _sqs_outcomes(due) == {"sent": 1}  # the task again (SQS redelivers what the dead worker held)
    assert _sqs_outcomes(due) == {"duplicate": 1}
    (mail,) = emails_to(moto_endpoint, f"{user}@example.com")
    assert "Ann" in json.dumps(mail) and "Bob" in json.dumps(mail) and "Cy" not in json.dumps(mail)
    assert _sqs_outcomes(_due_task(late.job_id)) == {"sent": 1}
    assert len(emails_to(moto_endpoint, f"{user}@example.com")) == 2
