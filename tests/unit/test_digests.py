from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from notify.digests import (
    CronWindow,
    DigestItem,
    DigestRule,
    SecondsWindow,
    bucket_id,
    bucket_key,
    digest_context,
    digest_event_id,
    digest_job_id,
    flush_at,
    is_full,
    refuse_account,
    window_end,
)
from notify.jobs import job_id, locator, locator_of_job
from notify.models import Channel
from pydantic import ValidationError

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LIKE = {"review_id": "r-1", "movie_id": "m-1", "movie_title": "Dune", "liked_by": "Ann", "likes_count": 1}


def rule(**changes: Any) -> DigestRule:
    body: dict[str, Any] = {
        "event_type": "review_liked",
        "channels": ["email"],
        "window": {"seconds": 20},
        "key": ["review_id"],
        "max_items": 50,
    }
    body.update(changes)
    return DigestRule.model_validate(body)


def errors(**changes: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        rule(**changes)
    return {".".join(str(p) for p in err["loc"]): err["msg"] for err in caught.value.errors()}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- the rule --------------------------------------------------------------------------------


def test_a_rule_takes_a_seconds_or_a_cron_window_and_defaults_to_one_digest_per_user_of_100_items() -> None:
    seconds = DigestRule.model_validate(
        {"event_type": "review_liked", "channels": ["email", "push"], "window": {"seconds": 10}}
    )
    assert seconds.window == SecondsWindow(seconds=10)
    assert seconds.key == [] and seconds.max_items == 100
    cron = rule(window={"cron": "0 9 * * *", "timezone": "Europe/Berlin"})
    assert cron.window == CronWindow(cron="0 9 * * *", timezone="Europe/Berlin")
    assert rule(window={"cron": "0 9 * * 1"}).window == CronWindow(cron="0 9 * * 1", timezone=None)


def test_a_rule_round_trips_through_json_with_its_channels_sorted_and_once_each() -> None:
    stored = rule(channels=["websocket", "email", "push", "email"]).model_dump(mode="json")
    assert stored["channels"] == ["email", "push", "websocket"]
    assert stored["window"] == {"seconds": 20}
    assert DigestRule.model_validate(stored) == rule(channels=["push", "websocket", "email"])


@pytest.mark.parametrize(
    ("changes", "loc", "message"),
    [
        ({"event_type": "password_reset"}, "event_type", "account event"),
        ({"event_type": "user_registered"}, "event_type", "never in a digest"),
        ({"event_type": "film_rated"}, "event_type", "unknown event type 'film_rated'"),
        ({"channels": []}, "channels", "at least 1"),
        ({"channels": ["fax"]}, "channels.0", "'email', 'push' or 'websocket'"),
        ({"window": {"seconds": 9}}, "window.seconds", "greater than or equal to 10"),
        ({"window": {"seconds": 604801}}, "window.seconds", "less than or equal to 604800"),
        ({"window": {"seconds": "soon"}}, "window.seconds", "valid integer"),
        ({"window": {"seconds": 60, "timezone": "UTC"}}, "window.timezone", "Extra inputs"),
        ({"window": {"cron": "0 9 * *"}}, "window.cron", "not a valid cron expression"),
        ({"window": {"cron": "0 0 9 * * *"}}, "window.cron", "5-field form"),
        ({"window": {"cron": "0 9 31 2 *"}}, "window.cron", "never fires"),
        ({"window": {"cron": "0 9 * * *", "timezone": "Mars/Olympus"}}, "window.timezone", "not an IANA time zone"),
        ({"window": {"cron": "0 9 * * *", "seconds": 60}}, "window", "not both"),
        ({"window": {}}, "window", 'either {"seconds": n}'),
        ({"window": "daily"}, "window", 'either {"seconds": n}'),
        ({"key": ["1st"]}, "key.0", "not a payload field"),
        ({"key": ["review id"]}, "key.0", "not a payload field"),
        ({"key": ["review_id."]}, "key.0", "not a payload field"),
        ({"key": ["review_id\n"]}, "key.0", "not a payload field"),
        ({"key": ["x" * 65]}, "key.0", "at most 64 characters"),
        ({"key": ["review_id", "movie_id", "liked_by", "likes_count", "movie_title", "review_id"]}, "key", "at most 5"),
        ({"key": ["review_id", "review_id"]}, "key", "review_id repeated"),
        ({"key": ["reviewer"]}, "key", "reviewer: not in review_liked's payload"),
        ({"max_items": 0}, "max_items", "greater than or equal to 1"),
        ({"max_items": 1001}, "max_items", "less than or equal to 1000"),
        ({"schedule": "daily"}, "schedule", "Extra inputs"),
    ],
)
def test_a_bad_rule_is_refused_at_the_field_that_is_wrong(changes: dict[str, Any], loc: str, message: str) -> None:
    found = errors(**changes)
    assert loc in found, found
    assert message in found[loc]


def test_every_bad_field_of_a_rule_is_reported_at_once() -> None:
    found = errors(channels=[], window={"seconds": 1}, max_items=0, key=["a", "a"])
    assert set(found) == {"channels", "window.seconds", "max_items", "key"}


def test_the_bounds_of_a_rule_are_accepted() -> None:
    assert rule(window={"seconds": 604800}, max_items=1000, key=[]).max_items == 1000
    assert rule(max_items=1, key=["review_id", "movie_id", "movie_title", "liked_by", "likes_count"]).max_items == 1


def test_a_key_may_follow_a_dotted_path_into_a_payload_object() -> None:
    campaign = rule(event_type="campaign_triggered", key=["payload.series_id", "campaign_id"])
    assert campaign.key == ["payload.series_id", "campaign_id"]


def test_account_events_are_refused_and_others_pass_through_unchanged() -> None:
    for account in ("password_reset", "user_registered"):
        with pytest.raises(ValueError, match="account event"):
            refuse_account(account)
    assert refuse_account("review_liked") == "review_liked"
    assert refuse_account("campaign_triggered") == "campaign_triggered"


# -- buckets ---------------------------------------------------------------------------------


def test_members_with_the_same_key_values_share_a_bucket_whatever_else_their_payload_holds() -> None:
    a = bucket_key(rule(), "u1", Channel.EMAIL, LIKE)
    b = bucket_key(rule(), "u1", "email", {**LIKE, "liked_by": "Bob", "likes_count": 2})
    assert a == b
    assert len(a) == 32 and all(c in "0123456789abcdef" for c in a)


def test_a_different_key_value_user_channel_or_event_type_is_a_different_bucket() -> None:
    base = bucket_key(rule(), "u1", Channel.EMAIL, LIKE)
    others = {
        bucket_key(rule(), "u1", Channel.EMAIL, {**LIKE, "review_id": "r-2"}),
        bucket_key(rule(), "u2", Channel.EMAIL, LIKE),
        bucket_key(rule(), "u1", Channel.PUSH, LIKE),
        bucket_key(rule(event_type="new_film", key=[]), "u1", Channel.EMAIL, LIKE),
        bucket_key(rule(key=[]), "u1", Channel.EMAIL, LIKE),
    }
    assert base not in others and len(others) == 5


def test_an_empty_key_makes_one_bucket_per_user_channel_and_event_type() -> None:
    per_user = rule(key=[])
    assert bucket_key(per_user, "u1", "email", LIKE) == bucket_key(per_user, "u1", "email", {"review_id": "r-9"})


def test_a_missing_key_field_counts_as_null_and_is_not_an_empty_string_or_the_text_null() -> None:
    missing = bucket_key(rule(), "u1", "email", {"movie_id": "m-1"})
    assert missing == bucket_key(rule(), "u1", "email", {"review_id": None})
    assert missing != bucket_key(rule(), "u1", "email", {"review_id": ""})
    assert missing != bucket_key(rule(), "u1", "email", {"review_id": "null"})


def test_values_are_compared_by_json_type_so_a_number_is_not_its_text() -> None:
    assert bucket_key(rule(), "u1", "email", {"review_id": 1}) != bucket_key(rule(), "u1", "email", {"review_id": "1"})


def test_unicode_values_make_fixed_size_keys_and_are_compared_as_given_without_normalisation() -> None:
    composed = bucket_key(rule(), "u1", "email", {"review_id": "Am\u00e9lie 🎬"})
    decomposed = bucket_key(rule(), "u1", "email", {"review_id": "Ame\u0301lie 🎬"})
    assert len(composed) == len(decomposed) == 32
    assert composed != decomposed
    assert composed == bucket_key(rule(), "u1", "email", {"review_id": "Am\u00e9lie 🎬"})
    assert len(bucket_key(rule(), "u1", "email", {"review_id": "x" * 100_000})) == 32


def test_nested_values_are_compared_whole_and_a_dotted_path_reads_inside_them() -> None:
    whole = rule(event_type="campaign_triggered", key=["payload"])
    nested_a = {"payload": {"series": {"id": "s-1", "tags": ["a", "b"]}, "n": 1}}
    nested_b = {"payload": {"n": 1, "series": {"tags": ["a", "b"], "id": "s-1"}}}
    assert bucket_key(whole, "u1", "email", nested_a) == bucket_key(whole, "u1", "email", nested_b)
    reordered_list = {"payload": {"n": 1, "series": {"tags": ["b", "a"], "id": "s-1"}}}
    assert bucket_key(whole, "u1", "email", nested_a) != bucket_key(whole, "u1", "email", reordered_list)

    path = rule(event_type="campaign_triggered", key=["payload.series.id"])
    other_tags = {"payload": {"series": {"id": "s-1", "tags": []}}}
    assert bucket_key(path, "u1", "email", nested_a) == bucket_key(path, "u1", "email", other_tags)
    through_text = {"payload": {"series": "s-1"}}
    assert bucket_key(path, "u1", "email", through_text) == bucket_key(path, "u1", "email", {})


def test_the_order_of_a_rules_key_fields_does_not_matter() -> None:
    forward = rule(key=["review_id", "movie_id"])
    backward = rule(key=["movie_id", "review_id"])
    assert bucket_key(forward, "u1", "email", LIKE) == bucket_key(backward, "u1", "email", LIKE)
    swapped = {**LIKE, "review_id": LIKE["movie_id"], "movie_id": LIKE["review_id"]}
    assert bucket_key(forward, "u1", "email", LIKE) != bucket_key(forward, "u1", "email", swapped)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=10,
)


def reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: reversed_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_keys(v) for v in value]
    return value


@settings(deadline=None, max_examples=200)
@given(payload=st.dictionaries(st.sampled_from(["payload", "campaign_id", "run_id", "x"]), json_values, max_size=4))
def test_a_bucket_key_does_not_depend_on_the_order_of_the_payloads_object_keys(payload: dict[str, Any]) -> None:
    keyed = rule(event_type="campaign_triggered", key=["payload", "campaign_id"])
    assert bucket_key(keyed, "u1", "push", payload) == bucket_key(keyed, "u1", "push", reversed_keys(payload))


def test_a_bucket_is_its_group_and_generation_and_a_late_member_opens_the_next() -> None:
    group = bucket_key(rule(), "u1", "email", LIKE)
    assert bucket_id(group, 0) == f"{group}-0"
    assert bucket_id(group, 0) != bucket_id(group, 1)
    with pytest.raises(ValueError):
        bucket_id(group, -1)


def test_a_digest_jobs_id_is_derived_from_its_bucket_so_two_flushes_make_one_job() -> None:
    first = bucket_id(bucket_key(rule(), "u1", "email", LIKE), 0)
    job = digest_job_id(first, "u1", Channel.EMAIL)
    assert job == digest_job_id(first, "u1", "email")
    assert job == job_id(digest_event_id(first), "u1", Channel.EMAIL)
    parsed = uuid.UUID(job)
    assert parsed.version == 8 and parsed.variant == uuid.RFC_4122
    assert locator_of_job(job) == locator(digest_event_id(first))
    next_bucket = bucket_id(bucket_key(rule(), "u1", "email", LIKE), 1)
    assert digest_job_id(next_bucket, "u1", "email") != job
    assert digest_event_id(first) == str(uuid.UUID(digest_event_id(first)))


# -- windows ---------------------------------------------------------------------------------


def test_a_seconds_window_ends_that_many_seconds_after_the_first_member_in_utc() -> None:
    # 10 s before Berlin springs forward: 20 elapsed seconds later is 03:00:10 local, not the wall clock's 02:00:10.
    berlin_time = datetime(2026, 3, 29, 1, 59, 50, tzinfo=ZoneInfo("Europe/Berlin"))
    end = window_end(SecondsWindow(seconds=20), berlin_time, "America/New_York")
    assert end == utc("2026-03-29T01:00:10") and end.tzinfo is UTC
    assert end - berlin_time == timedelta(seconds=20)
    assert window_end(SecondsWindow(seconds=604800), T0) == T0 + timedelta(days=7)


def test_a_naive_first_member_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        window_end(SecondsWindow(seconds=20), datetime(2026, 1, 1), None)


@pytest.mark.parametrize(
    ("zone", "first_at", "expected"),
    [
        # Europe/Berlin springs forward on 2026-03-29 (CET +1 → CEST +2) and falls back on 2026-10-25.
        ("Europe/Berlin", "2026-03-27T12:00:00", "2026-03-28T08:00:00"),
        ("Europe/Berlin", "2026-03-28T12:00:00", "2026-03-29T07:00:00"),
        ("Europe/Berlin", "2026-10-24T12:00:00", "2026-10-25T08:00:00"),
        ("Europe/Berlin", "2026-10-23T12:00:00", "2026-10-24T07:00:00"),
        # America/New_York springs forward on 2026-03-08 (EST -5 → EDT -4) and falls back on 2026-11-01.
        ("America/New_York", "2026-03-07T12:00:00", "2026-03-07T14:00:00"),
        ("America/New_York", "2026-03-07T15:00:00", "2026-03-08T13:00:00"),
        ("America/New_York", "2026-10-31T15:00:00", "2026-11-01T14:00:00"),
        # Half-hour offsets: Kolkata (+5:30, no DST) and Adelaide (+9:30 → +10:30 on 2026-10-04).
        ("Asia/Kolkata", "2026-03-07T12:00:00", "2026-03-08T03:30:00"),
        ("Australia/Adelaide", "2026-10-02T12:00:00", "2026-10-02T23:30:00"),
        ("Australia/Adelaide", "2026-10-03T12:00:00", "2026-10-03T22:30:00"),
    ],
)
def test_a_daily_cron_window_ends_at_nine_local_on_both_sides_of_a_dst_change(
    zone: str, first_at: str, expected: str
) -> None:
    end = window_end(CronWindow(cron="0 9 * * *"), utc(first_at), zone)
    assert end == utc(expected)
    assert end.astimezone(ZoneInfo(zone)).hour == 9 and end.astimezone(ZoneInfo(zone)).minute == 0


def test_a_fire_time_in_a_skipped_hour_fires_at_the_first_valid_time_after_the_gap_as_croniter_does() -> None:
    # Europe/Berlin skips 02:00–03:00 on 2026-03-29: "30 2 * * *" fires at 03:00 local that day, once.
    end = window_end(CronWindow(cron="30 2 * * *"), utc("2026-03-28T12:00:00"), "Europe/Berlin")
    assert end == utc("2026-03-29T01:00:00")
    assert window_end(CronWindow(cron="30 2 * * *"), end, "Europe/Berlin") == utc("2026-03-30T00:30:00")
    # America/New_York skips 02:00–03:00 on 2026-03-08.
    new_york = window_end(CronWindow(cron="30 2 * * *"), utc("2026-03-07T12:00:00"), "America/New_York")
    assert new_york == utc("2026-03-08T07:00:00")
    # Lord Howe Island moves by 30 minutes (02:00 → 02:30 on 2026-10-04): 02:15 fires at 02:30 local.
    lord_howe = window_end(CronWindow(cron="15 2 * * *"), utc("2026-10-03T12:00:00"), "Australia/Lord_Howe")
    assert lord_howe == utc("2026-10-03T15:30:00")


def test_a_fire_time_in_a_repeated_hour_fires_once_on_its_first_pass() -> None:
    # Europe/Berlin runs 02:00–03:00 twice on 2026-10-25 (CEST, then CET).
    first = window_end(CronWindow(cron="30 2 * * *"), utc("2026-10-24T12:00:00"), "Europe/Berlin")
    assert first == utc("2026-10-25T00:30:00")
    assert window_end(CronWindow(cron="30 2 * * *"), first, "Europe/Berlin") == utc("2026-10-26T01:30:00")


def test_a_member_at_a_fire_time_waits_for_the_next_one() -> None:
    assert window_end(CronWindow(cron="0 9 * * *"), utc("2026-11-24T09:00:00"), "UTC") == utc("2026-11-25T09:00:00")


def test_the_cron_runs_in_the_users_zone_else_the_rules_else_utc() -> None:
    window = CronWindow(cron="0 9 * * *", timezone="America/New_York")
    first_at = utc("2026-11-24T00:00:00")
    assert window_end(window, first_at, "Europe/Berlin") == utc("2026-11-24T08:00:00")
    assert window_end(window, first_at, None) == utc("2026-11-24T14:00:00")
    assert window_end(window, first_at, "") == utc("2026-11-24T14:00:00")
    assert window_end(CronWindow(cron="0 9 * * *"), first_at, None) == utc("2026-11-24T09:00:00")


def test_a_profile_zone_that_is_not_an_iana_name_falls_back_to_the_rules_zone() -> None:
    window = CronWindow(cron="0 9 * * *", timezone="Asia/Kolkata")
    assert window_end(window, utc("2026-11-24T00:00:00"), "Mars/Olympus") == utc("2026-11-24T03:30:00")
    assert window_end(CronWindow(cron="0 9 * * *"), utc("2026-11-24T00:00:00"), "+02:00") == utc("2026-11-24T09:00:00")


moments = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from(
        [UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York"), timezone(timedelta(hours=-3))]
    ),
)


@settings(deadline=None, max_examples=300)
@given(first_at=moments, seconds=st.integers(min_value=10, max_value=604800))
def test_a_seconds_window_always_ends_after_its_first_member_and_within_seven_days(
    first_at: datetime, seconds: int
) -> None:
    end = window_end(SecondsWindow(seconds=seconds), first_at, None)
    assert first_at < end <= first_at.astimezone(UTC) + timedelta(days=7)
    assert end - first_at == timedelta(seconds=seconds)


@settings(deadline=None, max_examples=300)
@given(
    first_at=moments,
    zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Adelaide", "Pacific/Apia"]),
)
@example(first_at=datetime(2011, 12, 30, tzinfo=UTC), zone="Pacific/Apia")  # found by hypothesis: a skipped day
def test_a_daily_cron_window_ends_at_the_next_nine_local_within_25_hours(first_at: datetime, zone: str) -> None:
    end = window_end(CronWindow(cron="0 9 * * *"), first_at, zone)
    local = end.astimezone(ZoneInfo(zone))
    if (local.hour, local.minute, local.second) != (9, 0, 0):
        # That day's 09:00 did not exist: Samoa skipped 30 December 2011 whole, moving across the date line. The
        # window then ends at the first valid time after the gap (notify.cron.next_fire), 00:00 the day after.
        skipped = datetime.combine(local.date() - timedelta(days=1), time(9))
        round_trip = skipped.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC).astimezone(ZoneInfo(zone))
        assert round_trip.replace(tzinfo=None) != skipped, f"09:00 existed on {skipped.date()} in {zone}"
        assert (local.hour, local.minute, local.second) == (0, 0, 0)
    assert first_at < end <= first_at.astimezone(UTC) + timedelta(hours=25)


# -- flushing --------------------------------------------------------------------------------


def test_the_flush_spread_is_deterministic_per_bucket_and_spreads_buckets_that_end_together() -> None:
    nine = utc("2026-11-24T08:00:00")
    buckets = [bucket_id(bucket_key(rule(key=[]), f"u{n}", "email", {}), 0) for n in range(1000)]
    times = [flush_at(nine, b, 600) for b in buckets]
    assert times == [flush_at(nine, b, 600) for b in buckets]
    assert all(nine <= t <= nine + timedelta(seconds=600) for t in times)
    seconds = {int((t - nine).total_seconds()) for t in times}
    assert len(seconds) > 400  # 1,000 buckets over 601 seconds, not one burst
    assert max(seconds) - min(seconds) > 500


def test_no_spread_flushes_at_the_window_end_and_a_negative_spread_is_refused() -> None:
    assert flush_at(T0, "b-0", 0) == T0
    with pytest.raises(ValueError):
        flush_at(T0, "b-0", -1)


@settings(deadline=None, max_examples=200)
@given(bucket=st.text(max_size=70), spread=st.integers(min_value=0, max_value=86400))
def test_a_flush_is_never_before_the_window_end_nor_after_the_spread(bucket: str, spread: int) -> None:
    at = flush_at(T0, bucket, spread)
    assert T0 <= at <= T0 + timedelta(seconds=spread)
    assert at == flush_at(T0, bucket, spread)


# -- the digest --------------------------------------------------------------------------------


def item(n: int, at: datetime) -> DigestItem:
    return DigestItem(payload={**LIKE, "liked_by": f"fan {n}", "likes_count": n}, occurred_at=at, job_id=f"j-{n}")


def test_the_digest_context_lists_its_members_oldest_first_with_utc_times() -> None:
    paris = ZoneInfo("Europe/Paris")
    members = [
        item(2, T0 + timedelta(seconds=5)),
        item(1, T0.astimezone(paris)),
        item(3, T0 + timedelta(seconds=5, milliseconds=250)),
    ]
    digest = digest_context(members, count=3, max_items=50)
    assert digest == {
        "count": 3,
        "items": [
            {"payload": members[1].payload, "occurred_at": "2026-11-24T12:00:00.000Z"},
            {"payload": members[0].payload, "occurred_at": "2026-11-24T12:00:05.000Z"},
            {"payload": members[2].payload, "occurred_at": "2026-11-24T12:00:05.250Z"},
        ],
        "first_at": "2026-11-24T12:00:00.000Z",
        "last_at": "2026-11-24T12:00:05.250Z",
    }


def test_the_digest_shows_at_most_max_items_members_the_oldest_and_counts_them_all() -> None:
    members = [item(n, T0 + timedelta(seconds=50 - n)) for n in range(50)]
    digest = digest_context(members, count=50, max_items=5)
    assert digest["count"] == 50
    assert [i["payload"]["likes_count"] for i in digest["items"]] == [49, 48, 47, 46, 45]
    assert digest["first_at"] == "2026-11-24T12:00:01.000Z" and digest["last_at"] == "2026-11-24T12:00:50.000Z"


def test_members_at_the_same_instant_are_ordered_by_job_id_and_an_empty_digest_has_no_times() -> None:
    same = [item(2, T0), item(1, T0)]
    assert [i["payload"]["likes_count"] for i in digest_context(same, 2, 10)["items"]] == [1, 2]
    assert digest_context([], 0, 10) == {"count": 0, "items": [], "first_at": None, "last_at": None}


def test_a_bucket_is_full_at_max_items() -> None:
    assert not is_full(49, rule(max_items=50))
    assert is_full(50, rule(max_items=50))
    assert is_full(51, rule(max_items=50))
    assert is_full(1, rule(max_items=1))
