"""No double send by construction: ambiguous sends are never retried, push retries skip endpoints done, and the
send-rate limiter (issue 9, item 1 and the SES rate of item 4)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from notify.adapters.aws import SEND_CONFIG, SEND_CONNECT_TIMEOUT, SEND_READ_TIMEOUT
from notify.adapters.ses import SesEmailSender
from notify.adapters.sns import SnsPushSender
from notify.errors import OutcomeUnknown, PermanentError, TransientError
from notify.models import Channel, Contact, Status
from notify.ports import EmailSender, PushSender
from notify.ratelimit import RateLimited, RateLimitedEmailSender, TokenBucket
from notify.records import RenderedMessage
from notify.services.delivery import Outcome

from .fakes import T0, World

ENDPOINTS = [f"arn:aws:sns:eu-west-1:1:endpoint/GCM/app/e{n}" for n in (1, 2, 3)]


class MemoryPush:
    """Publishes into a list; ``errors`` maps an endpoint to the errors its next publishes raise."""

    def __init__(self, world: World, seconds_per_call: float = 0) -> None:
        self.world = world
        self.seconds_per_call = seconds_per_call
        self.published: list[str] = []
        self.errors: dict[str, list[Exception]] = {}

    def send_push(self, endpoint: str, message: RenderedMessage, data: dict[str, Any]) -> str:
        self.world.now += timedelta(seconds=self.seconds_per_call)
        if self.errors.get(endpoint):
            raise self.errors[endpoint].pop(0)
        self.published.append(endpoint)
        return f"m-{endpoint[-2:]}-{len(self.published)}"


_port_checks: tuple[PushSender, EmailSender] = (
    MemoryPush(World()),
    RateLimitedEmailSender(World().email, TokenBucket(1)),
)


def _push_world(seconds_per_call: float = 0) -> tuple[World, MemoryPush]:
    world = World()
    push = MemoryPush(world, seconds_per_call)
    world.push = push  # the same world, with a push channel
    world.wire()
    return world, push


def _push_job(world: World) -> Any:
    return world.job(channel=Channel.PUSH, contact=Contact(push_endpoints=list(ENDPOINTS)))


# -- ambiguous sends -------------------------------------------------------------------------------------------


def test_a_send_whose_answer_was_lost_fails_as_outcome_unknown_and_is_never_retried() -> None:
    world = World()
    world.email.errors.append(OutcomeUnknown("SES: read timeout"))
    job = world.job()
    assert world.service.handle(job) is Outcome.FAILED
    assert world.queue.sent == []  # no retry
    (letter,) = world.dlq.letters
    assert letter.reason == "outcome_unknown"
    assert world.store.statuses(job.job_id)[-1] is Status.FAILED
    assert world.service.handle(job) is Outcome.DUPLICATE


class _Client:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def send_email(self, **_: Any) -> Any:
        raise self.exc

    def publish(self, **_: Any) -> Any:
        raise self.exc


MESSAGE = RenderedMessage("user_registered.email.en", 1, "en", subject="s", text="t", title="t", body="b")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ReadTimeoutError(endpoint_url="https://email"), OutcomeUnknown),
        (ConnectTimeoutError(endpoint_url="https://email"), TransientError),
        (EndpointConnectionError(endpoint_url="https://email"), TransientError),
    ],
)
def test_adapters_tell_a_lost_answer_from_a_request_never_sent(exc: Exception, expected: type[Exception]) -> None:
    with pytest.raises(expected):
        SesEmailSender(_Client(exc), "from@example.com").send_email("to@example.com", MESSAGE)  # type: ignore[arg-type]
    with pytest.raises(expected):
        SnsPushSender(_Client(exc)).send_push(ENDPOINTS[0], MESSAGE, {})  # type: ignore[arg-type]
    assert not issubclass(OutcomeUnknown, (TransientError, PermanentError))


def test_provider_clients_make_one_attempt_with_timeouts_inside_the_lease() -> None:
    assert SEND_CONFIG.retries == {"total_max_attempts": 1, "mode": "standard"}  # type: ignore[attr-defined]
    assert SEND_CONNECT_TIMEOUT + SEND_READ_TIMEOUT < World().service._settings.call_seconds
    assert World().service._settings.call_seconds < World().service._settings.lease_seconds


# -- push progress ---------------------------------------------------------------------------------------------


def test_a_push_retry_publishes_only_to_the_endpoints_not_yet_done() -> None:
    world, push = _push_world()
    push.errors[ENDPOINTS[1]] = [TransientError("SNS: Throttling")]
    job = _push_job(world)
    assert world.service.handle(job) is Outcome.RETRYING
    ((retry, delay),) = world.queue.sent
    assert retry.pushed == {ENDPOINTS[0]: "m-e1-1"}
    assert world.store.jobs[job.job_id]["history"][-1].detail["endpoints_done"] == 1
    world.now = T0 + timedelta(seconds=delay)
    assert world.service.handle(retry) is Outcome.SENT
    assert sorted(push.published) == sorted(ENDPOINTS)  # each exactly once
    assert world.store.statuses(job.job_id) == [
        Status.PROCESSING,
        Status.SENDING,
        Status.RETRYING,
        Status.PROCESSING,
        Status.SENDING,
        Status.SENT,
    ]
    sent = world.store.jobs[job.job_id]["history"][-1].detail["provider_message_id"]
    assert sent == "m-e1-1,m-e2-2,m-e3-3"


def test_a_failed_push_dead_letters_its_progress_so_a_redrive_skips_the_endpoints_done() -> None:
    world, push = _push_world()
    push.errors[ENDPOINTS[1]] = [OutcomeUnknown("SNS: read timeout")]
    assert world.service.handle(_push_job(world)) is Outcome.FAILED
    (letter,) = world.dlq.letters
    assert letter.job is not None and letter.job["pushed"] == {ENDPOINTS[0]: "m-e1-1"}
    assert push.published == [ENDPOINTS[0]]


def test_an_endpoint_that_refuses_for_good_is_skipped_and_the_others_still_get_the_push() -> None:
    world, push = _push_world()
    push.errors[ENDPOINTS[0]] = [PermanentError("SNS: EndpointDisabled")]
    job = _push_job(world)
    assert world.service.handle(job) is Outcome.SENT
    assert push.published == ENDPOINTS[1:]
    sent = world.store.jobs[job.job_id]["history"][-1]
    assert sent.detail["provider_message_id"] == "m-e2-1,m-e3-2"
    assert list(sent.detail["endpoints_rejected"]) == [ENDPOINTS[0]]
    assert "EndpointDisabled" in sent.detail["endpoints_rejected"][ENDPOINTS[0]]
    assert world.dlq.letters == []


def test_a_push_fails_only_when_every_endpoint_refuses() -> None:
    world, push = _push_world()
    for endpoint in ENDPOINTS:
        push.errors[endpoint] = [PermanentError("SNS: EndpointDisabled")]
    job = _push_job(world)
    assert world.service.handle(job) is Outcome.FAILED
    (letter,) = world.dlq.letters
    assert letter.reason == "permanent_error" and all(e in letter.error for e in ENDPOINTS)


def test_a_single_endpoint_push_costs_three_writes_and_carries_no_progress() -> None:
    world, push = _push_world()
    job = world.job(channel=Channel.PUSH, contact=Contact(push_endpoints=[ENDPOINTS[0]]))
    assert world.service.handle(job) is Outcome.SENT
    assert world.store.statuses(job.job_id) == [Status.PROCESSING, Status.SENDING, Status.SENT]
    assert push.published == [ENDPOINTS[0]]


def test_no_provider_call_starts_that_could_outlive_the_lease() -> None:
    # Each publish takes 30 s: the third could not end before the 60 s lease does, so it waits for a retry.
    world, push = _push_world(seconds_per_call=30)
    job = _push_job(world)
    assert world.service.handle(job) is Outcome.RETRYING
    ((retry, _),) = world.queue.sent
    assert set(retry.pushed or {}) == set(ENDPOINTS[:2])
    assert push.published == ENDPOINTS[:2]
    assert "lease" in (world.store.jobs[job.job_id]["history"][-1].error or "")


# -- the send-rate limit ---------------------------------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_bucket_allows_its_burst_then_one_send_per_interval() -> None:
    t = FakeTime()
    bucket = TokenBucket(10, burst=2, clock=t.clock, sleep=t.sleep)
    waits = [bucket.acquire() for _ in range(5)]
    assert waits[:2] == [0, 0]
    assert waits[2:] == pytest.approx([0.1, 0.1, 0.1])
    assert t.now == pytest.approx(100.3)  # 5 sends in 0.3 s: 2 saved + 10 a second


def test_the_bucket_refills_while_idle_up_to_its_burst() -> None:
    t = FakeTime()
    bucket = TokenBucket(14, clock=t.clock, sleep=t.sleep)
    for _ in range(14):
        assert bucket.acquire() == 0
    t.now += 60
    assert [bucket.acquire() for _ in range(14)] == [0] * 14  # never more than 14 saved
    assert bucket.acquire() == pytest.approx(1 / 14)


def test_the_bucket_refuses_a_wait_longer_than_allowed_and_takes_nothing() -> None:
    t = FakeTime()
    bucket = TokenBucket(1, max_wait=2.5, clock=t.clock, sleep=lambda s: None)
    assert [bucket.acquire() for _ in range(3)] == [0, 1, 2]
    with pytest.raises(RateLimited):
        bucket.acquire()  # its slot would be 3 s away
    assert issubclass(RateLimited, TransientError)  # the job retries later; nothing was sent
    t.now += 3
    assert bucket.acquire() == 0  # the refused call reserved nothing


def test_threads_sharing_a_bucket_each_get_their_own_slot() -> None:
    t = FakeTime()  # the clock stands still: every wait is a reservation made under the lock
    lock = threading.Lock()
    waits: list[float] = []
    bucket = TokenBucket(20, burst=1, max_wait=10, clock=t.clock, sleep=lambda s: None)

    def take() -> None:
        for _ in range(25):
            w = bucket.acquire()
            with lock:
                waits.append(w)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(round(w * 20) for w in waits) == list(range(200))  # 200 distinct slots, 1/20 s apart


def test_the_rate_limited_sender_takes_a_token_before_each_send() -> None:
    world = World()
    t = FakeTime()
    sender = RateLimitedEmailSender(world.email, TokenBucket(2, burst=1, clock=t.clock, sleep=t.sleep))
    for _ in range(3):
        sender.send_email("a@example.com", MESSAGE)
    assert len(world.email.sent) == 3
    assert t.slept == [0.5, 0.5]
