"""One record can never stop the others: whatever it holds, it ends in a status or in the DLQ."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from notify.errors import StoreUnavailable, TemplateFailed
from notify.models import MAX_ID_BYTES, NotificationJob, Recipients, Status
from notify.services.delivery import Outcome
from notify.services.triage import MAX_RAW_BYTES
from pydantic import ValidationError

from .fakes import T0, World


@pytest.fixture
def world() -> World:
    return World()


def test_bytes_that_are_not_utf8_are_dead_lettered_as_base64(world: World) -> None:
    raw = b"\xff\xfe\x00 not text"
    assert world.triage.handle_raw(raw, "kafka:t-0@1").outcome is Outcome.DEAD_LETTERED
    (letter,) = world.dlq.letters
    assert letter.reason == "invalid_job" and "UTF-8" in letter.error
    assert letter.raw is None and base64.b64decode(letter.raw_base64 or "") == raw
    assert letter.raw_size == len(raw) and letter.source == "kafka:t-0@1"


@pytest.mark.parametrize(
    "raw",
    [b"[1, 2]", b'"a string"', b"[" * 5000 + b"]" * 5000, b"", b"null", b'{"schema_version": 1}'],
    ids=["array", "string", "nested-5000", "empty", "null", "not-a-job"],
)
def test_json_that_is_not_a_job_is_dead_lettered_as_text(world: World, raw: bytes) -> None:
    assert world.triage.handle_raw(raw, "kafka").outcome is Outcome.DEAD_LETTERED
    (letter,) = world.dlq.letters
    assert letter.reason == "invalid_job" and letter.raw == raw.decode()[:MAX_RAW_BYTES]


def test_a_huge_record_keeps_a_bounded_part_of_itself(world: World) -> None:
    raw = b"\x01" * (MAX_RAW_BYTES * 3)  # UTF-8, but every byte is a 6-character JSON escape
    world.triage.handle_raw(raw, "kafka")
    (letter,) = world.dlq.letters
    assert letter.raw_size == len(raw) and letter.raw is None
    assert len(json.dumps(letter.__dict__)) < 200 * 1024  # fits an SQS message


def test_a_user_id_with_a_tab_is_not_a_job(world: World) -> None:
    data = json.loads(world.job().model_dump_json())
    data["user_id"] = "user\t1"
    assert world.triage.handle_raw(json.dumps(data), "kafka").outcome is Outcome.DEAD_LETTERED
    assert "control characters" in world.dlq.letters[0].error


def test_a_template_that_fails_fails_the_job_as_a_template_error(world: World) -> None:
    job = world.job()
    world.service._render = lambda *_: (_ for _ in ()).throw(TemplateFailed("division by zero"))  # type: ignore[method-assign]
    assert world.service.handle(job) is Outcome.FAILED
    assert world.dlq.letters[0].reason == "template_error"
    assert world.store.statuses(job.job_id)[-1] is Status.FAILED


def test_anything_a_peer_makes_the_code_raise_fails_that_job_only(world: World) -> None:
    world.users.errors.append(KeyError("id"))  # e.g. an answer the adapter did not expect
    job = world.job()
    assert world.triage.handle_raw(job.model_dump_json(), "kafka").outcome is Outcome.FAILED
    assert world.dlq.letters[0].reason == "internal_error" and "KeyError" in world.dlq.letters[0].error
    assert world.email.sent == []


def test_raising_while_sending_is_never_sent_again(world: World) -> None:
    world.email.errors.append(RuntimeError("connection reset mid-request"))
    job = world.job()
    assert world.service.handle(job) is Outcome.FAILED
    assert world.dlq.letters[0].reason == "outcome_unknown"
    assert world.service.handle(job) is Outcome.DUPLICATE


def test_store_unavailable_is_the_only_thing_that_escapes(world: World) -> None:
    world.users.errors.append(StoreUnavailable("table down"))
    with pytest.raises(StoreUnavailable):
        world.triage.handle_raw(world.job().model_dump_json(), "kafka")


def test_a_long_wait_has_one_scheduled_entry_whatever_its_hops(world: World) -> None:
    job = world.job(send_after=T0 + timedelta(days=20), expires_at=T0 + timedelta(days=30))
    assert world.service.handle(job) is Outcome.SCHEDULED
    for hop in range(1, 200):  # 20 days of 900-second hops is ~1,900; 200 make the point
        parked, delay = world.queue.sent[-1]
        assert isinstance(parked, NotificationJob) and parked.waiting and delay == 900
        world.now = T0 + timedelta(seconds=900 * hop)
        assert world.service.handle(parked) is Outcome.SCHEDULED
    waited = [Status.PROCESSING, Status.SCHEDULED]  # (the memory store does not keep ACCEPTED)
    assert world.store.statuses(job.job_id) == waited
    world.now = T0 + timedelta(days=20, seconds=1)
    assert world.service.handle(world.queue.sent[-1][0]) is Outcome.SENT
    assert world.store.statuses(job.job_id) == [*waited, Status.PROCESSING, Status.SENDING, Status.SENT]


def test_a_waiting_copy_past_its_expiry_is_expired_not_parked(world: World) -> None:
    job = world.job(send_after=T0 + timedelta(days=2), expires_at=T0 + timedelta(days=1), waiting=True)
    assert world.service.handle(job) is Outcome.EXPIRED


@pytest.mark.parametrize(
    "user_id",
    ["a\tb", "line\nbreak", "nul\x00", " ", "é" * (MAX_ID_BYTES // 2 + 1), "x" * (MAX_ID_BYTES + 1)],
    ids=["tab", "newline", "nul", "blank", "129-bytes-non-ascii", "129-bytes"],
)
def test_user_ids_are_bounded_in_bytes_and_printable(user_id: str) -> None:
    with pytest.raises(ValidationError):
        Recipients(user_ids=[user_id])


def test_a_user_id_of_128_bytes_in_any_script_is_fine() -> None:
    assert Recipients(user_ids=["é" * (MAX_ID_BYTES // 2), "../../internal/admin?x=1"]).user_ids
