"""Throttles applied (issue 23): the worker admits or skips a job by its category and channel's rule, counting on the
user's item once per job; the API's rules, one per category and channel, account refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from notify.errors import FieldError, NotFound, StoreUnavailable, TransientError, ValidationFailed
from notify.models import Category, Channel, NotificationJob, Status
from notify.records import UserPreferences
from notify.services.delivery import THROTTLE_TRIES, Outcome
from notify.services.throttles import ThrottleService
from notify.throttles import MAX_TRACKED, CategoryThrottle, ThrottleRule, ThrottleWindow, attribute_name

from .fakes import T0, MemoryPreferences, MemoryThrottleRules, World

CONTENT_EMAIL = attribute_name(Category.CONTENT, Channel.EMAIL)


def _world(limit: int = 1, period_seconds: int = 86400, category: Category = Category.CONTENT) -> World:
    """u1's pipeline with a rule on ``category`` email (none if ``limit`` is 0) and an empty preferences store."""
    world = World()
    world.preferences = MemoryPreferences()
    rules = MemoryThrottleRules()
    if limit:
        rule = ThrottleRule(channel=Channel.EMAIL, limit=limit, period_seconds=period_seconds)
        rules.put(CategoryThrottle(category, rule, "2026-11-24T00:00:00Z"))
    world.throttles = rules
    world.wire()
    return world


def _counts(world: World) -> int:
    assert isinstance(world.preferences, MemoryPreferences)
    return world.preferences.count_writes


def _window(world: World, attribute: str = CONTENT_EMAIL) -> ThrottleWindow:
    assert isinstance(world.preferences, MemoryPreferences)
    return world.preferences.items["u1"].throttles[attribute]


def _last(world: World, job: NotificationJob) -> tuple[Status, object]:
    entry = world.store.jobs[job.job_id]["history"][-1]
    return entry.status, entry.detail


# -- the worker --------------------------------------------------------------------------------------------------


def test_a_job_within_the_limit_is_sent_and_counted_and_the_next_is_skipped_as_throttled() -> None:
    world = _world(limit=1)
    first, second = world.job("new_film"), world.job("new_film")
    assert world.service.handle(first) is Outcome.SENT
    assert _window(world) == ThrottleWindow(T0, 1, (first.job_id,))
    # The count is the send's mark: claim, count, SENT (no SENDING), the three writes of any send.
    assert world.store.statuses(first.job_id) == [Status.PROCESSING, Status.SENT]
    world.now += timedelta(hours=2)
    assert world.service.handle(second) is Outcome.SKIPPED
    assert _last(world, second) == (
        Status.SKIPPED,
        {
            "reason": "throttled",
            "category": "content",
            "limit": 1,
            "period_seconds": 86400,
            "window_ends_at": "2026-11-25T12:00:00.000Z",
        },
    )
    assert len(world.email.sent) == 1
    assert _counts(world) == 1  # a refusal writes no counter


def test_account_mail_is_never_throttled_nor_counted() -> None:
    world = _world(limit=1)
    assert world.service.handle(world.job("new_film")) is Outcome.SENT
    for _ in range(3):
        assert world.service.handle(world.job("password_reset")) is Outcome.SENT
    assert _counts(world) == 1 and _window(world).count == 1


def test_no_rule_for_the_category_and_channel_means_no_counter_and_no_write() -> None:
    world = _world(limit=1, category=Category.MARKETING)
    for _ in range(3):
        assert world.service.handle(world.job("new_film")) is Outcome.SENT  # content: the rule is marketing's
    assert _counts(world) == 0
    assert isinstance(world.preferences, MemoryPreferences)
    assert world.preferences.items["u1"].throttles == {}  # (the item holds the user's last known contact)


def test_a_campaigns_marketing_mail_is_throttled_by_the_marketing_rule() -> None:
    world = _world(limit=1, category=Category.MARKETING)
    first, second = world.job("campaign_triggered"), world.job("campaign_triggered")
    assert world.service.handle(first) is Outcome.SENT
    assert world.service.handle(second) is Outcome.SKIPPED
    assert _last(world, second)[1]["category"] == "marketing"  # type: ignore[index]


def test_the_window_reopens_with_the_first_send_after_its_period() -> None:
    world = _world(limit=2, period_seconds=3600)
    outcomes = []
    for minutes in (0, 10, 59, 60, 61):
        world.now = T0 + timedelta(minutes=minutes)
        outcomes.append(world.service.handle(world.job("new_film")))
    assert outcomes == [Outcome.SENT, Outcome.SENT, Outcome.SKIPPED, Outcome.SENT, Outcome.SENT]
    assert (_window(world).started_at, _window(world).count) == (T0 + timedelta(hours=1), 2)


def test_a_retry_of_a_job_that_failed_before_its_send_is_counted_once_and_marked_by_sending() -> None:
    world = _world(limit=2)
    job = world.job("new_film")
    world.users.errors.append(TransientError("Auth is down"))
    assert world.service.handle(job) is Outcome.RETRYING  # admitted by the read, not counted: no send was made
    assert _counts(world) == 0
    ((retry, _),) = world.queue.sent
    world.now = retry.not_before or world.now
    assert world.service.handle(retry) is Outcome.SENT
    assert _window(world).count == 1 and _counts(world) == 1
    assert Status.SENDING in world.store.statuses(job.job_id)  # a retry's send is marked by SENDING
    assert world.service.handle(world.job("new_film")) is Outcome.SENT  # the second slot is still free
    assert world.service.handle(world.job("new_film")) is Outcome.SKIPPED


def test_a_retry_of_a_counted_send_is_not_counted_again() -> None:
    world = _world(limit=1)
    job = world.job("new_film")
    world.email.errors.append(TransientError("SES throttled"))
    assert world.service.handle(job) is Outcome.RETRYING  # counted, then the provider refused for now
    ((retry, _),) = world.queue.sent
    world.now = retry.not_before or world.now
    assert world.service.handle(retry) is Outcome.SENT  # the window is full, but with this very job
    assert _counts(world) == 1 and len(world.email.sent) == 1


def test_a_first_attempt_that_stopped_after_its_count_is_not_sent_again() -> None:
    world = _world(limit=1)
    job = world.job("new_film")
    world.store.crash_on = Status.SENT  # sent, then DynamoDB went away before SENT was recorded
    with pytest.raises(StoreUnavailable):
        world.service.handle(job)
    world.now += timedelta(seconds=61)  # the record is redelivered once the claim's lease has run out
    assert world.service.handle(job) is Outcome.FAILED
    assert _last(world, job)[1] == {"reason": "outcome_unknown"}
    assert len(world.email.sent) == 1 and _counts(world) == 1
    assert world.dlq.letters[-1].reason == "outcome_unknown"


def test_two_workers_racing_for_the_last_slot_send_one_job_and_skip_the_other() -> None:
    world = _world(limit=1)
    first, second = world.job("new_film"), world.job("new_film")
    assert isinstance(world.preferences, MemoryPreferences)
    outcomes: list[Outcome] = []
    # The first job's worker read the empty counter; the second's reads and writes before the first one writes.
    world.preferences.before_count = lambda: outcomes.append(world.service.handle(second))
    outcomes.append(world.service.handle(first))
    assert outcomes == [Outcome.SENT, Outcome.SKIPPED]
    assert _last(world, first)[0] is Status.SKIPPED and _last(world, second)[0] is Status.SENT
    assert len(world.email.sent) == 1
    assert _counts(world) == 2  # the loser's write failed on its condition and returned the counter: no read


def test_a_counter_that_keeps_changing_holds_the_job_a_second_and_it_decides_again() -> None:
    world = _world(limit=100)
    store = world.preferences
    assert isinstance(store, MemoryPreferences)

    def another_worker_counts() -> None:
        window = store.items["u1"].throttles.get(CONTENT_EMAIL) if "u1" in store.items else None
        count = window.count if window is not None else 0
        store.count_send("u1", CONTENT_EMAIL, window, ThrottleWindow(T0, count + 1, (f"other-{count}",)))
        if count + 1 < THROTTLE_TRIES:
            store.before_count = another_worker_counts

    store.before_count = another_worker_counts
    job = world.job("new_film")
    assert world.service.handle(job) is Outcome.SCHEDULED
    ((held, delay),) = world.queue.sent
    assert delay == 1 and held.attempt == 0 and held.not_before == T0 + timedelta(seconds=1)
    assert _last(world, job)[1] == {"due_at": "2026-11-24T12:00:01.000Z", "reason": "throttle_busy"}
    world.now += timedelta(seconds=1)
    assert world.service.handle(held) is Outcome.SENT
    assert _window(world).count == THROTTLE_TRIES + 1


def test_the_throttle_comes_after_the_users_consent_so_an_opted_out_job_is_not_counted() -> None:
    world = _world(limit=1)
    assert world.preferences is not None
    world.preferences.put(UserPreferences("u1", categories={"content": {"email": False}}))
    job = world.job("new_film")
    assert world.service.handle(job) is Outcome.SKIPPED
    assert _last(world, job)[1] == {"reason": "opted_out", "category": "content"}
    assert _counts(world) == 0


# -- the API's rules ---------------------------------------------------------------------------------------------


def test_a_rule_is_one_per_category_and_channel_created_then_replaced_listed_read_and_deleted() -> None:
    rules = MemoryThrottleRules()
    service = ThrottleService(rules, lambda: T0)
    daily = ThrottleRule(channel=Channel.EMAIL, limit=1, period_seconds=86400)
    assert service.put("marketing", daily) == {
        "category": "marketing",
        "channel": "email",
        "limit": 1,
        "period_seconds": 86400,
        "updated_at": "2026-11-24T12:00:00.000Z",
    }
    service.put(Category.MARKETING, daily.model_copy(update={"limit": 2}))  # replaces marketing's email rule
    service.put("social", ThrottleRule(channel=Channel.PUSH, limit=5, period_seconds=3600))
    assert [(r["category"], r["channel"], r["limit"]) for r in service.list()] == [
        ("marketing", "email", 2),
        ("social", "push", 5),
    ]
    assert service.get("social", Channel.PUSH)["limit"] == 5
    with pytest.raises(NotFound, match="no throttle rule for social on email"):
        service.get("social", Channel.EMAIL)
    service.delete("social", Channel.PUSH)
    with pytest.raises(NotFound):
        service.delete("social", Channel.PUSH)
    assert [r["category"] for r in service.list()] == ["marketing"]


@pytest.mark.parametrize(("category", "message"), [("account", "never throttled"), ("promo", "unknown category")])
def test_account_and_unknown_categories_take_no_rule(category: str, message: str) -> None:
    service = ThrottleService(MemoryThrottleRules(), lambda: T0)
    with pytest.raises(ValidationFailed) as refused:
        service.put(category, ThrottleRule(channel=Channel.EMAIL, limit=1, period_seconds=60))
    (error,) = refused.value.errors
    assert isinstance(error, FieldError) and error.loc == "category" and message in error.msg


def test_a_retry_of_a_counted_send_is_not_counted_however_many_sends_came_since() -> None:
    world = _world(limit=50)
    job = world.job("new_film")
    world.email.errors.append(TransientError("SES throttled"))
    assert world.service.handle(job) is Outcome.RETRYING
    ((retry, _),) = world.queue.sent
    assert retry.throttle_counted  # the retry copy says its send was counted
    for _ in range(MAX_TRACKED + 2):  # more sends than the counter remembers
        assert world.service.handle(world.job("new_film")) is Outcome.SENT
    world.now = retry.not_before or world.now
    assert world.service.handle(retry) is Outcome.SENT
    assert _window(world).count == MAX_TRACKED + 3  # the retry was not counted again
