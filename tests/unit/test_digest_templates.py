"""Issue 23's digest template variant: ``<event_type>.digest`` ids, what it sees (``digest``), the account refusal,
and the default digest templates' wording for one, two and fifty members."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from notify import rendering
from notify.default_templates import DEFAULTS
from notify.digests import DigestItem, digest_context
from notify.errors import NotFound, ValidationFailed
from notify.models import Channel
from notify.records import Template
from notify.rendering import RenderFailed, render, render_context
from notify.services.templates import (
    PreviewInput,
    TemplateDraft,
    TemplateInput,
    TemplateService,
    parse_template_id,
    part_errors,
)

from .fakes import MemoryTemplates

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
USER = {"first_name": "Ada", "email": "ada@example.com"}
EVENT = {"event_id": "e-1", "job_id": "j-1", "unsubscribe_url": "https://n.example.com/u/t"}
LIKERS = ["Ann", "Bob"] + [f"Fan {i}" for i in range(3, 51)]  # the newest first


@pytest.fixture(autouse=True)
def _render_without_a_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    from notify.services import templates

    monkeypatch.setattr(templates, "render", functools.partial(rendering.render, clock=lambda: 0.0))


@pytest.fixture
def service() -> TemplateService:
    return TemplateService(MemoryTemplates(), lambda: T0)


def _likes(count: int) -> list[dict[str, Any]]:
    """The payloads of ``count`` likes, oldest first: the newest is Ann's, the one before Bob's."""
    return [
        {
            "review_id": "r-1",
            "movie_id": "m-1",
            "movie_title": "Dune",
            "liked_by": LIKERS[count - 1 - i],
            "likes_count": i + 1,
        }
        for i in range(count)
    ]


def _episodes(count: int) -> list[dict[str, Any]]:
    return [
        {
            "series_id": "s-1",
            "series_title": "Dark",
            "season": 2,
            "episode": i + 1,
            "watch_url": f"https://e.com/w/{i + 1}",
        }
        for i in range(count)
    ]


def _render(key: str, channel: Channel, payloads: list[dict[str, Any]]) -> Any:
    """A default digest template rendered as the worker will: the newest member's payload at the top level."""
    items = [DigestItem(p, T0 + timedelta(minutes=i), f"job-{i:03d}") for i, p in enumerate(payloads)]
    template = Template(key, channel, "en", 1, f"{key}.{channel.value}.en", **DEFAULTS[(key, channel)])
    digest = digest_context(items, len(items), 100)
    return render(template, render_context(key, payloads[-1], USER, EVENT, digest=digest))


@pytest.mark.parametrize(
    ("count", "subject", "push_title", "in_app_title"),
    [
        (1, "Ann liked your review of Dune", "Your review got a like", "Ann liked your review"),
        (2, "Ann and Bob liked your review of Dune", "Your review got 2 likes", "Ann and Bob liked your review"),
        (
            50,
            "Ann and 49 others liked your review of Dune",
            "Your review got 50 likes",
            "Ann and 49 others liked your review",
        ),
    ],
)
def test_review_liked_digest_defaults(count: int, subject: str, push_title: str, in_app_title: str) -> None:
    email = _render("review_liked.digest", Channel.EMAIL, _likes(count))
    assert email.subject == subject
    assert email.text.startswith(f"Hi Ada,\n\n{subject} ({count} like{'s' if count > 1 else ''} so far)")
    assert "Unsubscribe: https://n.example.com/u/t" in email.text and 'href="https://n.example.com/u/t"' in email.html
    push = _render("review_liked.digest", Channel.PUSH, _likes(count))
    assert (push.title, push.body) == (push_title, subject)
    assert _render("review_liked.digest", Channel.WEBSOCKET, _likes(count)).title == in_app_title
    if count == 1:
        assert "- Ann" not in email.text
    elif count == 2:
        assert "- Bob\n- Ann\n" in email.text and "<li>Bob</li><li>Ann</li>" in email.html
    else:  # an email lists every liker the rule keeps (its max_items; here all 50)
        assert email.text.count("\n- ") == 50 and "- Fan 50\n" in email.text and " more\n" not in email.text
        assert email.html.count("<li>") == 50 and " more</p>" not in email.html


@pytest.mark.parametrize(
    ("count", "subject", "push", "in_app_title"),
    [
        (
            1,
            "New episode of Dark: S2E1",
            ("Dark: new episode", "S2E1 is out. Watch now: https://e.com/w/1"),
            "New episode of Dark",
        ),
        (
            2,
            "2 new episodes of Dark",
            ("Dark: 2 new episodes", "S2E1, S2E2 are out. Watch now: https://e.com/w/2"),
            "2 new episodes of Dark",
        ),
        (
            50,
            "50 new episodes of Dark",
            (
                "Dark: 50 new episodes",
                "S2E1, S2E2, S2E3, S2E4, S2E5, S2E6, S2E7, S2E8, S2E9, S2E10 and 40 more are out. "
                "Watch now: https://e.com/w/50",
            ),
            "50 new episodes of Dark",
        ),
    ],
)
def test_new_episode_digest_defaults(count: int, subject: str, push: tuple[str, str], in_app_title: str) -> None:
    email = _render("new_episode.digest", Channel.EMAIL, _episodes(count))
    assert email.subject == subject
    assert "Unsubscribe: https://n.example.com/u/t" in email.text
    if count > 1:
        assert (
            f"{count} new episodes of Dark are out:\n- S2E1: https://e.com/w/1\n- S2E2: https://e.com/w/2\n"
            in email.text
        )
    rendered = _render("new_episode.digest", Channel.PUSH, _episodes(count))
    assert (rendered.title, rendered.body) == push
    assert _render("new_episode.digest", Channel.WEBSOCKET, _episodes(count)).title == in_app_title


def test_digest_defaults_exist_for_every_channel_and_shorten_links_only_outside_email() -> None:
    for key in ("review_liked.digest", "new_episode.digest"):
        assert {channel for k, channel in DEFAULTS if k == key} == set(Channel)
    assert "| short" in DEFAULTS[("new_episode.digest", Channel.PUSH)]["body"]
    assert "| short" in DEFAULTS[("new_episode.digest", Channel.WEBSOCKET)]["body"]
    assert "| short" not in str(DEFAULTS[("new_episode.digest", Channel.EMAIL)])


def test_a_digest_variant_without_a_digest_fails_and_a_plain_template_never_sees_one() -> None:
    variant = Template("review_liked.digest", Channel.PUSH, "en", 1, "t", title="{{ digest.count }}", body="b")
    with pytest.raises(RenderFailed, match="rendered without a digest"):
        render(variant, render_context("review_liked.digest", _likes(1)[0], USER, EVENT))
    plain = Template("review_liked", Channel.PUSH, "en", 1, "t", title="{{ digest.count }}", body="b")
    digest = digest_context([], 0, 10)
    with pytest.raises(RenderFailed, match="'digest' is undefined"):
        render(plain, render_context("review_liked", _likes(1)[0], USER, EVENT, digest=digest))


def test_the_variant_takes_absent_field_defaults_from_its_event_type() -> None:
    template = Template(
        "new_episode.digest", Channel.PUSH, "en", 1, "t", title="{{ digest['count'] }}", body="[{{ episode_title }}]"
    )
    context = render_context("new_episode.digest", _episodes(1)[0], USER, EVENT, digest=digest_context([], 1, 10))
    assert (render(template, context).title, render(template, context).body) == ("1", "[]")


def test_variant_ids_parse() -> None:
    assert parse_template_id("review_liked.digest.email.en") == ("review_liked.digest", Channel.EMAIL, "en")
    assert parse_template_id("review_liked.email.pt-BR") == ("review_liked", Channel.EMAIL, "pt-BR")
    for bad in ("review_liked.weekly.email.en", "review_liked.digest.fax.en", "review_liked.digest.email"):
        with pytest.raises(NotFound):
            parse_template_id(bad)


def test_digest_is_provided_to_variants_only() -> None:
    assert (
        part_errors("review_liked.digest", {"title": "{{ digest.items[0].payload.liked_by }} {{ movie_title }}"}) == []
    )
    (error,) = part_errors("review_liked", {"title": "{{ digest.count }}"})
    assert error.type == "template_variable" and "'digest' is not provided" in error.msg


@pytest.mark.parametrize("event_type", ["password_reset.digest", "user_registered.digest"])
def test_account_events_have_no_digest_variant(service: TemplateService, event_type: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        service.save(TemplateInput(event_type=event_type, channel=Channel.PUSH, title="t", body="b"))
    (error,) = info.value.errors
    assert error.loc == "event_type" and "never in a digest" in error.msg
    with pytest.raises(ValidationFailed):
        service.preview_draft(TemplateDraft(event_type=event_type, channel=Channel.PUSH, title="t", body="b"))


def test_an_unknown_variant_is_a_field_error(service: TemplateService) -> None:
    with pytest.raises(ValidationFailed) as info:
        service.save(TemplateInput(event_type="review_liked.weekly", channel=Channel.PUSH, title="t", body="b"))
    assert [e.loc for e in info.value.errors] == ["event_type"]


def test_a_variant_saves_lists_previews_and_retires(service: TemplateService) -> None:
    saved = service.save(
        TemplateInput(
            event_type="review_liked.digest",
            channel=Channel.PUSH,
            title="{{ digest.count }} like{{ 's' if digest.count != 1 else '' }}",
            body="{{ liked_by }} and others liked {{ movie_title }}",
        )
    )
    assert saved.template_id == "review_liked.digest.push.en"
    assert [t.template_id for t in service.list("review_liked.digest")] == [saved.template_id]
    assert service.list("review_liked") == []
    preview = service.preview(saved.template_id, PreviewInput())
    assert (preview.title, preview.body) == ("3 likes", "Grace and others liked Arrival")
    service.delete(saved.template_id)
    with pytest.raises(NotFound):
        service.get(saved.template_id)


def test_a_variant_that_only_works_for_several_members_is_refused(service: TemplateService) -> None:
    with pytest.raises(ValidationFailed) as info:  # a digest of one has no second item
        service.save(
            TemplateInput(
                event_type="review_liked.digest", channel=Channel.PUSH, title="t", body="{{ digest.items[1].payload }}"
            )
        )
    (error,) = info.value.errors
    assert error.loc == "body" and "in a digest of 1" in error.msg
