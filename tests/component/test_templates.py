"""Templates through ApiFunction against moto server: refused at save, 422 in preview, with the reason."""

from __future__ import annotations

import uuid

import boto3
import pytest
from notify.adapters.dynamodb.templates import DynamoTemplateStore
from notify.models import Channel
from notify.records import Template

from .helpers import call_api

pytestmark = pytest.mark.usefixtures("local_stack")

# Each with the start of the reason it is refused with.
RUNAWAYS = {
    "nested_range": (
        "{% for a in range(10000) %}{% for b in range(10000) %}{{ a * b }}{% endfor %}{% endfor %}",
        "more than 10,000 loop iterations",
    ),
    "power": ("{{ 10 ** 1000000 }}", "10 ** 1000000 would be over 1,024 bits"),
    "string_repetition": ("{{ 'x' * 10**9 }}", "repeating with * would make 1,000,000,000 characters"),
    "macro_recursion": ("{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}", "RecursionError"),
    "huge_output": (
        "{% for i in range(10000) %}{{ 'x' * 90000 }}{% endfor %}",
        "the output is over 100,000 characters",
    ),
    "division_by_zero": ("{{ 1/0 }}", "ZeroDivisionError"),
}
SAMPLE_LIKE = {"review_id": "r-1", "movie_id": "m-1", "movie_title": "Dune", "liked_by": "Grace", "likes_count": 3}
# The render budget's own deadline (CPU time): on a loaded machine it may be what stops a runaway first.
DEADLINE = "rendering took longer than"


def _stopped(msg: str, name: str) -> bool:
    """The render was stopped by the limit the runaway runs into (or the deadline), not run to completion."""
    return msg.startswith((RUNAWAYS[name][1], DEADLINE))


def _stored(stack_env: dict, body: str) -> str:
    """A template written straight to the store, as a version saved before the render check could be."""
    locale = f"zz-{uuid.uuid4().hex[:6]}"
    store = DynamoTemplateStore(boto3.client("dynamodb"), stack_env["TEMPLATES_TABLE"], cache_seconds=0)
    saved = store.save(
        Template("new_film", Channel.PUSH, locale, 0, f"new_film.push.{locale}", title="{{ title }}", body=body)
    )
    return saved.template_id


@pytest.mark.parametrize("name", sorted(RUNAWAYS))
def test_a_stored_runaway_template_previews_as_422_with_the_reason(stack_env: dict, name: str) -> None:
    tid = _stored(stack_env, RUNAWAYS[name][0])
    status, error = call_api("POST", f"/api/v1/templates/{tid}/preview", {})
    assert status == 422, error
    assert error["error"]["code"] == "validation_error"
    (field,) = error["error"]["fields"]
    assert (field["loc"], field["type"]) == ("body", "template_render")
    assert _stopped(field["msg"], name), field


@pytest.mark.parametrize("name", sorted(RUNAWAYS))
def test_a_runaway_template_is_refused_at_save(name: str) -> None:
    locale = f"zz-{uuid.uuid4().hex[:6]}"
    body = {"event_type": "new_film", "channel": "push", "locale": locale, "title": "t", "body": RUNAWAYS[name][0]}
    status, error = call_api("POST", "/api/v1/templates", body)
    assert status == 422, error
    (field,) = error["error"]["fields"]
    assert (field["loc"], field["type"]) == ("body", "template_render")
    assert _stopped(field["msg"], name), field
    assert call_api("GET", f"/api/v1/templates/new_film.push.{locale}")[0] == 404


def test_an_optional_field_left_out_previews_as_empty() -> None:
    locale = f"zz-{uuid.uuid4().hex[:6]}"
    body = {
        "event_type": "user_registered",
        "channel": "push",
        "locale": locale,
        "title": "Welcome{% if first_name %}, {{ first_name }}{% endif %}",
        "body": "{{ confirmation_url }}",
    }
    status, created = call_api("POST", "/api/v1/templates", body)
    assert status == 201, created
    payload = {"payload": {"confirmation_url": "https://example.com/c/1"}}
    status, preview = call_api("POST", f"/api/v1/templates/{created['template_id']}/preview", payload)
    assert (status, preview["title"]) == (200, "Welcome")


def test_a_digest_variant_is_created_previewed_listed_and_retired_through_the_api() -> None:
    locale = f"zz-{uuid.uuid4().hex[:6]}"
    body = {
        "event_type": "review_liked.digest",
        "channel": "push",
        "locale": locale,
        "title": "{{ digest.count }} likes",
        "body": "{{ liked_by }} and {{ digest.count - 1 }} others liked {{ movie_title }}",
    }
    status, created = call_api("POST", "/api/v1/templates", body)
    assert status == 201, created
    tid = created["template_id"]
    assert (tid, created["event_type"]) == (f"review_liked.digest.push.{locale}", "review_liked.digest")
    status, preview = call_api(
        "POST", f"/api/v1/templates/{tid}/preview", {"payload": {**SAMPLE_LIKE, "liked_by": "Ann"}}
    )
    assert (status, preview["title"], preview["body"]) == (200, "3 likes", "Ann and 2 others liked Dune"), preview
    status, updated = call_api("PUT", f"/api/v1/templates/{tid}", {"title": "{{ digest.count }} new likes"})
    assert (status, updated["version"]) == (200, 2), updated
    status, listed = call_api("GET", "/api/v1/templates?event_type=review_liked.digest&channel=push")
    assert status == 200 and tid in [t["template_id"] for t in listed["items"]]
    assert [v["version"] for v in call_api("GET", f"/api/v1/templates/{tid}/versions")[1]["items"]] == [2, 1]
    assert call_api("DELETE", f"/api/v1/templates/{tid}")[0] == 204
    assert call_api("GET", f"/api/v1/templates/{tid}")[0] == 404


def test_an_account_event_has_no_digest_variant() -> None:
    body = {"event_type": "password_reset.digest", "channel": "push", "title": "t", "body": "b"}
    status, error = call_api("POST", "/api/v1/templates", body)
    assert status == 422, error
    (field,) = error["error"]["fields"]
    assert field["loc"] == "event_type" and "never in a digest" in field["msg"], field
