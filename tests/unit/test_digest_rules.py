"""The API's digest rules (``notify.services.digest_rules``): one per event type, account events refused."""

from __future__ import annotations

from typing import Any

import pytest
from notify.errors import FieldError, NotFound, ValidationFailed
from notify.models import Channel
from notify.services.digest_rules import DigestRuleBody, DigestRuleService, digest_event_type
from pydantic import ValidationError

from .fakes import T0, MemoryDigestRules

LIKES = {"channels": ["email", "push"], "window": {"seconds": 20}, "key": ["review_id"], "max_items": 50}


def body(**changes: Any) -> DigestRuleBody:
    return DigestRuleBody.model_validate({**LIKES, **changes})


def service(rules: MemoryDigestRules | None = None) -> DigestRuleService:
    return DigestRuleService(rules if rules is not None else MemoryDigestRules(), lambda: T0)


def refused(call: Any) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        call()
    assert all(isinstance(error, FieldError) for error in caught.value.errors)
    return {error.loc: error.msg for error in caught.value.errors}


def test_a_rule_is_one_per_event_type_created_then_replaced_listed_read_and_deleted() -> None:
    rules = MemoryDigestRules()
    digests = service(rules)
    assert digests.put("review_liked", body()) == {
        "event_type": "review_liked",
        "channels": ["email", "push"],
        "window": {"seconds": 20},
        "key": ["review_id"],
        "max_items": 50,
        "updated_at": "2026-11-24T12:00:00.000Z",
    }
    digests.put("review_liked", body(channels=["email"], max_items=10))  # replaces review_liked's rule
    digests.put("new_episode", body(window={"cron": "0 9 * * *"}, key=[]))
    assert [(r["event_type"], r["channels"], r["max_items"]) for r in digests.list()] == [
        ("new_episode", ["email", "push"], 50),
        ("review_liked", ["email"], 10),
    ]
    assert rules.rule("review_liked", Channel.EMAIL) is not None and rules.rule("review_liked", Channel.PUSH) is None
    assert digests.get("new_episode")["window"] == {"cron": "0 9 * * *", "timezone": None}
    digests.delete("new_episode")
    with pytest.raises(NotFound, match="no digest rule for new_episode"):
        digests.get("new_episode")
    with pytest.raises(NotFound, match="no digest rule for new_episode"):
        digests.delete("new_episode")
    assert [r["event_type"] for r in digests.list()] == ["review_liked"]


@pytest.mark.parametrize(
    ("window", "shown"),
    [
        ({"seconds": 10}, {"seconds": 10}),
        ({"seconds": 604800}, {"seconds": 604800}),
        ({"cron": "0 9 * * 1"}, {"cron": "0 9 * * 1", "timezone": None}),
        ({"cron": "30 18 * * *", "timezone": "Europe/Berlin"}, {"cron": "30 18 * * *", "timezone": "Europe/Berlin"}),
    ],
)
def test_a_window_is_seconds_from_the_first_member_or_a_cron_with_an_optional_zone(
    window: dict[str, Any], shown: dict[str, Any]
) -> None:
    assert service().put("review_liked", body(window=window))["window"] == shown


@pytest.mark.parametrize(
    ("changes", "loc", "message"),
    [
        ({"window": {"seconds": 9}}, "window.seconds", "greater than or equal to 10"),
        ({"window": {"seconds": 604801}}, "window.seconds", "less than or equal to 604800"),
        ({"window": {"seconds": 60, "cron": "0 9 * * *"}}, "window", "not both"),
        ({"window": {}}, "window", 'either {"seconds": n}'),
        ({"window": {"cron": "9 o'clock"}}, "window.cron", "not a valid cron"),
        ({"window": {"cron": "0 9 * * *", "timezone": "Mars/Olympus"}}, "window.timezone", "Mars/Olympus"),
        ({"channels": []}, "channels", "at least 1 item"),
        ({"channels": ["fax"]}, "channels.0", "'email', 'push' or 'websocket'"),
        ({"key": ["review id"]}, "key.0", "not a payload field"),
        ({"max_items": 1001}, "max_items", "less than or equal to 1000"),
        ({"event_type": "review_liked"}, "event_type", "Extra inputs"),
    ],
)
def test_a_bad_body_is_refused_at_the_field_that_is_wrong(changes: dict[str, Any], loc: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        body(**changes)
    found = {".".join(str(p) for p in err["loc"]): err["msg"] for err in caught.value.errors()}
    assert message in found[loc], found


def test_key_fields_must_be_in_the_event_types_payload() -> None:
    rules = MemoryDigestRules()
    errors = refused(lambda: service(rules).put("review_liked", body(key=["review_id", "reviewer"])))
    assert list(errors) == ["key"] and "reviewer: not in review_liked's payload" in errors["key"]
    assert rules.rules == {}
    # The same field is in one type's payload and not in another's.
    assert "not in new_episode's payload" in refused(lambda: service().put("new_episode", body()))["key"]


@pytest.mark.parametrize(
    ("event_type", "message"),
    [("password_reset", "account event"), ("user_registered", "account event"), ("review_loved", "unknown event type")],
)
def test_account_and_unknown_event_types_take_no_rule_a_field_error_on_event_type(
    event_type: str, message: str
) -> None:
    digests = service()
    for call in (
        lambda: digests.put(event_type, body(key=[])),
        lambda: digests.get(event_type),
        lambda: digests.delete(event_type),
    ):
        errors = refused(call)
        assert list(errors) == ["event_type"] and message in errors["event_type"], errors
    assert digests.list() == []


def test_the_unknown_types_message_lists_the_types_that_take_a_rule_and_no_account_type() -> None:
    with pytest.raises(ValueError, match="unknown event type 'x'") as caught:
        digest_event_type("x")
    assert "review_liked" in str(caught.value) and "password_reset" not in str(caught.value)
