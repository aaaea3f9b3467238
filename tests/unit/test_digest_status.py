"""A digest in the status reads (issue 23): the digest's notification lists its bucket and first members, its members
page through a cursor, and each DIGESTED member points to its digest's job."""

from __future__ import annotations

from datetime import timedelta

import pytest
from notify.clock import iso
from notify.digests import DigestRule, StoredDigestRule, bucket_id, digest_job_id
from notify.errors import NotFound, ValidationFailed
from notify.models import Channel, DigestFlushTask, NotificationJob
from notify.services.delivery import Outcome
from notify.services.status import DIGEST_MEMBERS_SHOWN, StatusQueries

from .fakes import MemoryDigestRules, MemoryDigestStore, World


def _sent_digest(likes: int) -> tuple[World, list[NotificationJob], str]:
    """u1's ``likes`` likes of one review collected a second apart and their digest sent: the world, the members and
    the digest's job id."""
    world = World()
    rules = MemoryDigestRules()
    rule = {"event_type": "review_liked", "channels": ["email"], "window": {"seconds": 600}, "key": ["review_id"]}
    rules.put(StoredDigestRule(DigestRule.model_validate(rule), "2026-11-24T00:00:00Z"))
    world.digest_rules = rules
    world.wire()
    jobs = []
    for i in range(likes):
        job = world.job("review_liked")
        payload = {**job.payload, "liked_by": f"Liker{i:02d}", "review_id": "r-1"}
        job = job.model_copy(update={"payload": payload, "created_at": world.now})
        assert world.service.handle(job) is Outcome.DIGESTED
        jobs.append(job)
        world.now += timedelta(seconds=1)
    task = next(m for m, _ in world.queue.sent if isinstance(m, DigestFlushTask))
    world.now = task.due_at
    assert world.triage.handle_raw(task.model_dump_json(), "sqs").outcome is Outcome.SENT
    return world, jobs, digest_job_id(bucket_id(task.group_key, task.generation), "u1", Channel.EMAIL)


def _queries(world: World) -> StatusQueries:
    assert isinstance(world.digest_store, MemoryDigestStore)
    return StatusQueries(world.store, world.digest_store)


def test_a_digests_notification_shows_its_bucket_and_first_members_and_each_member_points_to_it() -> None:
    world, jobs, digest = _sent_digest(25)
    view = _queries(world).notification(digest)
    assert view["status"] == "SENT"
    shown = view["digest"]
    assert shown["bucket_id"] == world.store.jobs[jobs[0].job_id]["history"][-1].detail["bucket_id"]
    assert (shown["count"], shown["closed_at"]) == (25, iso(world.now))
    assert shown["first_at"] == shown["members"][0]["occurred_at"] < shown["last_at"]
    assert [m["job_id"] for m in shown["members"]] == [j.job_id for j in jobs[:DIGEST_MEMBERS_SHOWN]]
    assert set(shown["members"][0]) == {"job_id", "occurred_at"}  # never a member's payload
    assert shown["members_next_cursor"] is not None
    member = _queries(world).notification(jobs[3].job_id)
    assert (member["status"], member["digest_job_id"]) == ("DIGESTED", digest)
    assert "digest" not in member


def test_a_digests_members_page_through_the_cursor_oldest_first() -> None:
    world, jobs, digest = _sent_digest(7)
    queries = _queries(world)
    seen, cursor = [], None
    for _ in range(5):
        page = queries.digest_members(digest, limit=3, cursor=cursor)
        seen += [m["job_id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [j.job_id for j in jobs]
    assert _queries(world).notification(digest)["digest"]["members_next_cursor"] is None  # 7 fit in the first 20


def test_members_of_a_job_that_is_not_a_digest_are_not_found_and_a_foreign_cursor_is_a_422() -> None:
    world, jobs, digest = _sent_digest(2)
    queries = _queries(world)
    for job_id in (jobs[0].job_id, "no-such-job"):
        with pytest.raises(NotFound):
            queries.digest_members(job_id)
    with pytest.raises(ValidationFailed) as refused:
        queries.digest_members(digest, cursor="another-bucket-0@1")
    assert [e.loc for e in refused.value.errors] == ["cursor"]


def test_without_the_digest_reads_a_digest_shows_no_bucket_and_a_plain_job_shows_neither_field() -> None:
    world, jobs, digest = _sent_digest(1)
    assert "digest" not in StatusQueries(world.store).notification(digest)
    plain = world.job("new_film")
    assert world.service.handle(plain) is Outcome.SENT
    view = _queries(world).notification(plain.job_id)
    assert "digest" not in view and "digest_job_id" not in view
