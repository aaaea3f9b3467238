"""SES feedback on a sent email: delivered, bounced (suppressing the address), complained (suppressing it and
opting the user out of marketing email), opens and clicks recorded; each event once, whatever SNS redelivers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from notify.errors import FeedbackEarly, StoreUnavailable
from notify.models import Status, WebhookTask
from notify.records import WebhookEndpoint
from notify.services.delivery import Outcome
from notify.services.feedback import Applied, FeedbackService
from notify.services.webhook_emitter import WebhookEmitter

from .fakes import MemoryPreferences, MemoryQueue, MemoryWebhookStore, World


def _sent(world: World) -> tuple[str, str]:
    job = world.job("new_film")
    assert world.service.handle(job) is Outcome.SENT
    message_id = world.store.jobs[job.job_id]["history"][-1].detail["provider_message_id"]
    return job.job_id, message_id


def ses(event_type: str, message_id: str, job_id: str | None, **section: Any) -> dict[str, Any]:
    """An SES event as SES publishes it to SNS (AWS's documented event-publishing format)."""
    tags = {"ses:configuration-set": ["notifications"], **({"job_id": [job_id]} if job_id else {})}
    mail = {
        "timestamp": "2026-11-24T12:00:00.000Z",
        "source": "notifications@example.com",
        "messageId": message_id,
        "destination": ["u1@example.com"],
        "tags": tags,
    }
    key = {"Rendering Failure": "failure", "DeliveryDelay": "deliveryDelay"}.get(
        event_type, event_type[0].lower() + event_type[1:]
    )
    return {"eventType": event_type, "mail": mail, key: {"timestamp": "2026-11-24T12:00:05.000Z", **section}}


@pytest.fixture
def world() -> World:
    return World()


def _service(world: World) -> tuple[FeedbackService, MemoryPreferences]:
    preferences = MemoryPreferences()
    return FeedbackService(world.store, preferences, lambda: world.now), preferences


def test_delivery_moves_a_sent_email_to_delivered_once(world: World) -> None:
    job_id, message_id = _sent(world)
    feedback, _ = _service(world)
    event = ses("Delivery", message_id, job_id, recipients=["u1@example.com"], smtpResponse="250 ok")
    assert feedback.apply(event) is Applied.APPLIED
    assert feedback.apply(event) is Applied.DUPLICATE  # SNS delivered it twice
    assert world.store.jobs[job_id]["status"] is Status.DELIVERED
    assert world.store.statuses(job_id)[-1] is Status.DELIVERED


def test_a_permanent_bounce_suppresses_the_address_and_a_transient_one_only_records(world: World) -> None:
    job_id, message_id = _sent(world)
    feedback, preferences = _service(world)
    soft = ses(
        "Bounce",
        message_id,
        job_id,
        bounceType="Transient",
        bounceSubType="MailboxFull",
        feedbackId="f-1",
        bouncedRecipients=[{"emailAddress": "u1@example.com"}],
    )
    assert feedback.apply(soft) is Applied.APPLIED
    assert world.store.jobs[job_id]["status"] is Status.SENT and "u1" not in preferences.items
    hard = ses(
        "Bounce",
        message_id,
        job_id,
        bounceType="Permanent",
        bounceSubType="General",
        feedbackId="f-2",
        bouncedRecipients=[{"emailAddress": "u1@example.com", "status": "5.1.1"}],
    )
    assert feedback.apply(hard) is Applied.APPLIED
    assert world.store.jobs[job_id]["status"] is Status.BOUNCED
    assert preferences.items["u1"].suppressed == {"u1@example.com"}
    assert world.store.jobs[job_id]["history"][-1].detail["bounceType"] == "Permanent"


def test_a_complaint_suppresses_and_opts_the_user_out_of_marketing_email(world: World) -> None:
    job_id, message_id = _sent(world)
    feedback, preferences = _service(world)
    assert feedback.apply(ses("Delivery", message_id, job_id)) is Applied.APPLIED
    complaint = ses(
        "Complaint",
        message_id,
        job_id,
        feedbackId="c-1",
        complaintFeedbackType="abuse",
        complainedRecipients=[{"emailAddress": "u1@example.com"}],
    )
    assert feedback.apply(complaint) is Applied.APPLIED
    assert world.store.jobs[job_id]["status"] is Status.COMPLAINED
    prefs = preferences.items["u1"]
    assert prefs.suppressed == {"u1@example.com"} and prefs.categories["marketing"]["email"] is False


class FailingOnce(MemoryPreferences):
    """Preferences whose first suppression cannot be written (DynamoDB throttled it)."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    def suppress(self, user_id: str, address: str, reason: str, at: str) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("throttled")
        super().suppress(user_id, address, reason, at)


def test_a_suppression_that_failed_after_the_bounce_was_recorded_is_made_by_the_events_redelivery(
    world: World,
) -> None:
    job_id, message_id = _sent(world)
    preferences = FailingOnce()
    feedback = FeedbackService(world.store, preferences, lambda: world.now)
    hard = ses(
        "Bounce",
        message_id,
        job_id,
        bounceType="Permanent",
        feedbackId="f-9",
        bouncedRecipients=[{"emailAddress": "u1@example.com"}],
    )
    with pytest.raises(StoreUnavailable):
        feedback.apply(hard)  # BOUNCED is recorded, the suppression is not: SNS delivers the event again
    assert world.store.jobs[job_id]["status"] is Status.BOUNCED and "u1" not in preferences.items
    assert feedback.apply(hard) is Applied.DUPLICATE
    assert preferences.items["u1"].suppressed == {"u1@example.com"}


def test_opens_clicks_and_delays_are_history_only_and_each_applies_once(world: World) -> None:
    job_id, message_id = _sent(world)
    feedback, _ = _service(world)
    for event in (
        ses("Open", message_id, job_id, ipAddress="192.0.2.1", userAgent="Mail"),
        ses("Click", message_id, job_id, link="https://example.com/watch", ipAddress="192.0.2.1"),
        ses("DeliveryDelay", message_id, job_id, delayType="MailboxFull"),
        ses("Reject", message_id, job_id, reason="Bad content"),
        ses("Rendering Failure", message_id, job_id, errorMessage="Attribute 'x' is not present"),
    ):
        assert feedback.apply(event) is Applied.APPLIED
        assert feedback.apply(event) is Applied.DUPLICATE
    history = world.store.jobs[job_id]["history"]
    assert [h.detail["feedback"] for h in history[-5:]] == [
        "Open",
        "Click",
        "DeliveryDelay",
        "Reject",
        "Rendering Failure",
    ]
    assert history[-4].detail["link"] == "https://example.com/watch"
    assert world.store.jobs[job_id]["status"] is Status.SENT


def test_events_of_other_senders_or_other_messages_change_nothing(world: World) -> None:
    job_id, message_id = _sent(world)
    feedback, _ = _service(world)
    assert feedback.apply(ses("Send", message_id, job_id)) is Applied.IGNORED
    assert feedback.apply(ses("Delivery", message_id, None)) is Applied.UNMATCHED  # no job_id tag
    assert feedback.apply(ses("Delivery", "another-message", job_id)) is Applied.UNMATCHED
    assert feedback.apply(ses("Delivery", message_id, "no-such-job")) is Applied.UNMATCHED
    assert world.store.jobs[job_id]["status"] is Status.SENT
    with pytest.raises(ValueError):
        feedback.apply({"notification": "not SES"})


def test_an_events_summary_counts_what_ses_reported(world: World) -> None:
    from notify.services.status import feedback_counts

    jobs: list[dict[str, Any]] = [
        {"status": "DELIVERED", "history": [{"detail": {"feedback": "Open"}}, {"detail": {"feedback": "Open"}}]},
        {"status": "COMPLAINED", "history": [{"detail": {"feedback": "Click"}}]},
        {"status": "BOUNCED", "history": []},
        {"status": "SENT", "history": []},
    ]
    assert feedback_counts(jobs) == {"delivered": 2, "bounced": 1, "complained": 1, "opened": 1, "clicked": 1}


def test_an_event_before_the_send_is_on_record_is_refused_for_a_retry_then_applied(world: World) -> None:
    job_id, message_id = _sent(world)
    item = world.store.jobs[job_id]
    sent_entry = item["history"].pop()  # as if SES published before the worker wrote SENT with the message id
    item["status"] = Status.SENDING
    feedback, _ = _service(world)
    event = ses("Delivery", message_id, job_id, recipients=["u1@example.com"], smtpResponse="250 ok")
    with pytest.raises(FeedbackEarly):
        feedback.apply(event)
    assert item["status"] is Status.SENDING  # nothing recorded
    item["history"].append(sent_entry)
    item["status"] = Status.SENT
    assert feedback.apply(event) is Applied.APPLIED  # Lambda's retry
    assert item["status"] is Status.DELIVERED


# -- issue 20: no secret-bearing link in the history, and feedback that stays bounded ----------------------------


def _sent_as(world: World, event_type: str) -> tuple[str, str]:
    job = world.job(event_type)
    assert world.service.handle(job) is Outcome.SENT
    return job.job_id, world.store.jobs[job.job_id]["history"][-1].detail["provider_message_id"]


def _seen(world: World, job_id: str) -> str:
    """The job as the status API shows it (GET /notifications/{id}, a user's list), as text."""
    from notify.services.status import job_view

    record = world.store.get_job(job_id)
    assert record is not None
    return json.dumps(job_view(record))


def test_a_click_on_a_reset_link_leaves_no_token_in_the_job_as_any_key_reads_it(world: World) -> None:
    job_id, message_id = _sent_as(world, "password_reset")
    feedback, _ = _service(world)
    link = "https://auth.example.com/reset/u1?token=s3cret-reset-token&lang=en#now"
    click = ses("Click", message_id, job_id, link=link, ipAddress="192.0.2.9", userAgent="LinkScanner/1.0")
    assert feedback.apply(click) is Applied.APPLIED
    seen = _seen(world, job_id)
    assert "token=" not in seen and "s3cret-reset-token" not in seen, seen


def test_a_click_records_the_links_scheme_host_and_path_never_its_query_or_fragment(world: World) -> None:
    job_id, message_id = _sent_as(world, "new_film")
    feedback, _ = _service(world)
    link = "https://reader:pw@watch.example.com:8443/films/42?utm_source=mail&token=abc#play"
    assert feedback.apply(ses("Click", message_id, job_id, link=link, ipAddress="192.0.2.1")) is Applied.APPLIED
    (click,) = [h for h in world.store.jobs[job_id]["history"] if h.detail.get("feedback") == "Click"]
    assert click.detail["link"] == "https://watch.example.com:8443/films/42"


def test_the_unsubscribe_link_a_scanner_clicks_in_the_body_is_recorded_without_its_token(world: World) -> None:
    job_id, message_id = _sent_as(world, "new_film")
    (_, _, headers) = world.email.sent[-1]
    link = headers["List-Unsubscribe"].strip("<>")
    feedback, _ = _service(world)
    assert feedback.apply(ses("Click", message_id, job_id, link=link, ipAddress="192.0.2.1")) is Applied.APPLIED
    token = link.rsplit("/", 1)[1]
    assert token not in _seen(world, job_id)


def test_opens_and_clicks_are_counted_and_the_history_keeps_the_first_of_each(world: World) -> None:
    job_id, message_id = _sent_as(world, "new_film")
    feedback, _ = _service(world)
    before = len(world.store.jobs[job_id]["history"])
    for n in range(1000):  # a recipient reloading the email: each pixel load is a new Open
        at = f"2026-11-24T12:{n // 60 % 60:02d}:{n % 60:02d}.{n:03d}Z"
        assert feedback.apply(ses("Open", message_id, job_id, timestamp=at, ipAddress="192.0.2.1")) is Applied.APPLIED
    for n in range(3):
        click = ses("Click", message_id, job_id, timestamp=f"2026-11-24T13:00:0{n}.000Z", link="https://x.io/a")
        assert feedback.apply(click) is Applied.APPLIED
        assert feedback.apply(click) is Applied.DUPLICATE  # SNS delivered it twice: counted once
    view = json.loads(_seen(world, job_id))
    assert (view.get("opens"), view.get("clicks")) == (1000, 3)
    added = [h["detail"]["feedback"] for h in view["history"][before:]]
    assert added == ["Open", "Click"], added


def test_a_job_recorded_before_the_change_shows_no_link_a_key_could_use() -> None:
    from notify.models import Channel
    from notify.records import JobRecord, Transition
    from notify.services.status import job_view

    def old(event_type: str, detail: dict[str, Any]) -> JobRecord:  # as items written until now hold them
        entry = Transition(Status.SENT, "2026-11-24T12:00:05.000Z", 0, detail=detail)
        return JobRecord("j", "e", event_type, "u1", Channel.EMAIL, Status.SENT, 0, "", "", None, [entry])

    unsubscribe = {"provider_message_id": "m", "list_unsubscribe": "https://x.io/u/eyJ1Ijoi.c2ln"}
    click = {"feedback": "Click", "message_id": "m", "link": "https://auth.example.com/reset/u1?token=s3cret#x"}
    assert job_view(old("new_film", unsubscribe))["history"][0]["detail"]["list_unsubscribe"] is True
    assert job_view(old("new_film", click))["history"][0]["detail"]["link"] == "https://auth.example.com/reset/u1"
    assert "link" not in job_view(old("password_reset", click))["history"][0]["detail"]


# -- issue 24: status webhooks of what SES reported --------------------------------------------------------------


def _with_webhooks(world: World, *events: str) -> tuple[FeedbackService, MemoryQueue]:
    """The service with an emitter over one enabled endpoint per ``events`` entry (none: no endpoint)."""
    store, queue = MemoryWebhookStore(), MemoryQueue()
    for n, subscribed in enumerate(events):
        store.put(WebhookEndpoint(f"wh_{n}", "https://hooks.example.com/", (subscribed,), ("whsec_x",), "t", "t"))
    emitter = WebhookEmitter(store, queue, lambda: world.now)
    return FeedbackService(world.store, MemoryPreferences(), lambda: world.now, emitter), queue


def _messages(queue: MemoryQueue) -> list[WebhookTask]:
    return [task for task, _ in queue.sent if isinstance(task, WebhookTask)]


def test_a_delivery_emits_notification_delivered_once_and_a_redelivery_the_same_message(world: World) -> None:
    job_id, message_id = _sent(world)
    feedback, queue = _with_webhooks(world, "*")
    event = ses("Delivery", message_id, job_id, recipients=["u1@example.com"])
    assert feedback.apply(event) is Applied.APPLIED
    (delivered,) = _messages(queue)
    assert delivered.message_type == "notification.delivered" and delivered.subject == f"{job_id}#DELIVERED"
    job = world.store.get_job(job_id)
    assert job is not None
    assert delivered.data == {
        "job_id": job_id,
        "event_id": job.event_id,
        "event_type": "new_film",
        "user_id": "u1",
        "channel": "email",
        "status": "DELIVERED",
        "provider_message_id": message_id,
    }
    # SNS delivering it again emits it again under the same id (the first emission may be the one that failed).
    assert feedback.apply(event) is Applied.DUPLICATE
    assert [m.message_id for m in _messages(queue)] == [delivered.message_id] * 2
    # Another Delivery event for the email moves nothing, so it emits nothing.
    assert feedback.apply(ses("Delivery", message_id, job_id, timestamp="2026-11-24T12:09:00.000Z")) is Applied.APPLIED
    assert len(_messages(queue)) == 2


def test_bounces_and_complaints_emit_their_status_with_sess_reason_and_a_transient_bounce_nothing(
    world: World,
) -> None:
    job_id, message_id = _sent(world)
    feedback, queue = _with_webhooks(world, "notification.bounced", "notification.complained")
    soft = ses("Bounce", message_id, job_id, bounceType="Transient", bounceSubType="MailboxFull", feedbackId="f-1")
    assert feedback.apply(soft) is Applied.APPLIED
    assert feedback.apply(soft) is Applied.DUPLICATE
    assert _messages(queue) == []
    hard = ses("Bounce", message_id, job_id, bounceType="Permanent", bounceSubType="NoEmail", feedbackId="f-2")
    assert feedback.apply(hard) is Applied.APPLIED
    (bounced,) = _messages(queue)
    assert (bounced.webhook_id, bounced.message_type) == ("wh_0", "notification.bounced")
    assert (bounced.data["status"], bounced.data["reason"]) == ("BOUNCED", "NoEmail")
    other_job, other_message = _sent_as(world, "new_film")
    complaint = ses("Complaint", other_message, other_job, feedbackId="c-1", complaintFeedbackType="abuse")
    assert feedback.apply(complaint) is Applied.APPLIED
    complained = _messages(queue)[-1]
    assert (complained.webhook_id, complained.message_type) == ("wh_1", "notification.complained")
    assert complained.data["reason"] == "abuse"


def test_the_first_open_emits_notification_opened_and_later_ones_nothing(world: World) -> None:
    job_id, message_id = _sent_as(world, "new_film")
    feedback, queue = _with_webhooks(world, "*")
    first = ses("Open", message_id, job_id, ipAddress="192.0.2.1")
    later = ses("Open", message_id, job_id, timestamp="2026-11-24T12:30:00.000Z", ipAddress="192.0.2.1")
    assert feedback.apply(first) is Applied.APPLIED
    assert feedback.apply(later) is Applied.APPLIED  # COUNTED
    (opened,) = _messages(queue)
    assert opened.message_type == "notification.opened" and opened.subject == f"{job_id}#opened"
    assert opened.data["provider_message_id"] == message_id and "status" not in opened.data
    assert feedback.apply(later) is Applied.DUPLICATE  # a redelivered later open: still nothing
    assert len(_messages(queue)) == 1
    assert feedback.apply(first) is Applied.DUPLICATE  # the first one's redelivery: the same message again
    assert [m.message_id for m in _messages(queue)] == [opened.message_id] * 2
    click = ses("Click", message_id, job_id, link="https://x.io/a")
    assert feedback.apply(click) is Applied.APPLIED
    assert _messages(queue)[-1].message_type == "notification.clicked"


def test_a_queue_that_refuses_the_messages_fails_the_event_and_its_retry_emits_them(world: World) -> None:
    job_id, message_id = _sent(world)
    feedback, queue = _with_webhooks(world, "*")
    event = ses("Delivery", message_id, job_id)
    queue.fail = True
    with pytest.raises(StoreUnavailable):
        feedback.apply(event)
    assert world.store.jobs[job_id]["status"] is Status.DELIVERED and _messages(queue) == []
    queue.fail = False
    assert feedback.apply(event) is Applied.DUPLICATE  # Lambda's retry of the invocation
    assert [m.message_type for m in _messages(queue)] == ["notification.delivered"]
    opened = ses("Open", message_id, job_id)
    queue.fail = True
    with pytest.raises(StoreUnavailable):
        feedback.apply(opened)
    queue.fail = False
    assert feedback.apply(opened) is Applied.DUPLICATE
    assert [m.message_type for m in _messages(queue)][-1] == "notification.opened"


def test_with_no_endpoint_subscribed_nothing_reaches_the_queue(world: World) -> None:
    job_id, message_id = _sent(world)
    feedback, queue = _with_webhooks(world, "inbox.read")
    queue.fail = True  # any call would raise
    assert feedback.apply(ses("Delivery", message_id, job_id)) is Applied.APPLIED
    assert feedback.apply(ses("Open", message_id, job_id)) is Applied.APPLIED
    nobody, _ = _with_webhooks(world)
    assert nobody.apply(ses("Click", message_id, job_id, link="https://x.io/a")) is Applied.APPLIED
    assert queue.sent == []
