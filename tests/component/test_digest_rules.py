"""Digest rules in TemplatesTable (DynamoDigestRules) and through the real API handler, against moto (issue 23)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from notify.adapters.dynamodb.api_keys import DynamoApiKeyStore
from notify.adapters.dynamodb.digest_rules import DynamoDigestRules
from notify.adapters.dynamodb.templates import DynamoTemplateStore
from notify.digests import DigestRule, StoredDigestRule
from notify.models import Channel
from notify.services.access import hash_key

from .helpers import call_api

pytestmark = pytest.mark.usefixtures("local_stack")
LIKES = {"channels": ["email"], "window": {"seconds": 20}, "key": ["review_id"], "max_items": 50}


def _stored(event_type: str = "review_liked", **changes: object) -> StoredDigestRule:
    rule = DigestRule.model_validate({"event_type": event_type, **LIKES, **changes})
    return StoredDigestRule(rule, "2026-11-24T12:00:00.000Z")


@pytest.fixture
def rules(stack_env: dict[str, str]) -> Iterator[DynamoDigestRules]:
    """The API's view (no cache); no rule (nor a row written by hand) outlives its test, so no other test's jobs
    are digested."""
    client, table = boto3.client("dynamodb"), stack_env["TEMPLATES_TABLE"]
    yield DynamoDigestRules(client, table, cache_seconds=0)
    left = client.query(
        TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "DIGEST"}}
    )
    for item in left["Items"]:
        client.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})


def test_a_rule_is_put_replaced_read_by_type_and_channel_and_deleted(
    rules: DynamoDigestRules, stack_env: dict[str, str]
) -> None:
    cron = {"cron": "0 9 * * *", "timezone": "Europe/Berlin"}
    rules.put(_stored())
    rules.put(_stored(channels=["email", "push"], max_items=10))  # replaces review_liked's rule
    rules.put(_stored("new_episode", window=cron, key=[]))
    assert [(s.rule.event_type, s.view()) for s in rules.all()] == [
        ("new_episode", _stored("new_episode", window=cron, key=[]).view()),
        ("review_liked", _stored(channels=["email", "push"], max_items=10).view()),
    ]
    assert rules.rule("review_liked", Channel.PUSH) == _stored(channels=["email", "push"], max_items=10).rule
    assert rules.rule("new_episode", Channel.PUSH) is None  # a channel the rule does not cover
    assert rules.rule("new_film", Channel.EMAIL) is None
    item = boto3.client("dynamodb").get_item(
        TableName=stack_env["TEMPLATES_TABLE"], Key={"pk": {"S": "DIGEST"}, "sk": {"S": "new_episode"}}
    )["Item"]
    assert item["window"] == {"M": {"cron": {"S": "0 9 * * *"}, "timezone": {"S": "Europe/Berlin"}}}
    assert (item["kind"], item["key"], item["max_items"]) == ({"S": "digest_rule"}, {"L": []}, {"N": "50"})
    assert rules.delete("new_episode") is True
    assert rules.delete("new_episode") is False
    assert [s.rule.event_type for s in rules.all()] == ["review_liked"]
    # The rules live beside the templates, which a listing of the templates does not take for templates.
    assert all(
        t.template_id.count(".") >= 2
        for t in DynamoTemplateStore(boto3.client("dynamodb"), stack_env["TEMPLATES_TABLE"], 0).keys()
    )


def test_the_workers_read_is_cached_and_one_query_answers_every_type(
    rules: DynamoDigestRules, stack_env: dict[str, str]
) -> None:
    worker = DynamoDigestRules(boto3.client("dynamodb"), stack_env["TEMPLATES_TABLE"], cache_seconds=30)
    assert worker.rule("review_liked", Channel.EMAIL) is None  # read (and cached) before any rule
    rules.put(_stored())
    assert worker.rule("review_liked", Channel.EMAIL) is None  # within the cache period: the read before the put
    assert rules.rule("review_liked", Channel.EMAIL) == _stored().rule  # the API's read has no cache
    fresh = DynamoDigestRules(boto3.client("dynamodb"), stack_env["TEMPLATES_TABLE"], cache_seconds=30)
    assert fresh.rule("review_liked", Channel.EMAIL) == _stored().rule


def test_a_rule_row_this_version_cannot_read_is_skipped_and_the_others_still_apply(
    rules: DynamoDigestRules, stack_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    rules.put(_stored())
    client = boto3.client("dynamodb")
    bad: dict[str, Any] = {
        "pk": {"S": "DIGEST"},
        "sk": {"S": "password_reset"},
        "event_type": {"S": "password_reset"},  # by hand: an account event, and no window
        "channels": {"L": [{"S": "email"}]},
        "updated_at": {"S": "2026-11-24T12:00:00.000Z"},
    }
    client.put_item(TableName=stack_env["TEMPLATES_TABLE"], Item=bad)
    assert [s.rule.event_type for s in rules.all()] == ["review_liked"]
    assert rules.rule("review_liked", Channel.EMAIL) == _stored().rule
    assert rules.rule("password_reset", Channel.EMAIL) is None
    assert "digest rule 'password_reset' cannot be read and is ignored" in caplog.text


# -- through the real API handler ----------------------------------------------------------------------------------

RULES = "/api/v1/digest-rules"


def _key(*scopes: str) -> str:
    key = f"digests-{uuid.uuid4().hex}"
    DynamoApiKeyStore(boto3.client("dynamodb"), os.environ["API_KEYS_TABLE"]).put(
        hash_key(key), "t", list(scopes), "now"
    )
    return key


@pytest.mark.usefixtures("fresh_services", "rules")
def test_a_rule_is_put_replaced_listed_read_and_deleted_through_the_api() -> None:
    status, stored = call_api("PUT", f"{RULES}/review_liked", LIKES)
    assert status == 200 and {k: v for k, v in stored.items() if k != "updated_at"} == {
        "event_type": "review_liked",
        **LIKES,
    }
    morning = {"channels": ["push", "email"], "window": {"cron": "0 9 * * *"}}
    status, replaced = call_api("PUT", f"{RULES}/review_liked", morning)
    assert status == 200 and (replaced["channels"], replaced["window"], replaced["key"], replaced["max_items"]) == (
        ["email", "push"],
        {"cron": "0 9 * * *", "timezone": None},
        [],
        100,
    )
    assert call_api("PUT", f"{RULES}/new_film", {**LIKES, "key": ["film_id"]})[0] == 200
    status, listed = call_api("GET", RULES)
    assert status == 200 and [r["event_type"] for r in listed["items"]] == ["new_film", "review_liked"]
    assert call_api("GET", f"{RULES}/review_liked") == (200, listed["items"][1])
    assert call_api("GET", f"{RULES}/new_episode")[0] == 404
    assert call_api("DELETE", f"{RULES}/review_liked") == (204, None)
    assert call_api("DELETE", f"{RULES}/review_liked")[0] == 404
    assert [r["event_type"] for r in call_api("GET", RULES)[1]["items"]] == ["new_film"]


@pytest.mark.usefixtures("fresh_services", "rules")
@pytest.mark.parametrize(
    ("path", "body", "loc", "message"),
    [
        (f"{RULES}/password_reset", LIKES, "path.event_type", "account event"),
        (f"{RULES}/review_loved", LIKES, "path.event_type", "unknown event type 'review_loved'"),
        (f"{RULES}/review_liked", {**LIKES, "key": ["reviewer"]}, "key", "not in review_liked's payload"),
        (f"{RULES}/review_liked", {**LIKES, "key": ["1st"]}, "key.0", "not a payload field"),
        (f"{RULES}/review_liked", {**LIKES, "window": {"seconds": 5}}, "window.seconds", "greater than or equal to 10"),
        (f"{RULES}/review_liked", {**LIKES, "window": {"cron": "soon"}}, "window.cron", "not a valid cron"),
        (f"{RULES}/review_liked", {**LIKES, "window": {"seconds": 60, "cron": "0 9 * * *"}}, "window", "not both"),
        (f"{RULES}/review_liked", {**LIKES, "channels": []}, "channels", "at least 1 item"),
        (f"{RULES}/review_liked", {**LIKES, "max_items": 1001}, "max_items", "less than or equal to 1000"),
        (f"{RULES}/review_liked", {**LIKES, "event_type": "new_film"}, "event_type", "Extra inputs"),
    ],
)
def test_a_bad_rule_is_a_field_level_422_and_nothing_is_stored(
    path: str, body: dict[str, Any], loc: str, message: str
) -> None:
    status, error = call_api("PUT", path, body)
    assert status == 422, error
    fields = {f["loc"]: f["msg"] for f in error["error"]["fields"]}
    assert message in fields[loc], fields
    assert call_api("GET", RULES)[1]["items"] == []


@pytest.mark.usefixtures("fresh_services", "rules")
def test_reading_or_deleting_an_account_events_rule_is_a_422_on_the_event_type() -> None:
    for method in ("GET", "DELETE"):
        status, error = call_api(method, f"{RULES}/user_registered")
        assert status == 422 and error["error"]["fields"][0]["loc"] == "path.event_type", error


@pytest.mark.usefixtures("fresh_services", "rules")
def test_rules_are_read_with_templates_read_and_changed_with_templates_write() -> None:
    reader, writer = _key("templates:read"), _key("templates:write")
    assert call_api("GET", RULES, key=reader)[0] == 200
    assert call_api("PUT", f"{RULES}/review_liked", LIKES, key=reader)[0] == 403
    assert call_api("PUT", f"{RULES}/review_liked", LIKES, key=writer)[0] == 200
    assert call_api("GET", f"{RULES}/review_liked", key=reader)[0] == 200
    assert call_api("DELETE", f"{RULES}/review_liked", key=reader)[0] == 403
    assert call_api("GET", RULES, key=_key("events:write"))[0] == 403
    assert call_api("GET", RULES, key=None)[0] == 401
