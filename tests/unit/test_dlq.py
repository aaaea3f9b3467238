from __future__ import annotations

import json
from datetime import timedelta

from notify.errors import PermanentError, TransientError
from notify.models import NotificationJob, Status, WebhookTask
from notify.records import DeadLetter, ReceivedLetter
from notify.services.delivery import Outcome
from notify.services.dlq import DeadLetterService

from .fakes import T0, MemoryInbox, World


def _letters(world: World) -> MemoryInbox:
    return MemoryInbox(
        [
            ReceivedLetter(f"m{i}", f"r{i}", {**letter.__dict__}, "1795491963495", 1)
            for i, letter in enumerate(world.dlq.letters)
        ]
    )


def test_a_failed_job_is_redriven_with_a_fresh_budget_and_sent() -> None:
    world = World()
    job = world.job()
    for _ in range(3):
        world.email.errors.append(TransientError("throttled"))
        world.now += timedelta(minutes=5)
        world.service.handle(job)
        job = world.queue.sent[-1][0]
    assert world.store.statuses(job.job_id)[-1] is Status.FAILED
    inbox = _letters(world)
    service = DeadLetterService(inbox, world.store, world.queue, lambda: T0)
    (listed,) = service.list()
    assert (listed["reason"], listed["job_id"], listed["attempt"]) == ("attempts_exhausted", job.job_id, 2)
    assert listed["dead_lettered_at"] == "2026-11-24T03:46:03.495000Z"

    result = service.redrive([job.job_id])
    assert result == {"redriven": [job.job_id], "skipped": []}
    assert inbox.deleted == ["r0"]
    replay, delay = world.queue.sent[-1]
    assert (replay.attempt, replay.retry_base, delay) == (3, 3, 0)
    world.email.errors.append(TransientError("still throttled"))
    assert world.service.handle(replay) is Outcome.RETRYING  # the budget restarted
    assert world.service.handle(world.queue.sent[-1][0].model_copy(update={"not_before": None})) is Outcome.SENT


def test_letters_that_are_not_jobs_are_reported_not_redriven() -> None:
    world = World()
    world.triage.handle_raw(b"garbage", "kafka")
    inbox = _letters(world)
    result = DeadLetterService(inbox, world.store, world.queue, lambda: T0).redrive()
    assert result["redriven"] == [] and "not a job" in result["skipped"][0]["reason"]
    assert inbox.deleted == []


def test_a_job_that_was_sent_meanwhile_is_dropped_not_resent() -> None:
    world = World()
    job = world.job()
    world.email.errors.append(TransientError("throttled"))
    world.service.handle(job)
    world.dlq.send(DeadLetter("manual", "x", 0, job=job.model_dump(mode="json")))
    retry = world.queue.sent[-1][0].model_copy(update={"not_before": None})
    assert world.service.handle(retry) is Outcome.SENT
    inbox = _letters(world)
    result = DeadLetterService(inbox, world.store, world.queue, lambda: T0).redrive()
    assert result["redriven"] == [] and "SENT" in result["skipped"][0]["reason"]
    assert inbox.deleted == ["r0"]


def test_a_bare_job_moved_by_sqs_redrive_is_listed_and_redriven() -> None:
    world = World()
    job = world.job()
    inbox = MemoryInbox([ReceivedLetter("m0", "r0", job.model_dump(mode="json"), "", 5)])
    service = DeadLetterService(inbox, world.store, world.queue, lambda: T0)
    (listed,) = service.list()
    assert (listed["reason"], listed["job_id"], listed["receive_count"]) == ("max_receives_exceeded", job.job_id, 5)
    assert service.redrive()["redriven"] == [job.job_id]
    assert world.service.handle(world.queue.sent[-1][0]) is Outcome.SENT


def test_a_kafka_event_source_failure_record_is_a_letter_that_names_the_records() -> None:
    from notify.records import ReceivedLetter
    from notify.services.dlq import letter_view

    body = {
        "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 6},
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2026-11-25T10:00:00.000Z",
        "KafkaBatchInfo": {
            "batchSize": 2,
            "recordsInfo": {"jobs-0": {"firstRecordOffset": "7", "lastRecordOffset": "8"}},
        },
    }
    view = letter_view(ReceivedLetter("m1", "r1", body, "1795492800000", 1))
    assert view["reason"] == "kafka_event_source_gave_up" and view["attempt"] == 6
    assert "RetryAttemptsExhausted" in view["error"] and "jobs-0 offsets 7-8" in view["error"]
    assert view["kafka"] == {"jobs-0": {"firstRecordOffset": "7", "lastRecordOffset": "8"}}


def _failed(world: World) -> NotificationJob:
    job = world.job()
    world.email.errors.append(PermanentError("rejected"))
    assert world.service.handle(job) is Outcome.FAILED
    return job


def test_a_redrive_whose_enqueue_fails_changes_nothing_and_keeps_the_letter() -> None:
    world = World()
    job = _failed(world)
    inbox = _letters(world)
    service = DeadLetterService(inbox, world.store, world.queue, lambda: T0)
    world.queue.fail = True
    result = service.redrive()
    assert result["redriven"] == [] and "kept" in result["skipped"][0]["reason"]
    assert inbox.deleted == [] and inbox.released == ["r0"]
    assert world.store.statuses(job.job_id)[-1] is Status.FAILED  # nothing to strand
    world.queue.fail = False
    assert service.redrive()["redriven"] == [job.job_id]
    assert world.service.handle(world.queue.sent[-1][0]) is Outcome.SENT


def test_a_letter_of_a_job_that_is_not_terminal_is_queued_again_not_dropped() -> None:
    world = World()
    job = world.job()
    world.store.claim(job, T0, 60)  # e.g. DynamoDB failed after the claim, five receives in a row
    inbox = MemoryInbox([ReceivedLetter("m0", "r0", job.model_dump(mode="json"), "", 5)])
    world.now = T0 + timedelta(seconds=61)  # the lease ran out
    assert DeadLetterService(inbox, world.store, world.queue, lambda: T0).redrive()["redriven"] == [job.job_id]
    assert inbox.deleted == ["r0"]
    assert world.service.handle(world.queue.sent[-1][0]) is Outcome.SENT


def test_a_stray_copy_of_an_older_attempt_never_revives_a_failed_job() -> None:
    world = World()
    job = _failed(world)
    stray = job.model_copy(update={"attempt": job.attempt + 1})  # a retry copy, not a redrive's
    assert world.service.handle(stray) is Outcome.DUPLICATE
    assert world.email.sent == []


def test_lambdas_dead_letter_for_the_feedback_function_reads_as_feedback_not_applied() -> None:
    from notify.services.dlq import envelope

    from local.events import ses_event, sns_event

    event = sns_event([json.dumps(ses_event("Delivery", "m-1", "a@example.com", {"job_id": "j-1"}, {}))])
    body = envelope(event)
    assert (body["reason"], body["source"]) == ("feedback_not_applied", "feedback-function")
    assert json.loads(body["raw"]) == event


def test_an_undeliverable_webhook_message_is_queued_again_with_its_id_and_a_fresh_budget() -> None:
    world = World()
    task = WebhookTask(
        webhook_id="wh_1",
        message_id="msg_1",
        message_type="notification.sent",
        subject="j-1#SENT",
        created_at=T0,
        data={"job_id": "j-1", "status": "SENT"},
        attempt=6,
        first_attempt_at=T0,
        not_before=T0,
    )
    letter = DeadLetter("webhook_undeliverable", "gave up", 6, job=task.model_dump(mode="json"), source="webhook")
    inbox = MemoryInbox([ReceivedLetter("m0", "r0", {**letter.__dict__}, "1795491963495", 1)])
    result = DeadLetterService(inbox, world.store, world.queue, lambda: T0).redrive()
    assert result == {"redriven": ["webhook:wh_1:msg_1"], "skipped": []} and inbox.deleted == ["r0"]
    ((again, delay),) = world.queue.sent
    assert isinstance(again, WebhookTask) and delay == 0
    assert (again.message_id, again.attempt, again.first_attempt_at, again.not_before) == ("msg_1", 0, None, None)
