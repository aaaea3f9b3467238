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
