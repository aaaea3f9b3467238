"""Digests in the worker (issue 23): jobs collected into buckets as DIGESTED, once each; a due bucket closed into one
digest job whatever repeats; a late member in the next bucket; account mail and other channels never collected."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from notify.digests import DigestRule, StoredDigestRule, bucket_id, digest_job_id
from notify.errors import StoreUnavailable
from notify.models import Category, Channel, Contact, DigestFlushTask, NotificationJob, Status
from notify.records import UserPreferences
from notify.services.delivery import Outcome
from notify.services.digests import CRON_SPREAD_SECONDS, STUCK_AFTER, DigestSweep
from notify.services.triage import parse_message
from notify.throttles import CategoryThrottle, ThrottleRule

from .fakes import T0, MemoryDigestRules, MemoryDigestStore, MemoryPreferences, MemoryThrottleRules, World

WINDOW = 20


def _world(**rule: Any) -> World:
    """u1's email pipeline with a digest rule on review_liked email (20 s window, one digest per review)."""
    world = World()
    rules = MemoryDigestRules()
    spec = {"event_type": "review_liked", "channels": ["email"], "window": {"seconds": WINDOW}, "key": ["review_id"]}
    rules.put(StoredDigestRule(DigestRule.model_validate({**spec, **rule}), "2026-11-24T00:00:00Z"))
    world.digest_rules = rules
    world.wire()
    return world


def _store(world: World) -> MemoryDigestStore:
    assert world.digest_store is not None
    return world.digest_store


def _like(world: World, liked_by: str, review_id: str = "r-1") -> NotificationJob:
    job = world.job("review_liked")
    return job.model_copy(update={"payload": {**job.payload, "liked_by": liked_by, "review_id": review_id}})


def _tasks(world: World) -> list[tuple[DigestFlushTask, int]]:
    return [(m, delay) for m, delay in world.queue.sent if isinstance(m, DigestFlushTask)]


def _run(world: World, task: DigestFlushTask) -> Outcome:
    """The task as the worker gets it from the delay queue: through the triage, as raw JSON."""
    return world.triage.handle_raw(task.model_dump_json(), "sqs").outcome


def test_members_are_digested_into_one_bucket_whose_opener_queues_its_flush_for_the_window_end() -> None:
    world = _world()
    likes = [_like(world, name) for name in ("Ann", "Bob", "Cy")]
    assert [world.service.handle(job) for job in likes] == [Outcome.DIGESTED] * 3
    ((task, delay),) = _tasks(world)
    # A group's generations start at the time in seconds: a group whose head expired never reuses a bucket id.
    assert (task.generation, task.due_at, delay) == (int(T0.timestamp()), T0 + timedelta(seconds=WINDOW), WINDOW)
    bucket = bucket_id(task.group_key, task.generation)
    for job in likes:
        entry = world.store.jobs[job.job_id]["history"][-1]
        assert entry.status is Status.DIGESTED
        assert entry.detail["bucket_id"] == bucket
        assert entry.detail["digest_job_id"] == digest_job_id(bucket, "u1", Channel.EMAIL)
    assert len(_store(world).buckets[bucket]) == 3
    assert world.email.sent == []


def test_a_redelivered_member_changes_nothing() -> None:
    world = _world()
    job = _like(world, "Ann")
    assert world.service.handle(job) is Outcome.DIGESTED
    assert world.service.handle(job) is Outcome.DUPLICATE
    (bucket,) = _store(world).buckets.values()
    assert len(bucket) == 1 and _store(world).adds == 1


def test_other_key_values_channels_and_account_mail_are_not_collected_together() -> None:
    world = _world()
    assert world.service.handle(_like(world, "Ann", "r-1")) is Outcome.DIGESTED
    assert world.service.handle(_like(world, "Bob", "r-2")) is Outcome.DIGESTED
    assert len(_store(world).buckets) == 2  # one per review
    assert world.service.handle(world.job("password_reset")) is Outcome.SENT
    assert world.service.handle(world.job("new_film")) is Outcome.SENT  # no rule for it


def test_a_flush_task_before_its_time_hops_and_writes_nothing() -> None:
    world = _world()
    world.service.handle(_like(world, "Ann"))
    ((task, _),) = _tasks(world)
    world.queue.sent.clear()
    world.now += timedelta(seconds=WINDOW - 5)
    assert _run(world, task) is Outcome.SCHEDULED
    assert world.queue.sent == [(task, 5)]
    assert not _store(world).closed_buckets


def test_a_due_bucket_becomes_one_digest_job_that_is_sent_and_lists_its_members() -> None:
    world = _world()
    names = ["Ann", "Bob", "Cy", "Di", "Ed"]
    for name in names:
        world.service.handle(_like(world, name))
        world.now += timedelta(seconds=1)
    ((task, _),) = _tasks(world)
    world.now = task.due_at
    assert _run(world, task) is Outcome.SENT
    (mail,) = world.email.sent
    text = json.dumps(mail, default=str)
    assert all(name in text for name in names)
    bucket = bucket_id(task.group_key, task.generation)
    digest = world.store.jobs[digest_job_id(bucket, "u1", Channel.EMAIL)]
    assert digest["status"] is Status.SENT


def test_a_second_flush_of_a_closed_bucket_sends_nothing_more() -> None:
    """A worker killed after closing the bucket and before making its job: the task comes again; one email."""
    world = _world()
    world.service.handle(_like(world, "Ann"))
    ((task, _),) = _tasks(world)
    world.now = task.due_at
    store = _store(world)
    assert (
        store.close(task.group_key, task.generation, world.now) is not None
    )  # the first run got this far, then stopped
    assert _run(world, task) is Outcome.SENT
    assert _run(world, task) is Outcome.DUPLICATE
    assert len(world.email.sent) == 1


def test_a_late_member_opens_the_next_bucket_with_its_own_flush() -> None:
    world = _world()
    world.service.handle(_like(world, "Ann"))
    ((first, _),) = _tasks(world)
    world.now = first.due_at
    assert _run(world, first) is Outcome.SENT
    late = _like(world, "Bob")
    assert world.service.handle(late) is Outcome.DIGESTED
    second = _tasks(world)[-1][0]
    assert second.generation == first.generation + 1 and second.due_at == world.now + timedelta(seconds=WINDOW)
    assert world.store.jobs[late.job_id]["history"][-1].detail["bucket_id"] == bucket_id(
        first.group_key, second.generation
    )
    world.now = second.due_at
    assert _run(world, second) is Outcome.SENT
    assert len(world.email.sent) == 2


def test_the_member_that_fills_a_bucket_queues_a_flush_due_at_once() -> None:
    world = _world(max_items=2)
    world.service.handle(_like(world, "Ann"))
    world.service.handle(_like(world, "Bob"))
    (opened, _), (full, delay) = _tasks(world)
    assert (full.due_at, delay) == (world.now, 0)
    assert _run(world, full) is Outcome.SENT
    world.now = opened.due_at
    assert _run(world, opened) is Outcome.DUPLICATE  # the window's end finds it sent


def test_a_flush_task_survives_the_queue_as_json() -> None:
    world = _world()
    world.service.handle(_like(world, "Ann"))
    ((task, _),) = _tasks(world)
    assert parse_message(task.model_dump_json(exclude_none=True)) == task


def test_a_long_window_waits_in_the_due_index_and_the_sweep_queues_it_in_its_last_minute() -> None:
    world = _world(window={"cron": "0 9 * * *", "timezone": "Europe/Berlin"})
    world.service.handle(_like(world, "Ann"))
    world.service.handle(_like(world, "Bob"))
    assert _tasks(world) == []  # no queue message while it waits
    ((due, swept),) = _store(world).due_index.values()
    assert swept  # the sweep queues its flush
    at = datetime.fromisoformat(due.flush_at)
    # 09:00 in Berlin the next day is 08:00 UTC, spread over CRON_SPREAD_SECONDS by the bucket id.
    assert T0.replace(day=25, hour=8) <= at <= T0.replace(day=25, hour=8) + timedelta(seconds=CRON_SPREAD_SECONDS)
    sweep = DigestSweep(_store(world), world.queue, lambda: world.now)
    world.now = at - timedelta(seconds=90)
    assert sweep.sweep() == 0
    world.now = at - timedelta(seconds=30)
    assert sweep.sweep() == 1
    ((task, delay),) = _tasks(world)
    assert (task.due_at, delay) == (at, 30)
    world.now = at
    assert _run(world, task) is Outcome.SENT
    assert _store(world).due_index == {}  # closed: out of the index
    assert sweep.sweep() == 0


def test_a_digest_of_inline_recipients_goes_to_the_newest_members_contact_without_asking_auth() -> None:
    world = _world()
    for address in ("old@example.com", "new@example.com"):
        world.service.handle(_like(world, "Ann").model_copy(update={"contact": Contact(email=address)}))
        world.now += timedelta(seconds=1)
    ((task, _),) = _tasks(world)
    world.now = task.due_at
    world.users.users.clear()  # the Auth service does not know the user
    assert _run(world, task) is Outcome.SENT
    (mail,) = world.email.sent
    assert "new@example.com" in json.dumps(mail, default=str)


def test_members_added_together_that_fill_a_bucket_still_make_it_due_at_once() -> None:
    """Two jobs of one batch read the empty head before either is added: both count 1, the true count is 2."""
    world = _world(max_items=2)
    store = _store(world)
    real_head = store.head
    stale = iter([None, None])
    store.head = lambda group_key: next(stale, None) or real_head(group_key)  # type: ignore[method-assign]
    world.service.handle(_like(world, "Ann"))
    world.service.handle(_like(world, "Bob"))
    assert [delay for _, delay in _tasks(world)] == [WINDOW, 0]  # the window's end, and the fill at once


def test_a_bucket_whose_opening_write_failed_gets_its_task_again_when_the_job_runs_again() -> None:
    """The opener queued the task, then DynamoDB refused the add: the task finds nothing and ends; the job run again
    in the same container must queue another, or the bucket would wait for a sweep."""
    world = _world()
    store = _store(world)
    real_add = store.add

    def refused(*args: Any, **kwargs: Any) -> Any:
        store.add = real_add  # type: ignore[method-assign]
        raise StoreUnavailable("DynamoDB throttled the transaction")

    store.add = refused  # type: ignore[method-assign]
    job = _like(world, "Ann")
    with pytest.raises(StoreUnavailable):
        world.service.handle(job)
    ((first, _),) = _tasks(world)
    world.now = first.due_at
    assert _run(world, first) is Outcome.DUPLICATE  # nothing in the bucket yet
    world.queue.sent.clear()
    world.now += timedelta(seconds=61)  # the claim's lease runs out
    assert world.service.handle(job) is Outcome.DIGESTED  # the record comes again
    ((again, _),) = _tasks(world)
    world.now = again.due_at
    assert _run(world, again) is Outcome.SENT


def test_the_sweep_queues_again_a_short_windows_bucket_still_open_five_minutes_after_its_time() -> None:
    world = _world()
    world.service.handle(_like(world, "Ann"))
    ((task, _),) = _tasks(world)
    world.queue.sent.clear()  # the task is lost (its receives ran out into the DLQ, say)
    sweep = DigestSweep(_store(world), world.queue, lambda: world.now)
    world.now = task.due_at
    assert sweep.sweep() == 0  # a short window's flush is the queue's, not the sweep's
    world.now = task.due_at + STUCK_AFTER + timedelta(seconds=1)
    assert sweep.sweep() == 1
    ((again, delay),) = _tasks(world)
    assert (again, delay) == (task, 0)
    assert _run(world, again) is Outcome.SENT
    assert sweep.sweep() == 0  # closed: out of the index


def test_consent_is_the_digests_a_member_of_an_opted_out_user_is_digested_and_the_digest_skipped() -> None:
    world = _world()
    preferences = MemoryPreferences()
    preferences.items["u1"] = UserPreferences("u1", categories={"social": {"email": False}})
    world.preferences = preferences
    world.wire()
    member = _like(world, "Ann")
    assert world.service.handle(member) is Outcome.DIGESTED  # checked when the digest is sent, not per member
    ((task, _),) = _tasks(world)
    world.now = task.due_at
    assert _run(world, task) is Outcome.SKIPPED
    digest_id = world.store.jobs[member.job_id]["history"][-1].detail["digest_job_id"]
    assert world.store.jobs[digest_id]["history"][-1].detail["reason"] == "opted_out"
    assert world.email.sent == []


def test_a_throttled_category_still_digests_and_the_digest_is_never_refused_by_the_throttle() -> None:
    world = _world()
    world.preferences = MemoryPreferences()
    rules = MemoryThrottleRules()
    rules.put(
        CategoryThrottle(Category.SOCIAL, ThrottleRule(channel=Channel.EMAIL, limit=1, period_seconds=86400), "t")
    )
    world.throttles = rules
    world.wire()
    assert world.service.handle(world.job("review_liked")) is Outcome.DIGESTED
    ((first, _),) = _tasks(world)
    world.now = first.due_at
    assert _run(world, first) is Outcome.SENT
    assert world.service.handle(_like(world, "Bob")) is Outcome.DIGESTED  # past the limit: joins the next digest
    second = _tasks(world)[-1][0]
    world.now = second.due_at
    assert _run(world, second) is Outcome.SENT  # a digest is its members' limit already
    assert len(world.email.sent) == 2 and world.preferences.count_writes == 0
