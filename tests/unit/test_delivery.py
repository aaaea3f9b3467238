from __future__ import annotations

from datetime import timedelta

import pytest
from notify.errors import PermanentError, StoreUnavailable, TransientError
from notify.models import Category, Channel, Contact, Status
from notify.services.delivery import Outcome
from notify.signing import BadToken
from notify.unsubscribe import Unsubscribe, UnsubscribeLinks

from .fakes import T0, World


@pytest.fixture
def world() -> World:
    return World()


def test_a_job_is_rendered_and_sent_once(world: World) -> None:
    job = world.job()
    assert world.service.handle(job) is Outcome.SENT
    assert world.service.handle(job) is Outcome.DUPLICATE
    ((to, message, headers),) = world.email.sent
    assert to == "u1@example.com"
    assert "https://example.com/confirm/abc" in (message.text or "")
    assert "Ada" in (message.subject or "")
    assert headers == {}
    assert world.email.tags == [{"job_id": job.job_id, "event_type": "user_registered"}]  # SES's mail.tags
    assert world.store.statuses(job.job_id) == [Status.PROCESSING, Status.SENDING, Status.SENT]


def test_every_email_but_account_mail_carries_a_signed_one_click_unsubscribe_link(world: World) -> None:
    job = world.job("new_film")
    world.service.handle(job)
    world.service.handle(world.job("password_reset"))
    ((_, content, headers), (_, _, account)) = world.email.sent
    link = headers["List-Unsubscribe"].strip("<>")
    assert link.startswith("https://x.io/u/") and headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = link.rsplit("/", 1)[1]
    assert UnsubscribeLinks(lambda: "test key" * 4, "https://x.io").read(token) == Unsubscribe(
        "u1", Category.CONTENT, Channel.EMAIL
    )
    assert account == {}  # account mail: no link, no header
    history = world.store.jobs[job.job_id]["history"]
    assert history[-1].detail["list_unsubscribe"] is True  # SENT says the email carried one, never the link
    assert token not in repr(history)  # a key that reads statuses must not be able to opt the user out
    with pytest.raises(BadToken):
        UnsubscribeLinks(lambda: "another key" * 3, "https://x.io").read(token)
    with pytest.raises(BadToken):
        UnsubscribeLinks(lambda: "test key" * 4, "https://x.io").read(token[:-3] + "AAA")


def test_expired_job_is_never_sent(world: World) -> None:
    job = world.job(expires_at=T0 - timedelta(seconds=1))
    assert world.service.handle(job) is Outcome.EXPIRED
    assert world.email.sent == []
    assert world.store.statuses(job.job_id)[-1] is Status.EXPIRED


def test_send_after_schedules_then_sends_when_due(world: World) -> None:
    job = world.job(send_after=T0 + timedelta(seconds=1500))
    assert world.service.handle(job) is Outcome.SCHEDULED
    ((queued, delay),) = world.queue.sent
    assert delay == 900  # SQS maximum: the rest is another hop
    assert world.service.handle(queued) is Outcome.SCHEDULED
    world.now = T0 + timedelta(seconds=1500)
    assert world.service.handle(queued) is Outcome.SENT
    assert len(world.email.sent) == 1


def test_transient_errors_retry_with_backoff_then_send(world: World) -> None:
    world.users.errors.append(TransientError("auth down"))
    job = world.job()
    assert world.service.handle(job) is Outcome.RETRYING
    ((retry, delay),) = world.queue.sent
    assert (retry.attempt, delay) == (1, 5)
    assert world.service.handle(retry) is Outcome.SCHEDULED  # not due yet
    world.now = T0 + timedelta(seconds=5)
    assert world.service.handle(retry) is Outcome.SENT
    assert world.service.handle(job) is Outcome.DUPLICATE  # the stale first copy


def test_attempts_exhausted_fail_into_the_dlq(world: World) -> None:
    job = world.job()
    for attempt in range(3):
        world.email.errors.append(TransientError("throttled"))
        world.now += timedelta(minutes=5)
        outcome = world.service.handle(job)
        if attempt < 2:
            assert outcome is Outcome.RETRYING
            job = world.queue.sent[-1][0]
    assert outcome is Outcome.FAILED
    (letter,) = world.dlq.letters
    assert letter.reason == "attempts_exhausted" and letter.attempt == 2 and "throttled" in letter.error
    assert world.store.statuses(job.job_id)[-1] is Status.FAILED


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda w: w.email.errors.append(PermanentError("rejected address")), "rejected address"),
        (lambda w: w.templates.templates.clear(), "no template"),
        (lambda w: w.users.users.clear(), "does not exist"),
    ],
)
def test_permanent_errors_fail_at_once(world: World, setup, reason: str) -> None:
    setup(world)
    assert world.service.handle(world.job()) is Outcome.FAILED
    assert world.queue.sent == []
    assert reason in world.dlq.letters[0].error


def test_explicit_contact_skips_the_directory(world: World) -> None:
    world.users.errors.append(TransientError("would fail"))
    job = world.job(contact=Contact(email="direct@example.com"))
    assert world.service.handle(job) is Outcome.SENT
    assert world.email.sent[0][0] == "direct@example.com"


def test_crash_mid_send_is_not_sent_again(world: World) -> None:
    job = world.job()
    claim = world.store.claim(job, T0, 60)
    world.store.transition(job, Status.SENDING, T0, claim.token)  # then the worker died
    assert world.service.handle(job) is Outcome.DEFERRED  # lease still live: look again later
    world.now = T0 + timedelta(seconds=61)
    assert world.service.handle(job) is Outcome.FAILED
    assert world.email.sent == []
    assert world.dlq.letters[0].reason == "outcome_unknown"


def test_poison_record_goes_to_the_dlq(world: World) -> None:
    assert world.triage.handle_raw(b"{not json", "kafka").outcome is Outcome.DEAD_LETTERED
    assert world.triage.handle_raw(b'{"schema_version": 99}', "kafka").outcome is Outcome.DEAD_LETTERED
    reasons = [letter.error for letter in world.dlq.letters]
    assert "not JSON" in reasons[0] and "schema_version 99" in reasons[1]


def test_queue_down_means_the_outcome_is_not_recorded(world: World) -> None:
    world.queue.fail = True
    world.users.errors.append(TransientError("auth down"))
    with pytest.raises(StoreUnavailable):
        world.service.handle(world.job())
