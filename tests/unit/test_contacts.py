"""How the worker finds a recipient's contact (issue 21): inline recipients, the last known contact when the Auth
service is down, and a user with no address on the job's channel, who is skipped rather than failed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from notify.catalog import EVENT_TYPES, field_errors
from notify.clock import iso
from notify.errors import Conflict, TransientError, ValidationFailed
from notify.jobs import EventPlan, new_event_id
from notify.models import Channel, EventRequest, NotificationJob, Status
from notify.ports import PushSender
from notify.records import ContactSnapshot, RenderedMessage, UserPreferences, UserProfile
from notify.services.delivery import Outcome
from notify.services.ingest import IngestService
from notify.services.status import StatusQueries
from pydantic import ValidationError

from .fakes import (
    DeliveryWorld,
    MemoryEmail,
    MemoryPreferences,
    MemoryPublisher,
    MemoryQueue,
    MemoryStore,
)

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ENDPOINT = "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/0b5ab5b4-7fd0-3b4e-9a0a-1f2d3c4b5a69"
ADA = UserProfile("u1", email="u1@example.com", first_name="Ada", locale="en")


class MemoryPush:
    def __init__(self) -> None:
        self.published: list[str] = []

    def send_push(self, endpoint: str, message: RenderedMessage, data: dict[str, Any]) -> str:
        self.published.append(endpoint)
        return f"m-{len(self.published)}"


_push_check: PushSender = MemoryPush()


class World(DeliveryWorld):
    email: MemoryEmail
    push: MemoryPush
    preferences: MemoryPreferences

    def __init__(self) -> None:
        super().__init__(T0, {"u1": ADA}, max_attempts=6)
        self.preferences = MemoryPreferences()
        self.email = MemoryEmail()
        self.push = MemoryPush()
        self.wire()
        self.publisher = MemoryPublisher()
        self.ingest = IngestService(self.store, self.publisher, MemoryQueue(), lambda: self.now)

    def job(self, event_type: str = "new_film", channel: Channel = Channel.EMAIL, **changes: Any) -> NotificationJob:
        spec = EVENT_TYPES[event_type]
        plan = EventPlan(
            new_event_id(), spec, spec.sample_payload(), ["u1"], [channel], spec.priority, T0, T0 + spec.ttl
        )
        return plan.jobs()[0].model_copy(update=changes)

    def last(self, job: NotificationJob) -> Any:
        return self.store.jobs[job.job_id]["history"][-1]


@pytest.fixture
def world() -> World:
    return World()


def _event(**recipients: Any) -> dict[str, Any]:
    return {
        "event_type": "user_registered",
        "payload": {"confirmation_url": "https://example.com/invite/1"},
        "recipients": recipients,
        "channels": ["email"],
    }


# -- inline recipients ----------------------------------------------------------------------------------------


def test_an_inline_recipient_is_sent_with_the_profile_the_caller_gave_and_no_auth_lookup(world: World) -> None:
    invitee = {"user_id": "invitee-1", "email": "zed@example.com", "first_name": "Zed", "locale": "de"}
    accepted = world.ingest.accept(EventRequest.model_validate(_event(users=[invitee], user_ids=["u1"])))
    assert len(accepted.job_ids) == 2
    jobs = {job.user_id: job for job in world.publisher.published if isinstance(job, NotificationJob)}
    assert jobs["invitee-1"].contact is not None and jobs["invitee-1"].contact.email == "zed@example.com"
    assert jobs["u1"].contact is None  # user_ids still come from the Auth service
    assert world.store.events[accepted.event_id].user_ids == ["u1", "invitee-1"]
    world.users.errors.append(TransientError("Auth is down"))  # it must not be asked
    assert world.service.handle(jobs["invitee-1"]) is Outcome.SENT
    assert world.users.asked == []
    ((to, message, _),) = world.email.sent
    assert to == "zed@example.com" and "Hi Zed," in (message.text or "")  # the inline profile feeds the template
    assert world.last(jobs["invitee-1"]).detail["contact_source"] == "inline"
    assert "invitee-1" not in world.preferences.items  # a caller's profile is never the last known contact


@pytest.mark.parametrize(
    ("recipients", "loc", "words"),
    [
        ({"users": [{"user_id": "a", "email": "a@x.io"}], "segment_id": "all"}, "recipients", "segment_id"),
        ({"users": [{"user_id": "a"}, {"user_id": "b"}, {"user_id": "a"}]}, "recipients.users.2.user_id", "twice"),
        ({"users": [{"user_id": "a"}], "user_ids": ["b", "a"]}, "recipients.users.0.user_id", "user_ids"),
        ({"users": [{"user_id": "a", "email": "not an address"}]}, "recipients.users.0.email", ""),
        ({"users": [{"user_id": "a", "email": "a@x.io\r\nBcc: b@y.io"}]}, "recipients.users.0.email", ""),
        ({"users": [{"user_id": ".."}]}, "recipients.users.0.user_id", ""),
        ({"users": [{"user_id": "a", "push_endpoints": ["arn:aws:sns:us-east-1:1:topic"]}]}, "", "push_endpoints"),
        ({"users": [{"user_id": "a", "phone": "+49"}]}, "recipients.users.0.phone", ""),
        ({"users": []}, "recipients.users", ""),
        (
            {"user_ids": [f"u{i}" for i in range(600)], "users": [{"user_id": f"v{i}"} for i in range(401)]},
            "recipients",
            "1,001",
        ),
    ],
)
def test_inline_recipients_are_validated_field_by_field(
    world: World, recipients: dict[str, Any], loc: str, words: str
) -> None:
    errors = _refusal(world, _event(**recipients))
    assert [e for e in errors if e[0].startswith(loc) and words in f"{e[0]} {e[1]}"], errors


def _refusal(world: World, body: dict[str, Any]) -> list[tuple[str, str]]:
    """(loc, msg) of each field error the body draws, from the model or from ingestion (the API's 422)."""
    try:
        world.ingest.accept(EventRequest.model_validate(body))
    except ValidationError as exc:
        return [(e.loc, e.msg) for e in field_errors(exc)]
    except ValidationFailed as exc:
        return [(e.loc, e.msg) for e in exc.errors]
    raise AssertionError(f"accepted: {body}")


def test_an_event_id_sent_again_with_another_inline_profile_is_a_conflict(world: World) -> None:
    event_id = new_event_id()
    first = _event(users=[{"user_id": "invitee-1", "email": "zed@example.com"}])
    world.store.put_event = _conflict_on_second(world.store)  # type: ignore[method-assign]
    world.ingest.accept(EventRequest.model_validate(first), event_id)
    world.ingest.accept(EventRequest.model_validate(first), event_id)  # the same event: completed, not refused
    other = _event(users=[{"user_id": "invitee-1", "email": "eve@example.com"}])
    with pytest.raises(Conflict):
        world.ingest.accept(EventRequest.model_validate(other), event_id)


def _conflict_on_second(store: MemoryStore) -> Any:
    original = store.put_event

    def put_event(record: Any) -> None:
        if record.event_id in store.events:
            raise Conflict(f"event {record.event_id} already exists")
        original(record)

    return put_event


# -- the last known contact --------------------------------------------------------------------------------------


def test_an_auth_answer_is_kept_as_the_last_known_contact_written_once_a_day_or_on_a_change(world: World) -> None:
    assert world.service.handle(world.job()) is Outcome.SENT
    kept = world.preferences.items["u1"].contact
    assert kept == ContactSnapshot(ADA, iso(T0))
    writes = world.preferences.contact_writes
    assert writes == 1
    world.now = T0 + timedelta(hours=23)
    assert world.service.handle(world.job()) is Outcome.SENT
    assert world.preferences.contact_writes == writes  # unchanged and under a day old: no write
    world.users.users["u1"] = UserProfile("u1", email="ada@new.example.com", first_name="Ada", locale="en")
    assert world.service.handle(world.job()) is Outcome.SENT
    assert world.preferences.contact_writes == writes + 1
    assert world.preferences.items["u1"].contact == ContactSnapshot(world.users.users["u1"], iso(world.now))
    world.now += timedelta(days=1, seconds=1)
    assert world.service.handle(world.job()) is Outcome.SENT
    assert world.preferences.contact_writes == writes + 2  # a day old: refreshed


def test_auth_down_retries_twice_then_the_third_attempt_sends_with_the_last_known_contact(world: World) -> None:
    world.preferences.items["u1"] = UserPreferences("u1", contact=ContactSnapshot(ADA, iso(T0 - timedelta(days=3))))
    job = world.job()
    for attempt in (0, 1):
        world.users.errors.append(TransientError("Auth service unreachable"))
        assert world.service.handle(job.model_copy(update={"attempt": attempt})) is Outcome.RETRYING
    world.users.errors.append(TransientError("Auth service unreachable"))
    assert world.service.handle(job.model_copy(update={"attempt": 2})) is Outcome.SENT
    assert world.email.sent[0][0] == "u1@example.com"
    sent = world.last(job)
    assert (sent.status, sent.attempt, sent.detail["contact_source"]) == (Status.SENT, 2, "snapshot")
    assert world.dlq.letters == []


def test_without_a_last_known_contact_auth_down_still_retries(world: World) -> None:
    job = world.job(attempt=2)
    world.users.errors.append(TransientError("Auth service unreachable"))
    assert world.service.handle(job) is Outcome.RETRYING
    assert world.email.sent == []


def test_a_last_known_contact_older_than_30_days_is_not_used(world: World) -> None:
    old = ContactSnapshot(ADA, iso(T0 - timedelta(days=31)))
    world.preferences.items["u1"] = UserPreferences("u1", contact=old)
    world.users.errors.append(TransientError("Auth service unreachable"))
    assert world.service.handle(world.job(attempt=3)) is Outcome.RETRYING


def test_a_user_auth_says_is_gone_is_never_sent_with_the_last_known_contact(world: World) -> None:
    world.preferences.items["u1"] = UserPreferences("u1", contact=ContactSnapshot(ADA, iso(T0)))
    del world.users.users["u1"]
    assert world.service.handle(world.job()) is Outcome.FAILED
    assert world.preferences.items["u1"].contact is None  # forgotten
    world.users.errors.append(TransientError("Auth service unreachable"))
    assert world.service.handle(world.job(attempt=4)) is Outcome.RETRYING
    assert world.email.sent == []


def test_an_account_push_reads_the_last_known_contact_only_when_auth_is_down(world: World) -> None:
    world.preferences.items["u1"] = UserPreferences(
        "u1", contact=ContactSnapshot(UserProfile("u1", push_endpoints=(ENDPOINT,)), iso(T0))
    )
    reads = world.preferences.reads
    world.users.users["u1"] = UserProfile("u1", push_endpoints=(ENDPOINT,))
    assert world.service.handle(world.job("password_reset", Channel.PUSH)) is Outcome.SENT
    assert world.preferences.reads == reads  # account push: no preferences read while Auth answers
    world.users.errors.append(TransientError("Auth service unreachable"))
    assert world.service.handle(world.job("password_reset", Channel.PUSH, attempt=2)) is Outcome.SENT
    assert world.push.published == [ENDPOINT, ENDPOINT]


# -- unreachable on the channel ----------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", [Channel.PUSH, Channel.EMAIL])
def test_a_user_with_no_address_on_the_channel_is_skipped_not_failed(world: World, channel: Channel) -> None:
    world.users.users["u1"] = UserProfile("u1", first_name="Ada")  # no email, no push endpoint
    job = world.job("review_liked", channel)
    assert world.service.handle(job) is Outcome.SKIPPED
    last = world.last(job)
    assert last.status is Status.SKIPPED
    assert last.detail == {"reason": "unreachable", "channel": channel.value, "contact_source": "auth"}
    assert world.dlq.letters == [] and world.queue.sent == []


def test_an_inline_recipient_without_an_address_on_the_channel_is_skipped(world: World) -> None:
    accepted = world.ingest.accept(
        EventRequest.model_validate({**_event(users=[{"user_id": "invitee-2", "first_name": "Zed"}])})
    )
    (job,) = world.publisher.published
    assert isinstance(job, NotificationJob)
    assert world.service.handle(job) is Outcome.SKIPPED
    assert world.last(job).detail["reason"] == "unreachable" and world.dlq.letters == []
    assert world.users.asked == []
    summary = StatusQueries(world.store).event(accepted.event_id)
    assert summary["status_counts"] == {"SKIPPED": 1}
    assert summary["skipped_counts"] == {"unreachable": 1}
