"""Throttle rules through the real API handler, and the worker applying them, against moto (issue 23)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from notify.adapters.dynamodb.api_keys import DynamoApiKeyStore
from notify.adapters.dynamodb.items import from_item
from notify.adapters.dynamodb.preferences import DynamoPreferenceStore
from notify.adapters.dynamodb.templates import DynamoTemplateStore
from notify.adapters.dynamodb.throttles import DynamoThrottleRules
from notify.models import Category, Channel
from notify.services.access import hash_key
from notify.services.templates import parse_template_id
from notify.throttles import ThrottleRule, ThrottleWindow

from local.auth_service import AuthService

from .helpers import call_api, job_for, job_status, kafka_batch, worker_outcomes

pytestmark = pytest.mark.usefixtures("local_stack", "purge_queues", "fresh_services")
RULES = "/api/v1/throttle-rules"
DAILY = {"channel": "email", "limit": 1, "period_seconds": 86400}


@pytest.fixture(autouse=True)
def no_rules_after() -> Iterator[None]:
    """Rules are the whole stack's: none outlives its test, so no other test's mail is throttled."""
    yield
    for rule in call_api("GET", RULES)[1]["items"]:
        call_api("DELETE", f"{RULES}/{rule['category']}?channel={rule['channel']}")


def _key(*scopes: str) -> str:
    key = f"throttles-{uuid.uuid4().hex}"
    DynamoApiKeyStore(boto3.client("dynamodb"), os.environ["API_KEYS_TABLE"]).put(
        hash_key(key), "t", list(scopes), "now"
    )
    return key


def test_a_rule_is_put_replaced_listed_read_and_deleted_per_category_and_channel() -> None:
    status, stored = call_api("PUT", f"{RULES}/marketing", DAILY)
    assert status == 200 and {k: stored[k] for k in ("category", "channel", "limit", "period_seconds")} == {
        "category": "marketing",
        **DAILY,
    }
    assert call_api("PUT", f"{RULES}/marketing", {**DAILY, "limit": 2})[0] == 200  # replaces marketing's email rule
    assert call_api("PUT", f"{RULES}/social", {"channel": "push", "limit": 5, "period_seconds": 3600})[0] == 200
    status, listed = call_api("GET", RULES)
    assert status == 200
    assert [(r["category"], r["channel"], r["limit"]) for r in listed["items"]] == [
        ("marketing", "email", 2),
        ("social", "push", 5),
    ]
    status, one = call_api("GET", f"{RULES}/marketing?channel=email")
    assert status == 200 and one == listed["items"][0]
    assert call_api("GET", f"{RULES}/marketing?channel=push")[0] == 404
    assert call_api("DELETE", f"{RULES}/marketing?channel=email") == (204, None)
    assert call_api("DELETE", f"{RULES}/marketing?channel=email")[0] == 404
    assert [r["category"] for r in call_api("GET", RULES)[1]["items"]] == ["social"]
    # The rules live beside the templates, which a listing of the templates does not take for templates.
    assert all(
        parse_template_id(t.template_id)
        for t in DynamoTemplateStore(boto3.client("dynamodb"), os.environ["TEMPLATES_TABLE"], 0).keys()
    )


@pytest.mark.parametrize(
    ("path", "body", "loc", "message"),
    [
        (f"{RULES}/account", DAILY, "path.category", "never throttled"),
        (f"{RULES}/promo", DAILY, "path.category", "unknown category 'promo'"),
        (f"{RULES}/marketing", {**DAILY, "limit": 0}, "limit", "greater than or equal to 1"),
        (f"{RULES}/marketing", {**DAILY, "period_seconds": 59}, "period_seconds", "greater than or equal to 60"),
        (f"{RULES}/marketing", {**DAILY, "channel": "fax"}, "channel", "'email', 'push' or 'websocket'"),
        (f"{RULES}/marketing", {**DAILY, "category": "social"}, "category", "Extra inputs"),
    ],
)
def test_a_bad_rule_is_a_field_level_422_and_nothing_is_stored(path: str, body: dict, loc: str, message: str) -> None:
    status, error = call_api("PUT", path, body)
    assert status == 422, error
    fields = {f["loc"]: f["msg"] for f in error["error"]["fields"]}
    assert message in fields[loc], fields
    assert call_api("GET", RULES)[1]["items"] == []


def test_reading_and_deleting_a_rule_name_its_channel() -> None:
    status, error = call_api("GET", f"{RULES}/marketing")
    assert status == 422 and error["error"]["fields"][0]["loc"] == "query.channel"
    status, error = call_api("DELETE", f"{RULES}/account?channel=email")
    assert status == 422 and error["error"]["fields"][0]["loc"] == "path.category"


def test_rules_are_read_with_templates_read_and_changed_with_templates_write() -> None:
    reader, writer = _key("templates:read"), _key("templates:write")
    assert call_api("GET", RULES, key=reader)[0] == 200
    assert call_api("PUT", f"{RULES}/marketing", DAILY, key=reader)[0] == 403
    assert call_api("PUT", f"{RULES}/marketing", DAILY, key=writer)[0] == 200
    assert call_api("GET", f"{RULES}/marketing?channel=email", key=reader)[0] == 200
    assert call_api("DELETE", f"{RULES}/marketing?channel=email", key=reader)[0] == 403
    assert call_api("GET", RULES, key=_key("events:write"))[0] == 403
    assert call_api("GET", RULES, key=None)[0] == 401


def test_the_worker_sends_one_of_two_throttled_jobs_in_a_batch_and_account_mail_goes_regardless(
    auth_service: AuthService, stack_env: dict[str, str]
) -> None:
    user = f"throttled-{uuid.uuid4().hex[:8]}"  # a user of this test alone: no counter, no preferences
    auth_service.add_user(user, segments=(), email=f"{user}@example.com")
    assert call_api("PUT", f"{RULES}/content", DAILY)[0] == 200
    films = [job_for(user, "new_film"), job_for(user, "new_film")]
    # One batch: the two jobs run on two of the worker's threads, and the counter's conditional write lets one in.
    assert worker_outcomes(kafka_batch(*films)) == {"sent": 1, "skipped": 1}
    statuses = {job.job_id: job_status(job.job_id) for job in films}
    (skipped,) = [s for s in statuses.values() if s["status"] == "SKIPPED"]
    detail = skipped["history"][-1]["detail"]
    assert {k: detail[k] for k in ("reason", "category", "limit", "period_seconds")} == {
        "reason": "throttled",
        "category": "content",
        "limit": 1,
        "period_seconds": 86400,
    }
    (sent,) = [job for job in films if statuses[job.job_id]["status"] == "SENT"]
    item = boto3.client("dynamodb").get_item(
        TableName=stack_env["NOTIFICATIONS_TABLE"], Key={"pk": {"S": f"PREF#{user}"}, "sk": {"S": "PREF"}}
    )["Item"]
    window = ThrottleWindow.from_item(from_item(item)["throttle#content#email"])
    assert (window.count, window.last_job) == (1, sent.job_id)
    assert datetime.fromisoformat(detail["window_ends_at"]) > datetime.now(UTC)
    assert worker_outcomes(kafka_batch(job_for(user, "password_reset"))) == {"sent": 1}
    assert worker_outcomes(kafka_batch(job_for(user, "new_film"))) == {"skipped": 1}


def test_the_counters_write_is_conditional_on_the_state_read_and_returns_the_state_that_beat_it(
    stack_env: dict[str, str],
) -> None:
    client = boto3.client("dynamodb")
    worker = DynamoPreferenceStore(client, stack_env["NOTIFICATIONS_TABLE"], cache_seconds=30)
    other = DynamoPreferenceStore(client, stack_env["NOTIFICATIONS_TABLE"], cache_seconds=0)
    user, attribute = f"throttled-{uuid.uuid4().hex[:8]}", "throttle#marketing#email"
    start = datetime.now(UTC).replace(microsecond=0)
    first, second = ThrottleWindow(start, 1, ("job-1",)), ThrottleWindow(start, 2, ("job-1", "job-2"))
    assert worker.get(user) is None  # read (and cached) before any counter: a user never seen
    assert other.count_send(user, attribute, None, first) == (True, first)  # another container counts first
    assert worker.count_send(user, attribute, None, ThrottleWindow(start, 1, ("job-x",))) == (False, first)
    cached = worker.get(user)  # the failed write brought this container's cached read up to the counter
    assert cached is not None and cached.throttles == {attribute: first}
    assert worker.count_send(user, attribute, first, second) == (True, second)
    assert other.count_send(user, attribute, first, ThrottleWindow(start, 2, ("job-1", "job-y"))) == (False, second)
    stored = other.get(user)
    assert stored is not None and stored.throttles == {attribute: second}
    # The counter is one more attribute of the user's preferences item: a PUT of their preferences keeps it.
    assert call_api("PUT", f"/api/v1/users/{user}/preferences", {"channels": {"push": False}})[0] == 200
    kept = other.get(user)
    assert kept is not None and kept.throttles == {attribute: second} and kept.channels == {"push": False}


def test_a_rule_row_this_version_cannot_read_is_skipped_and_the_others_still_apply(stack_env: dict[str, str]) -> None:
    assert call_api("PUT", f"{RULES}/content", DAILY)[0] == 200
    client = boto3.client("dynamodb")
    bad = {"pk": {"S": "THROTTLE"}, "sk": {"S": "gossip#email"}, "category": {"S": "gossip"}, "limit": {"N": "0"}}
    client.put_item(TableName=stack_env["TEMPLATES_TABLE"], Item=bad)  # by hand: no such category, no channel
    try:
        rules = DynamoThrottleRules(client, stack_env["TEMPLATES_TABLE"], cache_seconds=0)
        assert [(r.category.value, r.rule.channel.value) for r in rules.all()] == [("content", "email")]
        assert rules.rule(Category.CONTENT, Channel.EMAIL) == ThrottleRule.model_validate(DAILY)
        assert rules.rule(Category.SOCIAL, Channel.EMAIL) is None
        assert [(r["category"], r["channel"]) for r in call_api("GET", RULES)[1]["items"]] == [("content", "email")]
    finally:
        client.delete_item(TableName=stack_env["TEMPLATES_TABLE"], Key={"pk": bad["pk"], "sk": bad["sk"]})
