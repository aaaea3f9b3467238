"""The local stack's demo webhook receiver (issue 24, item 6) over TCP, fed by the service's own sender and signer:
signatures verified (a rotation's two included), a wrong one refused, a repeated webhook-id counted once, faults
injected on demand, and what it received listed, escaped."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest
from notify.adapters.webhook_http import HttpWebhookSender
from notify.records import WebhookOutcome
from notify.webhooks import body, check_url, headers, new_secret

from local.webhook_receiver import Counts, WebhookReceiver


@pytest.fixture()
def receiver() -> Iterator[WebhookReceiver]:
    served = WebhookReceiver(port=0).start()
    yield served
    served.stop()


@pytest.fixture(scope="module")
def sender() -> Iterator[HttpWebhookSender]:
    built = HttpWebhookSender.build(timeout_seconds=2)
    yield built
    built.close()


def _post(
    sender: HttpWebhookSender, receiver: WebhookReceiver, secrets: list[str], msg_id: str, user_id: str = "u-1"
) -> WebhookOutcome:
    now = datetime.now(UTC)
    payload = body("notification.delivered", now, {"job_id": "j-1", "user_id": user_id, "status": "DELIVERED"})
    target = check_url(f"{receiver.url}/hooks", allow_http_loopback=True)
    return sender.post(target, "127.0.0.1", headers(secrets, msg_id, now, payload), payload).outcome


def test_signed_messages_verify_and_a_repeated_id_counts_once(
    receiver: WebhookReceiver, sender: HttpWebhookSender
) -> None:
    old, new = new_secret(), new_secret()
    answer = httpx.post(f"{receiver.url}/_secrets", json={"secret": old})
    assert answer.status_code == 204
    assert httpx.post(f"{receiver.url}/_secrets", json={"secret": "nope"}).status_code == 400

    assert _post(sender, receiver, [old], "msg_a") == WebhookOutcome.DELIVERED
    assert _post(sender, receiver, [new, old], "msg_a") == WebhookOutcome.DELIVERED  # a rotation: two signatures
    assert _post(sender, receiver, [new], "msg_b") == WebhookOutcome.RETRY  # signed with a secret it does not know

    assert receiver.counts() == Counts(valid=2, unique=1, repeats=1, invalid=1)
    snapshot = httpx.get(f"{receiver.url}/messages.json").json()
    newest, repeat, first = snapshot["messages"]
    assert (first["id"], first["type"], first["valid"], first["repeat"]) == (
        "msg_a",
        "notification.delivered",
        True,
        False,
    )
    assert first["data"] == {"job_id": "j-1", "user_id": "u-1", "status": "DELIVERED"}
    assert (repeat["valid"], repeat["repeat"]) == (True, True)
    assert (newest["id"], newest["valid"], newest["error"]) == ("msg_b", False, "No matching signature found")


def test_injected_failures_are_answered_and_not_counted_as_received(
    receiver: WebhookReceiver, sender: HttpWebhookSender
) -> None:
    secret = new_secret()
    receiver.add_secret(secret)
    receiver.fail_next(2, 503)
    outcomes = [_post(sender, receiver, [secret], "msg_c") for _ in range(3)]
    assert outcomes == [WebhookOutcome.RETRY, WebhookOutcome.RETRY, WebhookOutcome.DELIVERED]
    assert receiver.counts() == Counts(valid=1, unique=1, injected_failures=2)

    receiver.fail_rate(0.5, seed=7)
    outcomes = [_post(sender, receiver, [secret], f"msg_{n}") for n in range(20)]
    assert 0 < outcomes.count(WebhookOutcome.RETRY) < 20
    assert receiver.counts().injected_failures == 2 + outcomes.count(WebhookOutcome.RETRY)


def test_the_page_escapes_what_it_shows(receiver: WebhookReceiver, sender: HttpWebhookSender) -> None:
    secret = new_secret()
    receiver.add_secret(secret)
    _post(sender, receiver, [secret], "msg_<b>", user_id="<script>alert(1)</script>")
    page = httpx.get(receiver.url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "msg_&lt;b&gt;" in page.text
    assert "<script>" not in page.text and "http" not in page.text.replace('http-equiv="refresh"', "")


def test_a_secret_source_teaches_the_receiver_an_endpoint_registered_after_it_started(
    sender: HttpWebhookSender,
) -> None:
    registered: list[str] = []
    reads: list[int] = []

    def source() -> list[str]:
        reads.append(1)
        return list(registered)

    receiver = WebhookReceiver(port=0, secret_source=source).start()
    try:
        secret = new_secret()
        assert _post(sender, receiver, [secret], "msg_a") == WebhookOutcome.RETRY  # not registered yet
        registered.append(secret)
        assert _post(sender, receiver, [secret], "msg_b") == WebhookOutcome.DELIVERED  # learnt on the miss
        assert _post(sender, receiver, [secret], "msg_c") == WebhookOutcome.DELIVERED
        assert len(reads) == 2  # known secrets verify without asking again
        assert receiver.counts() == Counts(valid=2, unique=2, invalid=1)
    finally:
        receiver.stop()


def test_the_first_messages_of_a_new_endpoint_arriving_together_all_verify() -> None:
    secret = new_secret()

    def slow_source() -> list[str]:
        time.sleep(0.05)  # a read of moto: every thread of the first batch asks before any has learnt it
        return [secret]

    receiver = WebhookReceiver(port=0, secret_source=slow_source)
    now = datetime.now(UTC)

    def one(n: int) -> int:
        payload = body("notification.sent", now, {"job_id": f"j-{n}"})
        return receiver.receive(headers([secret], f"msg_{n}", now, payload), payload)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(one, range(32)))
    assert answers == [204] * 32
    assert receiver.counts() == Counts(valid=32, unique=32)
