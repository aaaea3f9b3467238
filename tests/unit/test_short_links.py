"""Short links (issue 21, item 1): the ``short`` filter, code derivation, link-scanner detection, http(s) targets
only, the worker storing a job's links once per render, and clicks counted on the job (the first one in its history).
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Optional

import pytest
from notify.catalog import EVENT_TYPES
from notify.default_templates import DEFAULTS
from notify.errors import StoreUnavailable, TransientError
from notify.jobs import EventPlan, new_event_id
from notify.links import (
    CODE_PATTERN,
    SAMPLE_LINK,
    BadTarget,
    ShortLinks,
    derive_code,
    is_scanner,
    random_code,
    target,
)
from notify.models import Channel, Contact, NotificationJob, Status, WebhookTask
from notify.ports import ClickStore, LinkStore, PushSender
from notify.records import JOB_RETENTION, RenderedMessage, ShortLink, Template, UserProfile, WebhookEndpoint
from notify.rendering import RenderFailed, render, render_context
from notify.services.delivery import Outcome
from notify.services.links import LinkService
from notify.services.templates import check_renders
from notify.services.webhook_emitter import WebhookEmitter
from notify.signing import KeysUnusable
from notify.webhooks import message_id

from .fakes import DeliveryWorld, MemoryQueue, MemoryWebhookStore

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
KEY = "short-link test key of 32 bytes at least"
BASE = "https://sho.rt"


def _push(body: str, title: str = "t") -> Template:
    return Template("new_episode", Channel.PUSH, "en", 1, "new_episode.push.en", title=title, body=body)


def _job(event_type: str = "new_episode", channel: Channel = Channel.PUSH, **changes: Any) -> NotificationJob:
    spec = EVENT_TYPES[event_type]
    payload = spec.sample_payload()
    plan = EventPlan(new_event_id(), spec, payload, ["u1"], [channel], spec.priority, T0, T0 + timedelta(days=1))
    return plan.jobs()[0].model_copy(update=changes)


# -- codes ---------------------------------------------------------------------------------------------------------


def test_a_code_is_an_hmac_of_the_job_and_the_url_under_the_short_link_key_and_carries_96_bits() -> None:
    code = derive_code(KEY.encode(), "job-1", "https://example.com/a")
    assert CODE_PATTERN.fullmatch(code) and len(code) == 16  # base64url of 12 bytes: 96 bits, well over 60
    assert derive_code(KEY.encode(), "job-1", "https://example.com/a") == code  # a render again: the same code
    others = {
        derive_code(KEY.encode(), "job-2", "https://example.com/a"),
        derive_code(KEY.encode(), "job-1", "https://example.com/b"),
        derive_code(b"another key, also 32 bytes or more", "job-1", "https://example.com/a"),
    }
    assert code not in others and len(others) == 3
    # Not a plain hash of what a status reader knows (the job id and the URL): without the key, no one can make it.
    assert not re.search(code, "job-1https://example.com/a")


def test_a_random_code_has_the_same_shape_and_does_not_repeat() -> None:
    codes = {random_code() for _ in range(1000)}
    assert len(codes) == 1000 and all(CODE_PATTERN.fullmatch(c) for c in codes)


def test_a_key_list_that_is_empty_or_short_is_refused_as_transient_when_a_template_first_shortens_a_link() -> None:
    job = _job()
    for value, reason in (("too short", "at least 32"), (" , ", "no key")):
        links = ShortLinks(functools.partial(str, value), BASE).for_job(job)  # nothing read yet
        assert render(_push("no link here"), {}, shorten=links.short).body == "no link here"
        with pytest.raises(KeysUnusable, match=reason):  # transient: the job retries, it is no template error
            render(_push("{{ 'https://example.com/' | short }}"), {}, shorten=links.short)


# -- targets -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://example.com/file",
        "//evil.example/path",
        "/relative/path",
        "https://",
        "https:///nohost",
        "https://user:password@example.com/",
        "https://example.com/\nSet-Cookie: x",
        "https://exa mple.com/",
        "https://example.com/\u0085next-line",
        "javascript:alert('ü')",
        "https://example.com/" + "a" * 2048,
        "mailto:someone@example.com",
    ],
)
def test_only_http_and_https_urls_with_a_host_are_targets(url: str) -> None:
    with pytest.raises(BadTarget):
        target(url)


def test_http_and_https_urls_are_targets_as_given() -> None:
    assert target("https://example.com/watch?v=1&t=2#at") == "https://example.com/watch?v=1&t=2#at"
    assert target("HTTP://Example.com:8080/x") == "HTTP://Example.com:8080/x"
    assert target("  https://example.com/  ") == "https://example.com/"
    # An IRI becomes the ASCII URL it stands for: a Location header carries ASCII only.
    assert target("https://例え.jp/パス?q=ü") == "https://xn--r8jz45g.jp/%E3%83%91%E3%82%B9?q=%C3%BC"


# -- scanners ------------------------------------------------------------------------------------------------------

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Version/17.4 Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
]
SCANNERS = [
    "",
    None,
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) SkypeUriPreview Preview/0.5",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0; Pro) SafeLinks",
    "Proofpoint URL Defense",
    "Mimecast Security Scanner",
    "Barracuda Sentinel (EE)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "WhatsApp/2.23.20.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/124.0 Safari/537.36",
]


@pytest.mark.parametrize("agent", BROWSERS)
def test_a_browser_is_no_scanner(agent: str) -> None:
    assert not is_scanner(agent)


@pytest.mark.parametrize("agent", SCANNERS)
def test_link_scanners_and_previews_are_recognised(agent: Optional[str]) -> None:
    assert is_scanner(agent)


# -- the filter ----------------------------------------------------------------------------------------------------


def test_the_short_filter_turns_a_url_into_a_short_link_of_the_job_the_same_for_the_same_url() -> None:
    job = _job()
    links = ShortLinks(lambda: KEY, BASE + "/").for_job(job)
    template = _push("{{ watch_url | short }} {{ watch_url | short }} {{ 'https://example.com/other' | short }}")
    context = render_context("new_episode", job.payload, {"id": "u1"}, {})
    message = render(template, context, shorten=links.short)
    first, again, other = (message.body or "").split()
    code = derive_code(KEY.encode(), job.job_id, job.payload["watch_url"])
    assert first == again == f"{BASE}/l/{code}" and other != first
    assert sorted(link.url for link in links.made) == sorted([job.payload["watch_url"], "https://example.com/other"])
    (made,) = [link for link in links.made if link.code == code]
    assert (made.job_id, made.user_id) == (job.job_id, "u1")
    assert made.expires_at == "2027-02-22T12:00:00.000Z" == (T0 + JOB_RETENTION).isoformat()[:19] + ".000Z"
    # A second render of the job (a retry, a redelivery) makes the very same links.
    again_links = ShortLinks(lambda: KEY, BASE).for_job(job)
    assert render(template, context, shorten=again_links.short) == message
    assert again_links.made == links.made


def test_the_short_filter_refuses_anything_but_an_http_or_https_url_as_a_render_error() -> None:
    links = ShortLinks(lambda: KEY, BASE).for_job(_job())
    for value in ("'javascript:alert(1)'", "'ftp://example.com/'", "42", "'//example.com/'"):
        with pytest.raises(RenderFailed) as failed:
            render(_push("Go: {{ " + value + " | short }}"), {}, shorten=links.short)
        assert failed.value.part == "body" and "http" in failed.value.reason
    assert links.made == []


def test_an_absent_optional_url_stays_empty_and_makes_no_link() -> None:
    job = _job()
    links = ShortLinks(lambda: KEY, BASE).for_job(job)
    context = render_context("new_episode", {**job.payload}, {"id": "u1"}, {})
    message = render(_push("[{{ episode_title | short }}]"), context, shorten=links.short)
    assert message.body == "[]" and links.made == []


def test_account_notifications_are_never_tracked_their_links_stay_as_they_are() -> None:
    job = _job("password_reset", Channel.WEBSOCKET)
    links = ShortLinks(lambda: KEY, BASE).for_job(job)
    context = {"reset_url": "https://example.com/reset?t=secret"}
    message = render(_push("{{ reset_url | short }}"), context, shorten=links.short)
    assert message.body == "https://example.com/reset?t=secret" and links.made == []


def test_without_a_shortener_the_filter_leaves_the_url_and_previews_show_a_sample_link() -> None:
    assert render(_push("{{ 'https://example.com/x' | short }}"), {}).body == "https://example.com/x"
    sample = render(_push("{{ 'https://example.com/x' | short }}"), {}, shorten=lambda url: SAMPLE_LINK)
    assert sample.body == SAMPLE_LINK and "/l/" in SAMPLE_LINK
    check_renders(replace(_push("{{ watch_url | short }}"), version=0))  # a template using it saves


def test_a_short_link_key_that_cannot_be_read_is_transient_not_a_template_error() -> None:
    def unreadable(url: str) -> str:
        raise TransientError("the parameter store is down")

    with pytest.raises(TransientError):
        render(_push("{{ 'https://example.com/' | short }}"), {}, shorten=unreadable)


def test_push_and_in_app_defaults_use_short_links_and_email_defaults_do_not() -> None:
    for event_type in ("new_episode", "new_film"):
        for channel in (Channel.PUSH, Channel.WEBSOCKET):
            assert "watch_url | short" in DEFAULTS[(event_type, channel)]["body"], (event_type, channel)
        email = DEFAULTS[(event_type, Channel.EMAIL)]
        assert "| short" not in email["body_text"] + email["body_html"]  # email keeps SES's own click tracking
    for (event_type, _), parts in DEFAULTS.items():
        if EVENT_TYPES[event_type.removesuffix(".digest")].category.value == "account":
            assert not any("| short" in str(v) for v in parts.values()), event_type  # never tracked


# -- the worker ----------------------------------------------------------------------------------------------------


@dataclass
class MemoryLinks:
    links: dict[str, ShortLink] = field(default_factory=dict)
    writes: int = 0
    errors: list[Exception] = field(default_factory=list)

    def put_links(self, links: Sequence[ShortLink]) -> None:
        if self.errors:
            raise self.errors.pop(0)
        self.writes += len(links)
        self.links.update({link.code: link for link in links})

    def create(self, link: ShortLink) -> bool:
        self.writes += 1
        if link.code in self.links:
            return False
        self.links[link.code] = link
        return True

    def get(self, code: str) -> Optional[ShortLink]:
        return self.links.get(code)

    def count_click(self, code: str, at: str) -> bool:
        link = self.links.get(code)
        if link is None:
            return False
        self.writes += 1
        self.links[code] = replace(link, clicks=link.clicks + 1, first_click_at=link.first_click_at or at)
        return True


@dataclass
class MemoryClicks:
    """The job side of a click, as the status store keeps it: a counter per job and per link, the first click."""

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    writes: int = 0

    def record_click(self, job_id: str, code: str, at: str, link: Optional[str]) -> Optional[dict[str, str]]:
        self.writes += 1
        item = self.jobs.setdefault(job_id, {"clicks": 0, "links": {}, "first": None})
        item["clicks"] += 1
        item["links"][code] = item["links"].get(code, 0) + 1
        first = item["first"] is None
        item["first"] = item["first"] or (at, link)
        return {"job_id": job_id, "event_id": "e1", "event_type": "new_film", "channel": "email"} if first else None

    def forget_first_click(self, job_id: str, at: str) -> None:
        item = self.jobs.get(job_id)
        if item is not None and item["first"] is not None and item["first"][0] == at:
            item["first"] = None

    def link_clicks(self, job_id: str, code: str) -> int:
        return int(self.jobs.get(job_id, {}).get("links", {}).get(code, 0))


@dataclass
class MemoryPush:
    sent: list[tuple[str, RenderedMessage]] = field(default_factory=list)

    def send_push(self, endpoint: str, message: RenderedMessage, data: dict[str, Any]) -> str:
        self.sent.append((endpoint, message))
        return f"push-{len(self.sent)}"


_checks: tuple[LinkStore, ClickStore, PushSender] = (MemoryLinks(), MemoryClicks(), MemoryPush())


class World(DeliveryWorld):
    push: MemoryPush
    link_store: MemoryLinks

    def __init__(self) -> None:
        users = {"u1": UserProfile("u1", email="u1@example.com", push_endpoints=("arn:endpoint/1",))}
        super().__init__(T0, users, max_attempts=None, rand=random.random)
        self.push = MemoryPush()
        self.short_links = ShortLinks(lambda: KEY, BASE)
        self.link_store = MemoryLinks()
        self.wire()


def test_a_push_carries_a_short_link_stored_once_per_render_with_its_job_user_and_expiry() -> None:
    world = World()
    job = _job()
    assert world.service.handle(job) is Outcome.SENT
    ((_, message),) = world.push.sent
    code = derive_code(KEY.encode(), job.job_id, job.payload["watch_url"])
    assert f"{BASE}/l/{code}" in (message.body or "")
    assert job.payload["watch_url"] not in (message.body or "")
    assert world.link_store.writes == 1  # one write at render
    assert world.link_store.links[code] == ShortLink(
        code, job.payload["watch_url"], iso_of(T0 + JOB_RETENTION), job_id=job.job_id, user_id="u1"
    )
    assert world.store.jobs[job.job_id]["history"][-1].detail["short_links"] == 1
    # A redelivered copy after a crash before SENT renders again: the same code, one more write, no second link.
    world.store.jobs[job.job_id].update(status=Status.RETRYING)
    assert world.service.handle(job.model_copy(update={"attempt": 1})) is Outcome.SENT
    assert (world.link_store.writes, len(world.link_store.links)) == (2, 1)
    assert code in (world.push.sent[-1][1].body or "")


def iso_of(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_a_link_store_that_is_down_retries_the_job_instead_of_sending_a_dead_link() -> None:
    world = World()
    world.link_store.errors.append(StoreUnavailable("cannot store links: throttled"))
    job = _job()
    assert world.service.handle(job) is Outcome.RETRYING
    assert world.push.sent == [] and world.store.jobs[job.job_id]["status"] is Status.RETRYING


def test_an_inline_in_app_job_without_short_links_in_its_template_stores_none() -> None:
    world = World()
    job = _job("review_liked", contact=Contact(push_endpoints=["arn:endpoint/1"]))
    assert world.service.handle(job) is Outcome.SENT
    assert world.link_store.writes == 0 and world.link_store.links == {}


def test_an_unusable_key_list_retries_only_the_jobs_whose_template_makes_a_short_link() -> None:
    world = World()
    world.short_links = ShortLinks(lambda: "not 32 bytes", BASE)
    world.wire()
    assert world.service.handle(_job("review_liked")) is Outcome.SENT  # its template shortens nothing
    linked = _job()
    assert world.service.handle(linked) is Outcome.RETRYING
    assert "at least 32" in str(world.store.jobs[linked.job_id]["error"]) and len(world.push.sent) == 1


# -- following a link ----------------------------------------------------------------------------------------------


def _service(links: MemoryLinks, clicks: MemoryClicks, now: datetime = T0) -> LinkService:
    return LinkService(links, clicks, lambda: now, BASE)


def test_the_first_click_is_one_write_and_later_ones_only_count_head_and_scanners_redirect_without_counting() -> None:
    links, clicks = MemoryLinks(), MemoryClicks()
    link = ShortLink("A" * 16, "https://example.com/watch", iso_of(T0 + timedelta(days=1)), job_id="j1", user_id="u1")
    links.put_links([link])
    service = _service(links, clicks)
    assert service.follow(link.code, count=False) == link.url  # HEAD or a scanner: redirected, not counted
    assert clicks.jobs == {}
    for n in range(3):
        assert service.follow(link.code, count=True) == link.url
        assert clicks.writes == n + 1  # one write a click, the first one too
    assert clicks.jobs["j1"]["clicks"] == 3 and clicks.jobs["j1"]["links"] == {link.code: 3}
    assert clicks.jobs["j1"]["first"] == (iso_of(T0), "https://example.com/watch")
    view = service.get(link.code, caller_id="reader", read_all=True)
    assert (view["clicks"], view["job_id"], view["short_url"]) == (3, "j1", f"{BASE}/l/{link.code}")


def test_unknown_malformed_and_expired_codes_lead_nowhere() -> None:
    links, clicks = MemoryLinks(), MemoryClicks()
    expired = ShortLink("B" * 16, "https://example.com/", iso_of(T0 - timedelta(seconds=1)), job_id="j1")
    links.put_links([expired])
    service = _service(links, clicks)
    for code in ("C" * 16, "short", "../../etc/passwd", "B" * 16, "A" * 2000):
        assert service.follow(code, count=True) is None, code
    assert clicks.writes == 0


def test_a_stored_link_to_anything_but_http_is_never_followed() -> None:
    links = MemoryLinks()
    links.put_links([ShortLink("D" * 16, "javascript:alert(1)", iso_of(T0 + timedelta(days=1)))])
    assert _service(links, MemoryClicks()).follow("D" * 16, count=True) is None


def test_a_link_made_through_the_api_counts_its_own_clicks_and_is_shown_to_its_maker_only() -> None:
    links = MemoryLinks()
    service = _service(links, MemoryClicks())
    made = service.create("https://example.com/sale", ttl_days=7, caller_id="maker")
    assert made["url"] == "https://example.com/sale" and made["expires_at"] == iso_of(T0 + timedelta(days=7))
    assert made["short_url"] == f"{BASE}/l/{made['code']}" and CODE_PATTERN.fullmatch(made["code"])
    assert links.writes == 1
    for _ in range(2):
        service.follow(made["code"], count=True)
    assert service.get(made["code"], caller_id="maker", read_all=False)["clicks"] == 2
    assert service.get(made["code"], caller_id="reader", read_all=True)["clicks"] == 2
    with pytest.raises(Exception, match="not found"):
        service.get(made["code"], caller_id="someone else", read_all=False)
    with pytest.raises(BadTarget):
        service.create("javascript:alert(1)", ttl_days=7, caller_id="maker")


def test_a_click_the_store_cannot_count_still_redirects() -> None:
    class Down(MemoryClicks):
        def record_click(self, job_id: str, code: str, at: str, link: Optional[str]) -> Optional[dict[str, str]]:
            raise StoreUnavailable("throttled")

    links = MemoryLinks()
    links.put_links([ShortLink("E" * 16, "https://example.com/", iso_of(T0 + timedelta(days=1)), job_id="j1")])
    assert _service(links, Down()).follow("E" * 16, count=True) == "https://example.com/"


def _clicked_endpoint() -> tuple[WebhookEmitter, MemoryQueue]:
    endpoints = MemoryWebhookStore()
    endpoints.put(
        WebhookEndpoint("wh_clicks", "https://hooks.example.com/", ("notification.clicked",), ("whsec_x",), "t", "t")
    )
    queue = MemoryQueue()
    return WebhookEmitter(endpoints, queue, lambda: T0), queue


def test_a_jobs_first_click_emits_notification_clicked_once_and_later_clicks_nothing() -> None:
    links, clicks = MemoryLinks(), MemoryClicks()
    expires = iso_of(T0 + timedelta(days=1))
    links.put_links(
        [
            ShortLink("F" * 16, "https://example.com/a", expires, job_id="j1", user_id="u1"),
            ShortLink("G" * 16, "https://example.com/b", expires, job_id="j1", user_id="u1"),
            ShortLink("H" * 16, "https://example.com/c", expires, created_by="maker"),  # no job: nothing to tell
        ]
    )
    emitter, queue = _clicked_endpoint()
    service = LinkService(links, clicks, lambda: T0, BASE, webhooks=emitter)
    service.follow("F" * 16, count=False)  # HEAD or a scanner: not a click
    assert queue.sent == []
    for code in ("F" * 16, "F" * 16, "G" * 16, "H" * 16):
        assert service.follow(code, count=True) is not None
    tasks = [t for t, _ in queue.sent if isinstance(t, WebhookTask)]
    assert [(t.webhook_id, t.message_type, t.message_id, t.data) for t in tasks] == [
        (
            "wh_clicks",
            "notification.clicked",
            message_id("wh_clicks", "notification.clicked", "j1#clicked"),
            {"job_id": "j1", "event_id": "e1", "event_type": "new_film", "user_id": "u1", "channel": "email"},
        )
    ]


def test_a_first_click_whose_message_cannot_be_queued_still_redirects_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    links, clicks = MemoryLinks(), MemoryClicks()
    links.put_links([ShortLink("F" * 16, "https://example.com/a", iso_of(T0 + timedelta(days=1)), job_id="j1")])
    emitter, queue = _clicked_endpoint()
    queue.fail = True
    service = LinkService(links, clicks, lambda: T0, BASE, webhooks=emitter)
    assert service.follow("F" * 16, count=True) == "https://example.com/a"
    assert clicks.jobs["j1"]["clicks"] == 1 and "was not told to the status webhooks" in caplog.text
    # The click is not the first any more, so the next one tells it, under the same id.
    queue.fail = False
    assert service.follow("F" * 16, count=True) == "https://example.com/a"
    (task,) = [t for t, _ in queue.sent if isinstance(t, WebhookTask)]
    assert task.message_id == message_id("wh_clicks", "notification.clicked", "j1#clicked")
    assert clicks.jobs["j1"]["clicks"] == 2


# -- the job's history ---------------------------------------------------------------------------------------------


def test_the_first_click_shows_in_the_history_in_its_place_in_time_with_the_status_the_job_had() -> None:
    from notify.adapters.dynamodb.jobs import _job as job_record

    history = [
        {"status": "ACCEPTED", "at": "2026-11-24T12:00:00.000Z", "attempt": 0},
        {"status": "SENT", "at": "2026-11-24T12:00:01.000Z", "attempt": 0},
        {"status": "DELIVERED", "at": "2026-11-24T12:00:09.000Z", "attempt": 0, "detail": {"feedback": "Delivery"}},
    ]
    item = {
        "job_id": "j1",
        "event_id": "e1",
        "event_type": "new_film",
        "user_id": "u1",
        "channel": "email",
        "status": "DELIVERED",
        "created_at": "2026-11-24T12:00:00.000Z",
        "updated_at": "2026-11-24T12:00:09.000Z",
        "history": history,
        "clicks": 2,
        "first_click": {"at": "2026-11-24T12:00:05.000Z", "link": "https://example.com/films/1"},
    }
    record = job_record(item)
    assert [h.status.value for h in record.history] == ["ACCEPTED", "SENT", "SENT", "DELIVERED"]
    clicked = record.history[2]
    assert clicked.detail == {"feedback": "CLICKED", "link": "https://example.com/films/1"}
    assert (clicked.at, record.clicks, record.history_omitted) == ("2026-11-24T12:00:05.000Z", 2, 0)
    full = job_record({**item, "history": [history[0]] * 100, "history_omitted": 3})
    assert len(full.history) == 100 and full.history_omitted == 4  # the cap holds: counted as left out
    assert job_record({k: v for k, v in item.items() if k != "first_click"}).history == record.history[:2] + [
        record.history[3]
    ]


def test_without_a_configured_base_the_api_names_links_under_the_host_the_request_came_to() -> None:
    service = LinkService(MemoryLinks(), MemoryClicks(), lambda: T0, None)
    made = service.create("https://example.com/", ttl_days=1, caller_id="maker", base="https://abc.execute-api.x")
    assert made["short_url"] == f"https://abc.execute-api.x/l/{made['code']}"
    configured = _service(MemoryLinks(), MemoryClicks()).create("https://example.com/", ttl_days=1, caller_id="m")
    assert configured["short_url"].startswith(f"{BASE}/l/")
