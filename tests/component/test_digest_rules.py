"""Digest rules in TemplatesTable (DynamoDigestRules) against moto (issue 23)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from notify.adapters.dynamodb.digest_rules import DynamoDigestRules
from notify.adapters.dynamodb.templates import DynamoTemplateStore
from notify.digests import DigestRule, StoredDigestRule
from notify.models import Channel

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
