from __future__ import annotations

import functools
import tracemalloc
from datetime import UTC, datetime

import pytest
from notify import rendering
from notify.errors import NotFound, ValidationFailed
from notify.models import Channel
from notify.records import Template
from notify.services.templates import PreviewInput, TemplateContent, TemplateDraft, TemplateInput, TemplateService

from .fakes import MemoryTemplates

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _render_without_a_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The save check renders under a budget with a render clock that never moves: these tests are about
    its other limits (loop iterations, value sizes), which a loaded machine must not turn into the deadline."""
    from notify.services import templates

    monkeypatch.setattr(templates, "render", functools.partial(rendering.render, clock=lambda: 0.0))


@pytest.fixture
def service() -> TemplateService:
    return TemplateService(MemoryTemplates(), lambda: T0)


def _email(**parts: str) -> TemplateInput:
    return TemplateInput.model_validate(
        {"event_type": "new_episode", "channel": "email", "subject": "{{ series_title }}", "body_text": "x", **parts}
    )


def test_every_save_is_a_new_version(service: TemplateService) -> None:
    first = service.save(_email())
    second = service.update(first.template_id, TemplateContent(subject="S{{ season }}"))
    assert (first.version, second.version) == (1, 2)
    assert first.template_id == "new_episode.email.en"
    assert service.get(first.template_id).subject == "S{{ season }}"


def test_syntax_errors_carry_the_line(service: TemplateService) -> None:
    with pytest.raises(ValidationFailed) as info:
        service.save(_email(body_html="<p>ok</p>\n<p>{{ series_title </p>"))
    (error,) = info.value.errors
    assert error.loc == "body_html" and error.msg.startswith("line 2:")


def test_variables_the_event_does_not_provide_are_rejected(service: TemplateService) -> None:
    with pytest.raises(ValidationFailed) as info:
        service.save(_email(body_text="Hi {{ user.first_name }}\n{{ film_title }}"))
    (error,) = info.value.errors
    assert "line 2: 'film_title' is not provided by new_episode" in error.msg


@pytest.mark.parametrize(
    "body",
    [
        {"event_type": "new_film", "channel": "push", "title": "t", "body": "b", "subject": "s"},
        {"event_type": "new_film", "channel": "email", "body_text": "b"},
        {"event_type": "new_film", "channel": "websocket"},
    ],
)
def test_parts_must_fit_the_channel(body: dict) -> None:
    with pytest.raises(ValueError):
        TemplateInput.model_validate(body)


def test_a_retired_template_is_gone_but_a_version_still_previews(service: TemplateService) -> None:
    saved = service.save(_email())
    service.delete(saved.template_id)
    for read in (
        lambda: service.get(saved.template_id),
        lambda: service.get(saved.template_id, saved.version),
        lambda: service.versions(saved.template_id),
    ):
        with pytest.raises(NotFound, match="retired"):
            read()
    assert service.list(channel=Channel.EMAIL) == []
    # What a job was rendered with can still be shown (POST …/preview?version=N).
    assert service.preview(saved.template_id, PreviewInput(), saved.version).subject


def test_preview_uses_the_sample_payload_or_validates_the_given_one(service: TemplateService) -> None:
    saved = service.save(_email(body_text="{{ user.first_name }} S{{ season }}E{{ episode }}"))
    assert service.preview(saved.template_id, PreviewInput()).text == "Ada S1E2"
    with pytest.raises(ValidationFailed):
        service.preview(saved.template_id, PreviewInput(payload={"season": 1}))


@pytest.mark.parametrize(
    ("body_text", "reason"),
    [
        ("{{ 1/0 }}", "ZeroDivisionError: division by zero (rendering with the sample payload)"),
        ("{% for a in range(10000) %}{% for b in range(10000) %}.{% endfor %}{% endfor %}", "loop iterations"),
        ("{{ 'x' * 10**9 }}", "repeating with *"),
        ("{{ episode_title.upper() }}", "the new_episode payload has no 'episode_title'"),
    ],
)
def test_a_template_that_cannot_render_is_refused_at_save(
    service: TemplateService, body_text: str, reason: str
) -> None:
    with pytest.raises(ValidationFailed) as info:
        service.save(_email(body_text=body_text))
    (error,) = info.value.errors
    assert (error.loc, error.type) == ("body_text", "template_render")
    assert reason in error.msg
    assert service.list() == []


def test_an_update_that_cannot_render_is_refused(service: TemplateService) -> None:
    saved = service.save(_email())
    with pytest.raises(ValidationFailed) as info:
        service.update(saved.template_id, TemplateContent(subject="{{ season / 0 }}"))
    assert info.value.errors[0].loc == "subject"
    assert service.get(saved.template_id).version == 1


def test_optional_fields_may_be_tested_and_defaulted(service: TemplateService) -> None:
    saved = service.save(
        _email(body_text="{% if episode_title %}{{ episode_title }}{% endif %}{{ episode_title|default('-') }}")
    )
    assert service.preview(saved.template_id, PreviewInput()).text == "-"


def test_preview_of_a_stored_runaway_template_is_a_field_error(service: TemplateService) -> None:
    store = MemoryTemplates()
    service = TemplateService(store, lambda: T0)
    saved = service.save(_email())
    # An old version saved before the render check, written straight to the store.
    store.save(
        Template(
            **{
                **saved.__dict__,
                "body_text": "{% for a in range(9999) %}{% for b in range(9999) %}{{ a * b }}{% endfor %}{% endfor %}",
            }
        )
    )
    with pytest.raises(ValidationFailed) as info:
        service.preview(saved.template_id, PreviewInput())
    (error,) = info.value.errors
    assert (error.loc, error.type) == ("body_text", "template_render")
    assert "loop iterations" in error.msg


def test_checking_a_save_folds_no_constants(service: TemplateService) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ValidationFailed):
            service.save(_email(body_text="{{ 'x' * 10**9 }}{{ 'y' * 999999999 }}"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024


def test_every_default_template_passes_the_save_check(service: TemplateService) -> None:
    from notify.default_templates import DEFAULTS

    for (event_type, channel), parts in DEFAULTS.items():
        saved = service.save(TemplateInput.model_validate({"event_type": event_type, "channel": channel, **parts}))
        preview = service.preview(saved.template_id, PreviewInput())
        assert "None" not in " ".join(p for p in (preview.subject, preview.text, preview.title, preview.body) if p)


@pytest.mark.parametrize(
    "subject", ["Hi\r\nBcc: victim@example.com", "Hi\n{{ series_title }}", "a\tb", "x\x00", "x\u2028y"]
)
def test_a_subject_with_a_line_break_or_a_control_character_is_refused(service: TemplateService, subject: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        service.save(_email(subject=subject))
    (error,) = info.value.errors
    assert (error.loc, error.type, error.line) == ("subject", "header_control", 1)
    assert error.msg.startswith("line 1: a subject is one line of an email header")
    with pytest.raises(ValidationFailed) as draft:
        service.preview_draft(
            TemplateDraft.model_validate(
                {"event_type": "new_episode", "channel": "email", "subject": subject, "body_text": "x"}
            )
        )
    assert [(e.loc, e.type) for e in draft.value.errors] == [("subject", "header_control")]


def test_a_body_keeps_its_lines(service: TemplateService) -> None:
    assert service.save(_email(body_text="Hi\r\n\tthere")).body_text == "Hi\r\n\tthere"
