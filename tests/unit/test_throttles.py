from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Optional
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from notify.models import Category, Channel
from notify.throttles import (
    MAX_TRACKED,
    CategoryThrottle,
    ThrottleRule,
    ThrottleWindow,
    admit,
    attribute_name,
    throttle_category,
)
from pydantic import ValidationError

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
DAILY_EMAIL = ThrottleRule(channel=Channel.EMAIL, limit=1, period_seconds=86400)
THREE_AN_HOUR = ThrottleRule(channel=Channel.PUSH, limit=3, period_seconds=3600)


def sends(rule: ThrottleRule, times: list[datetime]) -> tuple[list[bool], Optional[ThrottleWindow]]:
    state: Optional[ThrottleWindow] = None
    admitted = []
    for at in times:
        ok, state = admit(state, rule, at)
        admitted.append(ok)
    return admitted, state


# -- the rule --------------------------------------------------------------------------------


def test_a_rule_takes_a_channel_a_limit_and_a_period() -> None:
    parsed = ThrottleRule.model_validate({"channel": "email", "limit": 1, "period_seconds": 86400})
    assert parsed == DAILY_EMAIL
    assert ThrottleRule.model_validate({"channel": "push", "limit": 10000, "period_seconds": 60}).limit == 10000
    assert ThrottleRule.model_validate({"channel": "websocket", "limit": 1, "period_seconds": 2592000})


@pytest.mark.parametrize(
    ("changes", "loc", "message"),
    [
        ({"channel": "fax"}, "channel", "'email', 'push' or 'websocket'"),
        ({"limit": 0}, "limit", "greater than or equal to 1"),
        ({"limit": 10001}, "limit", "less than or equal to 10000"),
        ({"limit": "many"}, "limit", "valid integer"),
        ({"period_seconds": 59}, "period_seconds", "greater than or equal to 60"),
        ({"period_seconds": 2592001}, "period_seconds", "less than or equal to 2592000"),
        ({"category": "marketing"}, "category", "Extra inputs"),
    ],
)
def test_a_bad_throttle_rule_is_refused_at_the_field_that_is_wrong(
    changes: dict[str, Any], loc: str, message: str
) -> None:
    body = {"channel": "email", "limit": 1, "period_seconds": 86400, **changes}
    with pytest.raises(ValidationError) as caught:
        ThrottleRule.model_validate(body)
    found = {".".join(str(p) for p in err["loc"]): err["msg"] for err in caught.value.errors()}
    assert message in found[loc], found


def test_account_mail_is_never_throttled_and_an_unknown_category_is_refused() -> None:
    with pytest.raises(ValueError, match="never throttled"):
        throttle_category("account")
    with pytest.raises(ValueError, match="unknown category 'promo'; categories that take a throttle: social, content"):
        throttle_category("promo")
    assert throttle_category("marketing") is Category.MARKETING
    assert throttle_category("social") is Category.SOCIAL


# -- the window --------------------------------------------------------------------------------


def test_a_window_admits_up_to_its_limit_and_refuses_the_rest() -> None:
    admitted, state = sends(THREE_AN_HOUR, [T0 + timedelta(minutes=m) for m in (0, 1, 2, 3, 59)])
    assert admitted == [True, True, True, False, False]
    assert state == ThrottleWindow(T0, 3)


def test_a_refused_send_does_not_count_nor_move_the_window() -> None:
    full = ThrottleWindow(T0, 3)
    ok, after = admit(full, THREE_AN_HOUR, T0 + timedelta(minutes=30))
    assert not ok and after is full


def test_a_new_window_opens_with_the_first_send_after_the_period() -> None:
    admitted, state = sends(DAILY_EMAIL, [T0, T0 + timedelta(hours=23), T0 + timedelta(hours=30)])
    assert admitted == [True, False, True]
    assert state == ThrottleWindow(T0 + timedelta(hours=30), 1)


def test_the_window_ends_exactly_at_its_period_a_second_before_it_is_still_open() -> None:
    full = ThrottleWindow(T0, 1)
    assert full.ends_at(DAILY_EMAIL) == T0 + timedelta(days=1)
    assert admit(full, DAILY_EMAIL, T0 + timedelta(days=1) - timedelta(microseconds=1)) == (False, full)
    assert admit(full, DAILY_EMAIL, T0 + timedelta(days=1)) == (True, ThrottleWindow(T0 + timedelta(days=1), 1))


def test_a_window_starts_at_the_whole_second_in_utc_and_a_naive_time_is_refused() -> None:
    berlin = datetime(2026, 11, 24, 13, 0, 0, 750_000, tzinfo=ZoneInfo("Europe/Berlin"))
    ok, state = admit(None, DAILY_EMAIL, berlin)
    assert ok and state == ThrottleWindow(T0, 1) and state.started_at.tzinfo is UTC
    with pytest.raises(ValueError, match="aware"):
        admit(None, DAILY_EMAIL, datetime(2026, 11, 24, 12, 0))


def test_a_lowered_limit_applies_to_the_open_window() -> None:
    ok, _ = admit(ThrottleWindow(T0, 2), ThrottleRule(channel=Channel.PUSH, limit=1, period_seconds=3600), T0)
    assert not ok


# -- storage -----------------------------------------------------------------------------------


def test_the_counter_is_one_attribute_per_category_and_channel_holding_start_and_count() -> None:
    assert attribute_name(Category.MARKETING, Channel.EMAIL) == "throttle#marketing#email"
    assert attribute_name("social", "push") == "throttle#social#push"
    assert ThrottleWindow(T0, 2).as_item() == {"s": 1795521600, "n": 2}
    assert ThrottleWindow.from_item({"s": Decimal(1795521600), "n": Decimal(2)}) == ThrottleWindow(T0, 2)


@settings(deadline=None, max_examples=200)
@given(
    gaps=st.lists(st.integers(min_value=0, max_value=4000), min_size=1, max_size=40),
    limit=st.integers(min_value=1, max_value=5),
)
def test_no_window_admits_more_than_its_limit_and_windows_start_a_period_apart(gaps: list[int], limit: int) -> None:
    rule = ThrottleRule(channel=Channel.EMAIL, limit=limit, period_seconds=3600)
    state: Optional[ThrottleWindow] = None
    admitted_per_window: dict[datetime, int] = {}
    at = T0
    for gap in gaps:
        at += timedelta(seconds=gap)
        ok, state = admit(state, rule, at)
        stored = ThrottleWindow.from_item(state.as_item())  # what the next worker reads back
        assert stored == state
        if ok:
            admitted_per_window[state.started_at] = admitted_per_window.get(state.started_at, 0) + 1
        else:
            assert state.count == limit
    assert all(n <= limit for n in admitted_per_window.values())
    starts = sorted(admitted_per_window)
    assert all(b - a >= timedelta(seconds=3600) for a, b in zip(starts, starts[1:], strict=False))
    if limit == 1:  # one per period is exact: admitted sends are a whole period apart
        assert all(n == 1 for n in admitted_per_window.values())


# -- one job, one slot -------------------------------------------------------------------------


def test_a_job_admitted_again_while_its_window_is_open_is_not_counted_twice() -> None:
    ok, first = admit(None, THREE_AN_HOUR, T0, "job-a")
    assert ok and first == ThrottleWindow(T0, 1, ("job-a",))
    ok, again = admit(first, THREE_AN_HOUR, T0 + timedelta(minutes=5), "job-a")
    assert ok and again is first  # nothing to store
    ok, second = admit(first, THREE_AN_HOUR, T0 + timedelta(minutes=6), "job-b")
    assert ok and second == ThrottleWindow(T0, 2, ("job-a", "job-b"))


def test_a_full_window_still_admits_a_job_it_admitted_and_refuses_the_others() -> None:
    full = ThrottleWindow(T0, 1, ("job-a",))
    assert admit(full, DAILY_EMAIL, T0 + timedelta(hours=1), "job-a") == (True, full)
    assert admit(full, DAILY_EMAIL, T0 + timedelta(hours=1), "job-b") == (False, full)


def test_a_job_the_counter_admitted_is_not_counted_again_in_the_next_window_and_the_jobs_carry_over() -> None:
    ended = ThrottleWindow(T0, 1, ("job-a",))
    assert admit(ended, DAILY_EMAIL, T0 + timedelta(days=1), "job-a") == (True, ended)
    ok, state = admit(ended, DAILY_EMAIL, T0 + timedelta(days=1), "job-b")
    assert ok and state == ThrottleWindow(T0 + timedelta(days=1), 1, ("job-a", "job-b"))


def test_the_counter_remembers_the_last_ten_jobs_it_admitted() -> None:
    state = None
    many = ThrottleRule(channel=Channel.EMAIL, limit=100, period_seconds=3600)
    for i in range(MAX_TRACKED + 3):
        _, state = admit(state, many, T0, f"job-{i}")
    assert state is not None and state.count == MAX_TRACKED + 3
    assert state.jobs == tuple(f"job-{i}" for i in range(3, MAX_TRACKED + 3))


def test_the_jobs_are_stored_with_the_window_and_read_back_also_from_an_older_single_job() -> None:
    window = ThrottleWindow(T0, 2, ("job-a", "job-b"))
    assert window.as_item() == {"s": 1795521600, "n": 2, "j": ["job-a", "job-b"]}
    assert ThrottleWindow.from_item({"s": Decimal(1795521600), "n": Decimal(2), "j": ["job-a", "job-b"]}) == window
    older = ThrottleWindow.from_item({"s": Decimal(1795521600), "n": Decimal(2), "j": "job-b"})
    assert older == ThrottleWindow(T0, 2, ("job-b",)) and older.last_job == "job-b"


def test_a_stored_rule_shows_its_category_channel_limit_period_and_time() -> None:
    stored = CategoryThrottle(Category.MARKETING, DAILY_EMAIL, "2026-11-24T12:00:00Z")
    assert stored.view() == {
        "category": "marketing",
        "channel": "email",
        "limit": 1,
        "period_seconds": 86400,
        "updated_at": "2026-11-24T12:00:00Z",
    }
