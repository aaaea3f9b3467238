from __future__ import annotations

from typing import Any

import pytest
from notify.errors import PermanentError
from notify.models import Channel, Priority
from notify.records import Template
from notify.rendering import locale_chain, render
from notify.retry import DEFAULT_POLICIES, RetryPolicy


def _template(**parts: Any) -> Template:
    return Template("user_registered", Channel.EMAIL, "en", 3, "user_registered.email.en", **parts)


def test_locale_chain_goes_from_specific_to_default() -> None:
    assert locale_chain("pt-BR") == ["pt-BR", "pt", "en"]
    assert locale_chain("en") == ["en"]
    assert locale_chain(None) == ["en"]
    assert locale_chain("ru", default="de") == ["ru", "de"]


def test_render_escapes_html_but_not_text() -> None:
    msg = render(
        _template(subject="Hi {{ name }}", body_text="{{ name }}", body_html="<p>{{ name }}</p>"),
        {"name": "<b>Ada</b>"},
    )
    assert msg.subject == "Hi <b>Ada</b>"
    assert msg.text == "<b>Ada</b>"
    assert msg.html == "<p>&lt;b&gt;Ada&lt;/b&gt;</p>"
    assert (msg.template_id, msg.template_version) == ("user_registered.email.en", 3)


def test_missing_variable_is_a_permanent_error() -> None:
    with pytest.raises(PermanentError, match="missing"):
        render(_template(subject="{{ missing }}"), {})


def test_sandbox_blocks_attribute_escapes() -> None:
    with pytest.raises(PermanentError):
        render(_template(subject="{{ ''.__class__.__mro__[1].__subclasses__() }}"), {})


def test_backoff_is_capped_full_jitter() -> None:
    policy = RetryPolicy(base_seconds=10, cap_seconds=100, max_attempts=4)
    assert policy.delay(0, lambda: 0.999) == 9
    assert policy.delay(3, lambda: 0.999) == 79
    assert policy.delay(10, lambda: 0.999) == 99
    assert policy.delay(5, lambda: 0.0) == 1
    assert not policy.exhausted(2)
    assert policy.exhausted(3)


def test_every_priority_has_a_policy() -> None:
    assert set(DEFAULT_POLICIES) == set(Priority)


# What a payload field may carry into a subject: CR/LF (a header of its own, e.g. Bcc), NUL, tab, DEL, NEL and
# Unicode's line separator.
INJECTION = "Eve\r\nBcc: victim@example.com\x00\t\x7f\x85\u2028x"


def test_a_rendered_subject_is_one_line_whatever_the_payload_holds() -> None:
    msg = render(
        _template(subject="{{ liked_by }} liked your review", body_text="{{ liked_by }}", title="{{ liked_by }}"),
        {"liked_by": INJECTION},
    )
    assert msg.subject == "Eve Bcc: victim@example.com x liked your review"
    assert msg.text == INJECTION  # a body is not a header: its lines are the sender's
