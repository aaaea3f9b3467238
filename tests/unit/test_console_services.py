"""The domain behind the operator console: draft previews, a cron's schedule, the overview, a job re-rendered."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from notify.errors import NotFound, TransientError, ValidationFailed
from notify.models import Channel, Status
from notify.records import EventRecord, QueueDepth, ReceivedLetter, Template, Transition
from notify.rendering import RenderFailed, render
from notify.services.campaigns import CampaignInput, CampaignService
from notify.services.overview import OverviewService
from notify.services.rendered import RenderedJobs
from notify.services.templates import TemplateDraft, TemplateInput, TemplateService

from .fakes import MemoryCampaigns, MemoryStore, MemoryTemplates

NOW = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)  # two days before Europe/Berlin moves its clocks forward
FILM = {"film_id": "f-1", "title": "Dune", "release_date": "2026-12-01", "watch_url": "https://example.com/w"}


def _templates() -> TemplateService:
    return TemplateService(MemoryTemplates(), lambda: NOW)


def _fields(exc: pytest.ExceptionInfo[ValidationFailed]) -> dict[str, tuple[str, int | None]]:
    return {e.loc: (e.type, e.line) for e in exc.value.errors}


# -- drafts ----------------------------------------------------------------------------------


def test_a_draft_renders_as_version_0_without_being_stored() -> None:
    templates = _templates()
    draft = TemplateDraft(
        event_type="new_film", channel=Channel.PUSH, title="{{ title }}", body="{{ user.first_name }}"
    )
    rendered = templates.preview_draft(draft)
    assert (rendered.template_id, rendered.template_version, rendered.title, rendered.body) == (
        "new_film.push.en",
        0,
        "Dune",
        "Ada",
    )
    assert templates.list() == []


def test_every_problem_of_a_draft_is_reported_on_its_part_and_line() -> None:
    draft = TemplateDraft(
        event_type="new_film",
        channel=Channel.EMAIL,
        body_text="one\n{{ title }\n",
        body_html="<p>\n{{ film_id }} {{ nope }}</p>",
        title="not for email",
        payload={"film_id": 3},
    )
    with pytest.raises(ValidationFailed) as exc:
        _templates().preview_draft(draft)
    fields = _fields(exc)
    assert fields["subject"] == ("missing", None)
    assert fields["title"] == ("part_unused", None)
    assert fields["body_text"] == ("template_syntax", 2)
    assert fields["body_html"] == ("template_variable", 2)
    assert {"payload.film_id", "payload.title", "payload.release_date", "payload.watch_url"} <= set(fields)


def test_a_part_that_raises_while_rendering_names_the_line_it_raised_on() -> None:
    draft = TemplateDraft(event_type="new_film", channel=Channel.PUSH, title="t", body="a\n\n{{ title ~ (1 / 0) }}")
    with pytest.raises(ValidationFailed) as exc:
        _templates().preview_draft(draft)
    assert _fields(exc) == {"body": ("template_render", 3)}


def test_render_failures_carry_their_line_to_the_worker_too() -> None:
    template = Template("new_film", Channel.PUSH, "en", 1, "new_film.push.en", title="ok", body="x\n{{ 1 // 0 }}")
    with pytest.raises(RenderFailed) as exc:
        render(template, {})
    assert (exc.value.part, exc.value.line) == ("body", 2)


# -- a cron's schedule -----------------------------------------------------------------------


def _campaigns(store: MemoryCampaigns | None = None) -> CampaignService:
    return CampaignService(store or MemoryCampaigns(), lambda: NOW)


def test_the_schedule_of_a_cron_follows_its_zone_across_a_clock_change() -> None:
    answer = _campaigns().schedule("0 9 * * *", "Europe/Berlin", 3)
    assert answer["next_runs"] == ["2026-03-28T08:00:00.000Z", "2026-03-29T07:00:00.000Z", "2026-03-30T07:00:00.000Z"]
    assert answer["local_times"] == [
        "2026-03-28T09:00:00+01:00",
        "2026-03-29T09:00:00+02:00",
        "2026-03-30T09:00:00+02:00",
    ]


def test_a_bad_cron_and_zone_are_reported_together_and_a_cron_that_never_fires_is_refused() -> None:
    with pytest.raises(ValidationFailed) as exc:
        _campaigns().schedule("every monday", "Europe/Nowhere")
    assert set(_fields(exc)) == {"cron", "timezone"}
    with pytest.raises(ValidationFailed) as exc:
        _campaigns().schedule("0 0 30 2 *", "UTC")
    assert "never fires" in exc.value.errors[0].msg
    with pytest.raises(ValueError, match="never fires"):
        CampaignInput(name="n", cron="0 0 31 4 *", segment_id="s", event_type="new_film", payload=FILM)


def test_the_schedule_is_capped() -> None:
    assert len(_campaigns().schedule("* * * * *", "UTC", 500)["next_runs"]) == 50


# -- the overview ----------------------------------------------------------------------------


@dataclass
class Stats:
    depth_or_error: QueueDepth | Exception

    def depth(self) -> QueueDepth:
        if isinstance(self.depth_or_error, Exception):
            raise self.depth_or_error
        return self.depth_or_error


@dataclass
class Letters:
    letters: list[ReceivedLetter]
    visibility: list[int] = field(default_factory=list)

    def receive(self, limit: int, visibility_seconds: int) -> list[ReceivedLetter]:
        self.visibility.append(visibility_seconds)
        return self.letters[:limit]

    def delete(self, receipt: str) -> None:
        raise AssertionError("the overview only looks")

    def release(self, receipt: str) -> None:
        raise AssertionError("the overview only looks")


def _letter(n: int, sent_ms: int) -> ReceivedLetter:
    body = {"reason": "permanent_error", "error": f"e{n}", "job": {"job_id": f"j{n}"}}
    return ReceivedLetter(f"m{n}", f"r{n}", json.loads(json.dumps(body)), str(sent_ms), 1)


def test_the_overview_answers_what_it_can_read_and_says_what_it_could_not() -> None:
    store = MemoryCampaigns()
    campaigns = _campaigns(store)
    payload = {"name": "c", "cron": "0 13 * * *", "segment_id": "all", "event_type": "new_film", "payload": FILM}
    soon = campaigns.create(CampaignInput.model_validate(payload))  # 13:00 today: due within the hour
    later = campaigns.create(CampaignInput.model_validate({**payload, "cron": "0 18 * * *"}))
    letters = Letters([_letter(1, 1_000), _letter(2, 3_000), _letter(3, 2_000)])
    overview = OverviewService(
        Stats(QueueDepth(4, 1, 0)), Stats(TransientError("AccessDenied")), letters, campaigns, lambda: NOW
    ).overview()
    assert overview["dlq"] == {"visible": 4, "in_flight": 1, "delayed": 0}
    assert overview["delay_queue"] is None
    assert overview["problems"] == ["delay queue: AccessDenied"]
    assert [c["campaign_id"] for c in overview["campaigns_due"]] == [soon.campaign_id]
    assert later.campaign_id not in {c["campaign_id"] for c in overview["campaigns_due"]}
    assert [f["job_id"] for f in overview["latest_failures"]] == ["j2", "j3", "j1"]  # newest first
    assert letters.visibility == [0]  # a peek: nothing is hidden from a redrive


# -- a job's message as rendered -----------------------------------------------------------


def _world() -> tuple[MemoryStore, TemplateService]:
    templates = _templates()
    for locale, subject in (("en", "Hi {{ title }}"), ("de", "Hallo {{ title }}")):
        templates.save(
            TemplateInput(event_type="new_film", channel=Channel.EMAIL, locale=locale, subject=subject, body_text="t")
        )
    store = MemoryStore()
    store.put_event(EventRecord("e1", "new_film", ["u1"], [Channel.EMAIL], "normal", "", "", payload=FILM, locale="de"))
    return store, templates


def _job(store: MemoryStore, detail: dict[str, object]) -> None:
    history = [Transition(Status.ACCEPTED, "", 0), Transition(Status.SENDING, "", 0, detail=detail)]
    store.jobs["j1"] = {
        "event_id": "e1",
        "user_id": "u1",
        "channel": Channel.EMAIL,
        "status": Status.SENT,
        "attempt": 0,
        "history": history,
    }


def test_a_job_renders_again_with_its_template_version_and_its_events_payload() -> None:
    store, templates = _world()
    _job(store, {"template_version": 1, "template_id": "new_film.email.en"})
    answer = RenderedJobs(store, templates).render("j1")
    assert (answer["template_id"], answer["template_version"], answer["payload"]) == ("new_film.email.en", 1, FILM)
    assert answer["rendered"]["subject"] == "Hi Dune"


def test_the_template_the_worker_recorded_on_sending_is_used_not_a_guess_from_the_events_locale() -> None:
    # The worker chose `de` from the user's profile; the event names no locale, so a guess would take `en`. The
    # SENT entry after SENDING records the version alone: the template id is SENDING's.
    store, templates = _world()
    store.put_event(EventRecord("e1", "new_film", ["u1"], [Channel.EMAIL], "normal", "", "", payload=FILM))
    _job(store, {"template_version": 1, "template_id": "new_film.email.de"})
    sent = Transition(Status.SENT, "", 0, detail={"provider_message_id": "p-1", "template_version": 1})
    store.jobs["j1"]["history"] = [*store.jobs["j1"]["history"], sent]
    answer = RenderedJobs(store, templates).render("j1")
    assert (answer["template_id"], answer["template_version"]) == ("new_film.email.de", 1)
    assert answer["rendered"]["subject"] == "Hallo Dune"


def test_a_job_recorded_without_its_template_id_finds_it_along_the_events_locale_chain() -> None:
    store, templates = _world()
    _job(store, {"template_version": 1})
    assert RenderedJobs(store, templates).render("j1")["rendered"]["subject"] == "Hallo Dune"


def test_a_job_never_rendered_or_without_a_kept_payload_is_not_found_with_the_reason() -> None:
    store, templates = _world()
    rendered = RenderedJobs(store, templates)
    with pytest.raises(NotFound, match="has not been rendered"):
        rendered.render("nope")
    _job(store, {})
    with pytest.raises(NotFound, match="was never rendered"):
        rendered.render("j1")
    _job(store, {"template_version": 1})
    store.events["e1"] = EventRecord("e1", "new_film", ["u1"], [Channel.EMAIL], "normal", "", "")
    with pytest.raises(NotFound, match="payload .* is not kept"):
        rendered.render("j1")
