"""Preferences: who opted out of what, quiet hours in the user's zone (across midnight, over DST), and the worker
applying them before anything is rendered or sent; account notifications pass both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from notify.models import Category, Channel, PreferencesInput, Status
from notify.records import UserPreferences
from notify.services.delivery import Outcome
from notify.services.preferences import PreferenceService
from pydantic import ValidationError

from .fakes import MemoryPreferences, World

BERLIN_NIGHT = {"start": "22:00", "end": "08:00", "timezone": "Europe/Berlin"}


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# -- the rules --------------------------------------------------------------------------------------------------


def test_a_channel_off_globally_or_for_a_category_is_refused_but_account_always_passes() -> None:
    prefs = UserPreferences("u1", channels={"push": False}, categories={"marketing": {"email": False}})
    assert not prefs.allows(Channel.PUSH, Category.CONTENT)
    assert not prefs.allows(Channel.EMAIL, Category.MARKETING)
    assert prefs.allows(Channel.EMAIL, Category.CONTENT) and prefs.allows(Channel.WEBSOCKET, Category.SOCIAL)
    assert prefs.allows(Channel.PUSH, Category.ACCOUNT)
    assert UserPreferences("new").allows(Channel.EMAIL, Category.MARKETING)  # never seen: everything on


@pytest.mark.parametrize(
    ("now", "until"),
    [
        ("2026-11-25T23:30:00+01:00", "2026-11-26T08:00:00+01:00"),  # before midnight: ends tomorrow
        ("2026-11-26T03:00:00+01:00", "2026-11-26T08:00:00+01:00"),  # after midnight: ends today
        ("2026-11-26T07:59:00+01:00", "2026-11-26T08:00:00+01:00"),
        ("2026-11-26T08:00:00+01:00", None),  # the end itself is outside
        ("2026-11-26T12:00:00+01:00", None),
        ("2026-11-26T22:00:00+01:00", "2026-11-27T08:00:00+01:00"),  # the start itself is inside
    ],
)
def test_quiet_hours_across_midnight_in_the_users_zone(now: str, until: str | None) -> None:
    prefs = UserPreferences("u1", quiet_hours=BERLIN_NIGHT)
    assert prefs.quiet_until(_at(now), Category.CONTENT) == (_at(until) if until else None)
    assert prefs.quiet_until(_at(now), Category.ACCOUNT) is None


def test_quiet_hours_within_a_day() -> None:
    prefs = UserPreferences("u1", quiet_hours={"start": "13:00", "end": "14:30", "timezone": "Asia/Tokyo"})
    assert prefs.quiet_until(_at("2026-11-26T13:15:00+09:00"), Category.SOCIAL) == _at("2026-11-26T14:30:00+09:00")
    assert prefs.quiet_until(_at("2026-11-26T12:59:00+09:00"), Category.SOCIAL) is None


def test_quiet_hours_end_at_the_wall_clock_time_over_dst_changes() -> None:
    new_york = UserPreferences("u1", quiet_hours={"start": "22:00", "end": "08:00", "timezone": "America/New_York"})
    # The night clocks spring forward (2026-03-08): 22:00 EST to 08:00 EDT is 9 hours, not 10.
    assert new_york.quiet_until(_at("2026-03-07T23:00:00-05:00"), Category.CONTENT) == _at("2026-03-08T12:00:00Z")
    # The night they fall back (2026-11-01): 08:00 EST is 13:00 UTC.
    assert new_york.quiet_until(_at("2026-11-01T01:30:00-04:00"), Category.CONTENT) == _at("2026-11-01T13:00:00Z")
    # An end inside the spring-forward gap (02:30 does not exist on 2026-03-29 in Berlin): the first instant after.
    gap = UserPreferences("u1", quiet_hours={"start": "01:00", "end": "02:30", "timezone": "Europe/Berlin"})
    assert gap.quiet_until(_at("2026-03-29T01:30:00+01:00"), Category.CONTENT) == _at("2026-03-29T01:30:00Z")


@pytest.mark.parametrize(
    ("document", "loc"),
    [
        ({"categories": {"account": {"email": False}}}, "categories"),
        ({"quiet_hours": {"start": "22:00", "end": "22:00", "timezone": "UTC"}}, "quiet_hours"),
        ({"quiet_hours": {"start": "24:00", "end": "08:00", "timezone": "UTC"}}, "quiet_hours.start"),
        ({"quiet_hours": {"start": "22:00", "end": "08:00", "timezone": "Mars/Olympus"}}, "quiet_hours.timezone"),
        ({"channels": {"fax": True}}, "channels.fax"),
        ({"categories": {"gossip": {"email": False}}}, "categories.gossip"),
        ({"channels": {"email": "maybe"}}, "channels.email"),
        ({"mood": "grumpy"}, "mood"),
    ],
)
def test_a_preferences_document_is_validated_strictly(document: dict, loc: str) -> None:
    with pytest.raises(ValidationError) as refused:
        PreferencesInput.model_validate(document)
    locs = [".".join(str(p) for p in e["loc"]) for e in refused.value.errors()]
    assert any(found.startswith(loc) for found in locs), locs


def test_the_service_answers_defaults_replaces_whole_and_imports_in_bulk() -> None:
    store = MemoryPreferences()
    service = PreferenceService(store, lambda: datetime(2026, 11, 25, tzinfo=UTC))
    fresh = service.get("u1")
    assert fresh["channels"] == {"email": True, "push": True, "websocket": True} and fresh["quiet_hours"] is None
    assert all(all(c.values()) for c in fresh["categories"].values())
    stored = service.replace("u1", PreferencesInput.model_validate({"categories": {"marketing": {"email": False}}}))
    assert stored["categories"]["marketing"]["email"] is False and stored["updated_at"] == "2026-11-25T00:00:00.000Z"
    service.replace("u1", PreferencesInput.model_validate({"channels": {"push": False}}))  # replaces, not merges
    assert service.get("u1")["categories"]["marketing"]["email"] is True
    service.replace_many([(f"u{n}", PreferencesInput.model_validate({"quiet_hours": BERLIN_NIGHT})) for n in range(5)])
    assert store.items["u4"].quiet_hours == BERLIN_NIGHT


# -- applied by the worker -------------------------------------------------------------------------------------


def _world(**prefs: object) -> tuple[World, MemoryPreferences]:
    world = World()
    store = MemoryPreferences({"u1": UserPreferences("u1", **prefs)})  # type: ignore[arg-type]
    world.preferences = store
    world.wire()
    return world, store


def test_an_opted_out_job_is_skipped_before_anything_is_rendered_or_sent() -> None:
    world, store = _world(categories={"content": {"email": False}})
    world.users.errors.append(AssertionError("the Auth service was asked"))  # a lookup would fail the job
    job = world.job("new_film")
    assert world.service.handle(job) is Outcome.SKIPPED
    assert world.email.sent == [] and world.users.errors  # nobody looked the user up
    last = world.store.jobs[job.job_id]["history"][-1]
    assert last.status is Status.SKIPPED and last.detail == {"reason": "opted_out", "category": "content"}
    world.users.errors.clear()
    assert world.service.handle(world.job("password_reset")) is Outcome.SENT  # account: never held back
    assert store.reads == 2  # an account email reads them too, for its address's suppression only


def test_quiet_hours_hold_a_job_until_they_end_then_it_is_sent_and_account_jobs_go_at_once() -> None:
    world, _ = _world(quiet_hours={"start": "11:00", "end": "13:00", "timezone": "UTC"})  # T0 is 12:00 UTC
    job = world.job("new_film")
    assert world.service.handle(job) is Outcome.SCHEDULED
    ((copy, delay),) = world.queue.sent
    assert copy.not_before == world.now + timedelta(hours=1) and delay == 900 and copy.waiting  # SQS hops
    assert world.store.jobs[job.job_id]["history"][-1].detail == {
        "due_at": "2026-11-24T13:00:00.000Z",
        "reason": "quiet_hours",
    }
    assert world.service.handle(world.job("password_reset")) is Outcome.SENT
    world.now += timedelta(hours=1)
    assert world.service.handle(copy) is Outcome.SENT
    assert [to for to, _, _ in world.email.sent] == ["u1@example.com", "u1@example.com"]


def test_quiet_hours_past_the_expiry_expire_the_job_rather_than_send_it_late() -> None:
    world, _ = _world(quiet_hours={"start": "11:00", "end": "10:00", "timezone": "UTC"})  # 23 hours of quiet
    job = world.job("new_film", expires_at=world.now + timedelta(hours=2))
    assert world.service.handle(job) is Outcome.EXPIRED
    assert world.email.sent == []


def test_a_suppressed_address_gets_no_email_account_mail_included_but_push_still_goes() -> None:
    world, store = _world()
    store.suppress("u1", "u1@example.com", "bounce", "2026-11-24T12:00:00Z")
    for event_type in ("new_film", "password_reset"):
        job = world.job(event_type)
        assert world.service.handle(job) is Outcome.SKIPPED
        last = world.store.jobs[job.job_id]["history"][-1]
        assert last.detail == {"reason": "suppressed", "address": "u1@example.com"}
    assert world.email.sent == []
    service = PreferenceService(store, lambda: world.now)
    service.replace("u1", PreferencesInput.model_validate({}))  # a PUT never lifts a suppression
    assert store.items["u1"].suppressed == {"u1@example.com"}
    assert service.get("u1")["suppressed"] == ["u1@example.com"]


def test_a_one_click_opt_out_turns_off_one_category_on_one_channel_and_keeps_the_rest() -> None:
    store = MemoryPreferences()
    service = PreferenceService(store, lambda: datetime(2026, 11, 25, tzinfo=UTC))
    service.replace("u1", PreferencesInput.model_validate({"channels": {"push": False}, "quiet_hours": BERLIN_NIGHT}))
    store.suppress("u1", "u1@example.com", "bounce", "now")
    first = service.opt_out("u1", Category.MARKETING, Channel.EMAIL)
    assert service.opt_out("u1", Category.MARKETING, Channel.EMAIL) == first  # idempotent
    assert first["categories"]["marketing"]["email"] is False and first["categories"]["content"]["email"] is True
    assert first["channels"]["push"] is False and first["quiet_hours"] == BERLIN_NIGHT
    assert first["suppressed"] == ["u1@example.com"]
    with pytest.raises(ValueError):
        service.opt_out("u1", Category.ACCOUNT, Channel.EMAIL)
