"""Status webhooks' core (issue 24): Standard Webhooks messages checked with the standardwebhooks library's own
verifier (also during a rotation), the retry schedule, and the destinations refused whatever form they take."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from notify.webhooks import (
    ALL,
    LAST_STEP,
    SCHEDULE,
    TEST_TYPE,
    Resolver,
    Target,
    UnsafeDestination,
    body,
    check_events,
    check_url,
    headers,
    message_id,
    new_secret,
    next_delay,
    resolve_public,
    subscribed,
    system_resolver,
)
from standardwebhooks import Webhook, WebhookVerificationError

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _now() -> datetime:
    """The time to sign at for the library's verifier, which refuses timestamps 5 minutes from its own clock (a
    module-level time would be stale by the time a full suite reaches these tests)."""
    return datetime.now(UTC).replace(microsecond=0)


JOB = {
    "job_id": "j-1",
    "event_id": "e-1",
    "event_type": "password_reset",
    "user_id": "u-1",
    "channel": "email",
    "status": "SENT",
    "provider_message_id": "ses-1",
    "payload": {"reset_url": "https://example.com/reset/SECRET"},
    "unsubscribe_url": "https://n.example.com/u/TOKEN",
    "subject": "Reset your password",
}


def test_a_signed_message_verifies_with_the_standard_webhooks_library() -> None:
    secret, now = new_secret(), _now()
    assert secret.startswith("whsec_")
    payload = body("notification.sent", now, JOB)
    sent = headers([secret], "msg_1", now, payload)
    assert sent["webhook-id"] == "msg_1" and sent["webhook-timestamp"] == str(int(now.timestamp()))
    assert Webhook(secret).verify(payload, sent)["data"]["job_id"] == "j-1"
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(payload, sent)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(payload.replace(b"SENT", b"SENT "), sent)


def test_during_a_rotation_both_secrets_sign_and_either_verifies() -> None:
    old, new, now = new_secret(), new_secret(), _now()
    payload = body("notification.delivered", now, JOB)
    sent = headers([new, old], "msg_2", now, payload)
    assert len(sent["webhook-signature"].split(" ")) == 2
    assert all(s.startswith("v1,") for s in sent["webhook-signature"].split(" "))
    for secret in (old, new):
        Webhook(secret).verify(payload, sent)


def test_the_body_holds_identifiers_and_the_outcome_never_payload_content_or_tokens() -> None:
    document = json.loads(body("notification.sent", NOW, JOB))
    assert set(document) == {"type", "timestamp", "data"}
    assert document["data"] == {
        "job_id": "j-1",
        "event_id": "e-1",
        "event_type": "password_reset",
        "user_id": "u-1",
        "channel": "email",
        "status": "SENT",
        "provider_message_id": "ses-1",
    }
    assert b"SECRET" not in body("notification.sent", NOW, JOB) and b"TOKEN" not in body("x", NOW, JOB)


def test_a_messages_id_is_the_same_on_every_retry_and_differs_per_endpoint_type_and_subject() -> None:
    one = message_id("wh-1", "notification.sent", "j-1#SENT")
    assert one == message_id("wh-1", "notification.sent", "j-1#SENT") and one.startswith("msg_")
    assert (
        len(
            {
                one,
                message_id("wh-2", "notification.sent", "j-1#SENT"),
                message_id("wh-1", "notification.delivered", "j-1#SENT"),
                message_id("wh-1", "notification.sent", "j-2#SENT"),
            }
        )
        == 4
    )


def test_subscriptions_by_type_or_all_and_a_test_always_goes() -> None:
    assert subscribed(["notification.sent"], "notification.sent")
    assert not subscribed(["notification.sent"], "notification.bounced")
    assert subscribed([ALL], "inbox.read") and subscribed([], TEST_TYPE)
    assert check_events(["notification.sent", "notification.sent", "inbox.read"]) == ["inbox.read", "notification.sent"]
    assert check_events(["*", "inbox.read"]) == ["*"]
    with pytest.raises(ValueError, match="unknown event types: notification.sen"):
        check_events(["notification.sen"])
    with pytest.raises(ValueError, match="at least one"):
        check_events([])


def test_retries_follow_the_schedule_then_ten_hours_until_a_day_has_passed() -> None:
    first = NOW
    at, delays = first, []
    for attempt in range(20):
        delay = next_delay(attempt, first, at)
        if delay is None:
            break
        delays.append(delay)
        at += delay
    assert delays[: len(SCHEDULE)] == list(SCHEDULE)
    assert all(d == LAST_STEP for d in delays[len(SCHEDULE) :])
    assert at - first <= timedelta(hours=24) < at - first + LAST_STEP
    assert [d.total_seconds() for d in SCHEDULE] == [5, 300, 1800, 7200, 18000, 36000]


# -- destinations --------------------------------------------------------------------------------------------------


def _resolving(*addresses: str) -> Resolver:
    return lambda host, port: list(addresses)


def test_only_https_urls_without_credentials_and_http_only_to_the_local_stacks_loopback() -> None:
    assert check_url("https://hooks.example.com/in?x=1") == Target("https", "hooks.example.com", 443, "/in?x=1")
    for url, message in [
        ("http://hooks.example.com/", "https"),
        ("ftp://hooks.example.com/", "https"),
        ("https://user:pw@hooks.example.com/", "no user or password"),
        ("https://hooks.example.com/#x", "fragment"),
        ("https://hooks.example.com:99999/", "port"),
        ("https:///path", "names a host"),
    ]:
        with pytest.raises(UnsafeDestination, match=message):
            check_url(url)
    with pytest.raises(UnsafeDestination):
        check_url("http://127.0.0.1:3003/")
    assert check_url("http://127.0.0.1:3003/in", allow_http_loopback=True).port == 3003
    with pytest.raises(UnsafeDestination):
        check_url("http://hooks.example.com/", allow_http_loopback=True)


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "127.0.0.1",
        "0.0.0.0",
        "169.254.169.254",
        "100.64.0.1",
        "224.0.0.1",
        "192.0.2.1",
        "::1",
        "fe80::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::",
        "64:ff9b::a00:5",  # NAT64 of 10.0.0.5
        "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata service
        "ff02::1",
        "::",
    ],
)
def test_a_name_resolving_to_an_address_that_is_not_public_is_refused(address: str) -> None:
    with pytest.raises(UnsafeDestination, match="not a public address"):
        resolve_public(check_url("https://hooks.example.com/"), _resolving("93.184.216.34", address))


def test_a_public_address_is_the_one_to_connect_to() -> None:
    target = check_url("https://hooks.example.com/")
    assert resolve_public(target, _resolving("93.184.216.34", "2606:2800:220:1::1")) == "93.184.216.34"
    assert resolve_public(target, _resolving("64:ff9b::5db8:d822")) == "64:ff9b::5db8:d822"  # NAT64 of 93.184.216.34


@pytest.mark.parametrize("host", ["2130706433", "0177.0.0.1", "0x7f.1", "127.1", "[::ffff:127.0.0.1]", "[::1]"])
def test_loopback_in_decimal_octal_hex_short_and_ipv6_forms_is_refused_as_the_system_reads_it(host: str) -> None:
    with pytest.raises(UnsafeDestination, match="not a public address"):
        resolve_public(check_url(f"https://{host}/"), system_resolver)


def test_the_local_stack_may_call_its_loopback_receiver_and_nothing_private() -> None:
    local = check_url("http://127.0.0.1:3003/", allow_http_loopback=True)
    assert resolve_public(local, system_resolver, allow_loopback=True) == "127.0.0.1"
    with pytest.raises(UnsafeDestination):
        resolve_public(check_url("https://hooks.example.com/"), _resolving("10.0.0.1"), allow_loopback=True)


def test_a_name_that_does_not_resolve_is_refused() -> None:
    def fails(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(UnsafeDestination, match="does not resolve"):
        resolve_public(check_url("https://nowhere.invalid/"), fails)
