"""The operator console (/admin/) in headless Chromium against the local stack, as an operator uses it.

Each test also takes a screenshot of the pages it visits at 1366×768. ``make screenshots`` keeps them in
docs/console/, which docs/CONSOLE.md shows (CONSOLE_SCREENSHOTS names the folder); otherwise they go to a
temporary folder, so a test run leaves the working tree as it found it.
The browser runs in Europe/Berlin, so the times it shows are not UTC (the title of each says UTC).
"""

from __future__ import annotations

import os
import re
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from notify.catalog import EVENT_TYPES

from local.launch import StackProcess

from .browser import chromium, new_context

pytestmark = pytest.mark.e2e
SHOTS = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tempfile.mkdtemp(prefix="console-screenshots-"))
VIEWPORT = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(live_stack: StackProcess, browser: Any) -> Iterator[Any]:
    """A fresh tab (its own sessionStorage) on the console; no script error may happen in it."""
    context = new_context(browser, viewport=VIEWPORT, timezone_id="Europe/Berlin", locale="en-GB")
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(f"{live_stack.api}/admin/")
    yield tab
    context.close()
    assert errors == [], errors


def enter_key(page: Any, key: str = "local-dev-key") -> None:
    from playwright.sync_api import expect

    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Use key").click()
    if key == "local-dev-key":
        expect(page.locator("#key-state")).to_have_text("Key accepted (admin)")


def key_with(stack: StackProcess, *scopes: str) -> str:
    """A fresh API key with only ``scopes``, stored in the running stack's key table."""
    import boto3
    from notify.adapters.dynamodb.api_keys import DynamoApiKeyStore
    from notify.clock import iso, utc_now
    from notify.services.access import hash_key

    from local.events import REGION
    from local.infra import STATE_FILE, StackState

    state = StackState.from_json((Path(stack.env["LOCAL_STATE_DIR"]) / STATE_FILE).read_text())
    client = boto3.client(
        "dynamodb",
        endpoint_url=stack.moto,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    key = f"console-browser-{uuid.uuid4().hex}"
    table = state.infra.tables["ApiKeysTable"]
    DynamoApiKeyStore(client, table).put(hash_key(key), "console browser test", list(scopes), iso(utc_now()))
    return key


def shot(page: Any, name: str) -> None:
    """The visible part of the page, as a laptop shows it, for docs/CONSOLE.md."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#progress").wait_for(state="hidden")
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def until(check: Callable[[], Any], timeout: float = 120.0) -> Any:
    """``check()``'s first truthy answer; a ceiling of ``timeout`` s (the worker shares a loaded machine)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s")
        time.sleep(0.3)


def job_status(stack: StackProcess, job_id: str, wanted: str) -> dict[str, Any]:
    # SES's feedback moves a sent email on 0.3 s later (the local stack publishes it, as SES would), which a poll
    # of a loaded stack can miss: DELIVERED and the others say SENT was reached.
    reached = {wanted, *(("DELIVERED", "BOUNCED", "COMPLAINED") if wanted == "SENT" else ())}

    def check() -> Any:
        status, job = stack.call("GET", f"/api/v1/notifications/{job_id}")
        return job if status == 200 and job["status"] in reached else None

    return dict(until(check))


def test_an_address_with_a_malformed_escape_is_not_found(page: Any) -> None:
    from playwright.sync_api import expect

    enter_key(page)
    page.goto(page.url.split("#")[0] + "#/notifications/%E0%A4%A")  # no page error (the fixture checks)
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    page.get_by_role("link", name="Overview").last.click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def test_the_key_prompt_and_a_wrong_key_shows_a_clear_message(page: Any) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name="Notification console")).to_be_visible()
    expect(page.get_by_text("Enter an API key")).to_be_visible()
    shot(page, "key")
    enter_key(page, "not-a-key")
    notice = page.locator("#notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("The API key was refused")
    expect(notice).to_contain_text("Enter a valid key")
    expect(page.locator("#key-state")).to_have_text("No key")
    expect(page.get_by_label("API key")).to_be_focused()
    assert page.evaluate("sessionStorage.length") == 0  # a refused key is not kept
    shot(page, "wrong-key")
    enter_key(page)
    assert page.evaluate("Object.values(sessionStorage)") == ["local-dev-key"]
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    shot(page, "overview")


@pytest.mark.timeout(600)  # 120 s for the job, then a page's worth of 30 s and 60 s waits on the API
def test_find_a_sent_notification_by_job_id_and_see_sent_in_its_timeline(page: Any, live_stack: StackProcess) -> None:
    from playwright.sync_api import expect

    user = "demo-user-31"
    url = f"https://example.com/confirm/{uuid.uuid4().hex[:8]}"
    status, accepted = live_stack.call(
        "POST",
        "/api/v1/events",
        {"event_type": "user_registered", "payload": {"confirmation_url": url}, "recipients": {"user_ids": [user]}},
    )
    assert status == 202, accepted
    (job_id,) = accepted["job_ids"]
    job_status(live_stack, job_id, "SENT")

    enter_key(page)
    page.get_by_role("link", name="Notifications").click()
    page.get_by_label("Job id").fill(job_id)
    shot(page, "find")
    page.get_by_role("button", name="Find notification").click()
    expect(page).to_have_url(re.compile(f"#/notifications/{job_id}$"))
    timeline = page.get_by_role("table").filter(has_text="Every transition")
    expect(timeline.get_by_role("row").filter(has_text="SENT")).to_have_count(1)
    expect(timeline.get_by_role("row").filter(has_text="ACCEPTED")).to_have_count(1)
    # The email as rendered: the job's template version with its payload.
    rendered = page.get_by_role("region", name="Message as rendered")
    expect(rendered).to_contain_text("user_registered.email.en v1")
    expect(rendered.get_by_title("The HTML part, rendered")).to_be_visible()
    assert url in rendered.locator("pre.text").first.inner_text()
    when = page.locator("time").first
    assert when.get_attribute("title").endswith(" UTC")  # local time shown, UTC on hover
    shot(page, "notification")

    page.get_by_role("link", name=accepted["event_id"]).click()
    expect(page.get_by_role("heading", name="Event")).to_be_visible()
    expect(page.get_by_role("link", name=job_id)).to_be_visible()
    shot(page, "event")
    page.get_by_role("link", name=user).first.click()
    expect(page.get_by_role("heading", name=f"User {user}")).to_be_visible()
    expect(page.get_by_role("link", name=job_id)).to_be_visible()
    shot(page, "user")

    # A key that may read notifications but is not an admin's sees the timeline, and a note instead of the
    # message (it holds the event's payload: here a confirmation link).
    enter_key(page, key_with(live_stack, "notifications:read"))
    expect(page.locator("#key-state")).to_contain_text("without the admin scope")
    page.goto(f"{live_stack.api}/admin/#/notifications/{job_id}")
    expect(timeline.get_by_role("row").filter(has_text="SENT")).to_have_count(1)
    expect(rendered).to_contain_text("shown to admin keys only")
    expect(rendered.locator("iframe")).to_have_count(0)
    assert url not in page.content()


def test_a_scheduled_job_shows_when_it_is_due_in_the_browsers_zone(page: Any, live_stack: StackProcess) -> None:
    from playwright.sync_api import expect

    due = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    status, accepted = live_stack.call(
        "POST",
        "/api/v1/events",
        {
            "event_type": "user_registered",
            "payload": {"confirmation_url": "https://example.com/confirm/later"},
            "recipients": {"user_ids": ["demo-user-32"]},
            "send_after": due.isoformat().replace("+00:00", "Z"),
        },
    )
    assert status == 202, accepted
    (job_id,) = accepted["job_ids"]
    job_status(live_stack, job_id, "SCHEDULED")

    enter_key(page)
    page.goto(f"{live_stack.api}/admin/#/notifications/{job_id}")
    shown = page.locator("ul.detail li").filter(has_text="due_at").locator("time")
    expect(shown).to_have_attribute("title", due.strftime("%Y-%m-%d %H:%M:%S UTC"))
    berlin = due.astimezone(ZoneInfo("Europe/Berlin"))
    expect(shown).to_contain_text(berlin.strftime("%H:%M:%S"))


def test_a_template_previews_as_you_type_and_saves_a_new_version(page: Any, live_stack: StackProcess) -> None:
    from playwright.sync_api import expect

    locale = f"zz-{uuid.uuid4().hex[:6]}"  # a locale no event asks for, so no other test renders with it
    status, created = live_stack.call(
        "POST",
        "/api/v1/templates",
        {"event_type": "new_film", "channel": "email", "locale": locale, "subject": "{{ title }}", "body_text": "hi"},
    )
    assert status == 201, created
    enter_key(page)
    page.get_by_role("link", name="Templates").click()
    chip = page.get_by_role("link", name=created["template_id"])
    expect(chip).to_be_visible()
    # Saved when: in the browser's zone, and in UTC.
    assert re.fullmatch(r"v1, saved .+ \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)", chip.get_attribute("title") or "")
    shot(page, "templates")
    page.get_by_role("link", name=created["template_id"]).click()
    preview = page.get_by_role("region", name="Preview")
    expect(preview.locator(".subject").first).to_have_text("Dune")

    page.get_by_label("Subject").fill("{{ title }}: out on {{ release_date }}")
    expect(preview.locator(".subject").first).to_have_text("Dune: out on 2026-12-01")  # rendered by the API
    text = page.get_by_label("Text body")
    text.fill("Hello {{ user.first_name }},\n{% if title %}{{ title }\n{% endif %}")
    problems = page.locator(f"#{text.get_attribute('id')}-errors")
    expect(problems.get_by_role("button", name="Line 2")).to_be_visible()
    expect(text).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".gutter .bad")).to_have_text(re.compile(r"^\s*2\s*$"))
    expect(page.locator(".preview-state")).to_contain_text("problem")
    shot(page, "template-error")
    text.fill("Hello {{ user.first_name }},\n{{ title }} is out: {{ watch_url }}")
    expect(preview.locator("pre.text").first).to_have_text("Hello Ada,\nDune is out: https://example.com/watch/f-1")
    expect(text).to_have_attribute("aria-invalid", "false")
    # The HTML part in its frame: the email's inline and <style> styles apply, its scripts do not run, and the
    # frame's origin is opaque (the console's sessionStorage, with the key, is out of its reach).
    page.get_by_label("HTML body").fill(
        '<style>p { color: rgb(1, 2, 3) }</style><p style="font-size:small">{{ title }}</p>'
        '<script>document.body.dataset.ran = "yes"</script><img src="data:," onerror="document.body.dataset.ran = 1">'
    )
    html = preview.frame_locator('iframe[title="The HTML part, rendered"]').locator("p")
    expect(html).to_have_text("Dune")
    expect(html).to_have_css("font-size", "13px")
    expect(html).to_have_css("color", "rgb(1, 2, 3)")
    frame = next(f for f in page.frames if f.url.endswith("/admin/frame.html"))
    assert frame.evaluate("document.body.dataset.ran") is None
    assert frame.evaluate("window.origin") == "null"
    assert frame.evaluate("(() => { try { return sessionStorage.length } catch (e) { return e.name } })()") == (
        "SecurityError"
    )
    shot(page, "template")
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.get_by_text("Saved as version 2.")).to_be_visible()
    status, stored = live_stack.call("GET", f"/api/v1/templates/{created['template_id']}")
    assert (stored["version"], stored["subject"]) == (2, "{{ title }}: out on {{ release_date }}")
    expect(page.get_by_role("region", name="Versions").get_by_role("row")).to_have_count(3)  # a header and two


def test_throttle_and_digest_rules_are_set_shown_and_removed_on_the_templates_page(
    page: Any, live_stack: StackProcess
) -> None:
    from playwright.sync_api import expect

    enter_key(page)
    page.get_by_role("link", name="Templates").click()
    rules = page.get_by_role("region", name="Throttle rules")
    expect(rules.get_by_text("No throttle rules")).to_be_visible()
    rules.get_by_label("Category").select_option("social")
    rules.get_by_label("Channel").select_option("push")
    rules.get_by_label("At most").fill("0")
    rules.get_by_role("button", name="Set rule").click()
    expect(rules.get_by_role("alert")).to_contain_text("greater than or equal to 1")  # the API's field error
    rules.get_by_label("At most").fill("3")
    rules.get_by_label("Per (seconds)").fill("3600")
    rules.get_by_role("button", name="Set rule").click()
    expect(rules.get_by_text("Set: at most 3 social push per 1 hour for each user.")).to_be_visible()
    expect(rules.get_by_role("row", name=re.compile("social push 3 per 1 hour"))).to_be_visible()
    assert live_stack.call("GET", "/api/v1/throttle-rules/social?channel=push")[1]["period_seconds"] == 3600
    shot(page, "throttle-rules")
    rules.get_by_role("button", name="Remove the social push rule").click()
    expect(rules.get_by_text("No throttle rules")).to_be_visible()
    assert live_stack.call("GET", "/api/v1/throttle-rules")[1]["items"] == []
    # The digest rules beside it: an account event is not offered, a key field the payload lacks is the API's 422.
    digests = page.get_by_role("region", name="Digest rules")
    expect(digests.get_by_text("No digest rules")).to_be_visible()
    expect(digests.get_by_label("Event type").locator("option[value=password_reset]")).to_have_count(0)
    digests.get_by_label("Event type").select_option("review_liked")
    digests.get_by_label("push").check()
    digests.get_by_label("Window (seconds)").fill("1200")
    digests.get_by_label("Split by (payload fields)").fill("reviewer")
    digests.get_by_role("button", name="Set digest rule").click()
    expect(digests.get_by_role("alert")).to_contain_text("not in review_liked's payload")
    digests.get_by_label("Split by (payload fields)").fill("review_id")
    digests.get_by_role("button", name="Set digest rule").click()
    expect(
        digests.get_by_role("row", name=re.compile("review_liked email, push 20 minutes after the first"))
    ).to_be_visible()
    rule = live_stack.call("GET", "/api/v1/digest-rules/review_liked")[1]
    assert (rule["channels"], rule["window"], rule["key"]) == (["email", "push"], {"seconds": 1200}, ["review_id"])
    digests.get_by_role("button", name="Remove the review_liked digest rule").click()
    expect(digests.get_by_text("No digest rules")).to_be_visible()


def test_a_webhook_is_created_its_secret_shown_once_listed_and_deleted(page: Any, live_stack: StackProcess) -> None:
    from notify.webhooks import ALL, EVENT_TYPES
    from playwright.sync_api import expect

    url = f"http://127.0.0.1:9/console-{uuid.uuid4().hex[:8]}"  # loopback over http: the local stack's allowance
    enter_key(page)
    page.get_by_role("link", name="Webhooks").click()
    new = page.get_by_role("region", name="New webhook")
    boxes = new.get_by_role("group", name="Events").get_by_role("checkbox")
    assert boxes.evaluate_all("all => all.map((b) => b.value)") == [ALL, *EVENT_TYPES]  # the service's types
    new.get_by_label("URL").fill(url)
    new.get_by_label("notification.bounced").check()
    new.get_by_label("notification.complained").check()
    new.get_by_label("Description").fill("CRM bounces")
    new.get_by_role("button", name="Create webhook").click()
    shown = page.get_by_role("region", name="Signing secret")
    expect(shown).to_contain_text("you won't see it again")
    secret = shown.locator("code").inner_text()
    assert secret.startswith("whsec_")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=url))
    expect(row).to_contain_text("notification.bounced, notification.complained")
    expect(row).to_contain_text("enabled")
    shot(page, "webhooks")
    (webhook,) = [w for w in live_stack.call("GET", "/api/v1/webhooks")[1]["items"] if w["url"] == url]
    assert "secret" not in webhook and webhook["description"] == "CRM bounces"

    row.get_by_role("link", name=url).click()  # its page: no secret, only Rotate secret makes a new one
    expect(page.get_by_role("heading", name=f"Webhook {url}")).to_be_visible()
    expect(page.get_by_text("No attempts yet")).to_be_visible()
    assert secret not in page.content()
    shot(page, "webhook")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("heading", name="Webhooks")).to_be_visible()
    expect(page.get_by_role("link", name=url)).to_have_count(0)
    assert secret not in page.content()  # the list shows it no more either


def test_a_webhook_is_tested_its_secret_rotated_disabled_enabled_and_its_events_edited(
    page: Any, live_stack: StackProcess
) -> None:
    from playwright.sync_api import expect

    url = f"http://127.0.0.1:9/console-{uuid.uuid4().hex[:8]}"  # nothing listens on port 9: each attempt a retry
    status, created = live_stack.call("POST", "/api/v1/webhooks", {"url": url, "events": ["notification.bounced"]})
    assert status == 201, created
    try:
        enter_key(page)
        page.get_by_role("link", name="Webhooks").click()
        page.get_by_role("link", name=url).click()
        state = page.locator(".facts")
        status_fact = state.locator("dt:text-is('Status') + dd")
        send_test = page.get_by_role("button", name="Send test")

        send_test.click()  # the worker takes it from the delay queue and tries it: refused, so a retry
        queued = page.get_by_text(re.compile(r"A webhook\.test message \(\S+\) is queued"))
        expect(queued).to_be_visible()
        message_id = re.search(r"\((\S+)\)", queued.inner_text())[1]  # type: ignore[index]
        deliveries = page.get_by_role("region", name="Deliveries")
        attempt = deliveries.get_by_role("row").filter(has_text=message_id)

        def attempted() -> bool:
            deliveries.get_by_role("button", name="Refresh").click()
            deliveries.locator(".pager-body:not([aria-busy])").wait_for()  # listed again
            return attempt.count() > 0

        until(attempted, timeout=60)
        expect(attempt.first).to_contain_text("webhook.test")
        expect(attempt.first.locator(".badge")).to_have_text("retry")

        said: list[str] = []

        def confirm(dialog: Any) -> None:
            said.append(dialog.message)
            dialog.accept()

        page.once("dialog", confirm)
        page.get_by_role("button", name="Rotate secret").click()
        rotated = page.get_by_role("region", name="New signing secret")
        expect(rotated).to_contain_text("you won't see it again")
        expect(rotated).to_contain_text("keeps signing beside the new one for 24 hours")
        secret = rotated.locator("code").inner_text()
        assert secret.startswith("whsec_") and secret != created["secret"], secret
        assert "24 hours" in said[0]

        page.get_by_role("button", name="Disable").click()
        expect(status_fact).to_have_text("disabled disabled by an operator")
        expect(send_test).to_be_disabled()
        assert live_stack.call("GET", f"/api/v1/webhooks/{created['webhook_id']}")[1]["disabled_reason"] == "by_user"
        page.get_by_role("button", name="Enable").click()
        expect(status_fact).to_have_text("enabled")
        expect(send_test).to_be_enabled()

        edit = page.get_by_role("region", name="Edit")
        edit.get_by_label("notification.delivered").check()
        edit.get_by_role("button", name="Save changes").click()
        expect(edit.get_by_text("Saved.")).to_be_visible()
        expect(state.locator("dt:text-is('Events') + dd")).to_have_text("notification.bounced, notification.delivered")
        expect(rotated).to_be_visible()  # the other actions leave the new secret in place, until the page is left
        stored = live_stack.call("GET", f"/api/v1/webhooks/{created['webhook_id']}")[1]
        assert (stored["status"], stored["events"]) == ("enabled", ["notification.bounced", "notification.delivered"])
    finally:
        live_stack.call("DELETE", f"/api/v1/webhooks/{created['webhook_id']}")  # its queued retries are dropped


def test_a_campaign_shows_its_next_fire_times_as_you_type_and_pauses(page: Any, live_stack: StackProcess) -> None:
    from playwright.sync_api import expect

    enter_key(page)
    page.get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign").click()
    name = f"Weekday digest {uuid.uuid4().hex[:4]}"
    page.get_by_label("Name").fill(name)
    page.get_by_label("Cron").fill("99 * * * *")
    expect(page.get_by_text("is not a valid cron expression")).to_be_visible()
    # The error and the hint both describe the field (a screen reader reads both).
    cron = page.get_by_label("Cron")
    expect(cron).to_have_accessible_description(re.compile(r"is not a valid cron expression.*minute hour"))
    assert len((cron.get_attribute("aria-describedby") or "").split()) == 2
    page.get_by_label("Cron").fill("30 8 * * 1-5")
    page.get_by_label("Time zone").fill("America/New_York")
    schedule = page.get_by_role("table", name="Next five fire times")
    times = schedule.locator("tbody td:nth-child(2)")  # in the campaign's zone; the next column in the browser's
    expect(times).to_have_count(5)
    expect(schedule.get_by_role("columnheader", name="In America/New_York")).to_be_visible()
    assert all(re.match(r"(Mon|Tue|Wed|Thu|Fri), .*08:30$", t) for t in times.all_inner_texts()), (
        times.all_inner_texts()
    )
    expect(page.get_by_text("is not a valid cron expression")).to_have_count(0)
    shot(page, "campaign-new")
    page.get_by_role("button", name="Create campaign").click()
    expect(page).to_have_url(re.compile(r"#/campaigns/[0-9a-f-]{36}$"))
    campaign_id = page.url.rsplit("/", 1)[1]
    expect(page.locator(".facts .badge").first).to_have_text("ACTIVE")
    try:
        page.get_by_role("button", name="Pause").click()
        expect(page.locator(".facts .badge").first).to_have_text("PAUSED")
        assert live_stack.call("GET", f"/api/v1/campaigns/{campaign_id}")[1]["status"] == "PAUSED"
        page.get_by_role("button", name="Resume").click()
        expect(page.locator(".facts .badge").first).to_have_text("ACTIVE")
        shot(page, "campaign")
        page.get_by_role("link", name="All campaigns").click()
        expect(page.get_by_role("link", name=name)).to_be_visible()
        shot(page, "campaigns")
    finally:
        live_stack.call("DELETE", f"/api/v1/campaigns/{campaign_id}")


def test_a_key_that_may_write_campaigns_but_not_read_templates_creates_one(page: Any, live_stack: StackProcess) -> None:
    from playwright.sync_api import expect

    enter_key(page, key_with(live_stack, "campaigns:read", "campaigns:write"))
    expect(page.locator("#key-state")).to_contain_text("without the admin scope")
    page.goto(f"{live_stack.api}/admin/#/campaigns/new")
    page.get_by_label("Name").fill(f"Writer's campaign {uuid.uuid4().hex[:4]}")
    # The event types are any valid key's to read: the list and the sample payload are there.
    expect(page.get_by_label("Event type", exact=True)).to_have_value("new_film")
    expect(page.get_by_label("Payload (JSON, validated by the event type)")).to_have_value(re.compile('"watch_url"'))
    expect(page.get_by_role("alert")).to_have_count(0)
    page.get_by_role("button", name="Create campaign").click()
    expect(page).to_have_url(re.compile(r"#/campaigns/[0-9a-f-]{36}$"))
    live_stack.call("DELETE", f"/api/v1/campaigns/{page.url.rsplit('/', 1)[1]}")


@pytest.mark.timeout(600)  # three waits of 120 s for the worker, two of 60 s for the redrives, the page's own
def test_redrive_a_dead_letter(page: Any, live_stack: StackProcess) -> None:
    from playwright.sync_api import expect

    ghost = f"ghost-{uuid.uuid4().hex[:6]}"  # the Auth service does not know them: a permanent failure
    status, accepted = live_stack.call(
        "POST",
        "/api/v1/events",
        {
            "event_type": "password_reset",
            "payload": {"reset_url": "https://example.com/r/1", "expires_in_minutes": 30},
            "recipients": {"user_ids": [ghost]},
        },
    )
    assert status == 202, accepted
    (job_id,) = accepted["job_ids"]
    job_status(live_stack, job_id, "FAILED")

    enter_key(page)
    page.get_by_role("link", name="DLQ").click()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=job_id))
    expect(row).to_contain_text("permanent_error")
    expect(row).to_contain_text(f"user {ghost} does not exist")
    row.get_by_role("checkbox").check()
    shot(page, "dlq")
    # Chosen letters are looked for among as many as the API reads in a call (its default is 100 of the queue).
    with page.expect_request(re.compile(r"/api/v1/dlq/redrive$")) as sent:
        page.get_by_role("button", name="Redrive selected (1)").click()
    assert sent.value.post_data_json == {"job_ids": [job_id], "limit": 1000}
    expect(page.get_by_text(f"Redriven: 1 ({job_id})")).to_be_visible(timeout=60_000)

    def redriven(times: int) -> Callable[[], Any]:
        def check() -> Any:
            job = live_stack.call("GET", f"/api/v1/notifications/{job_id}")[1]
            if job["status"] != "FAILED":
                return None
            return sum(1 for entry in job["history"] if (entry.get("detail") or {}).get("redrive")) >= times

        return check

    until(redriven(1))  # the worker took it again, with a fresh retry budget (and failed it again: still a ghost)

    # The notification's own Redrive button asks the same way.
    page.goto(f"{live_stack.api}/admin/#/notifications/{job_id}")
    with page.expect_request(re.compile(r"/api/v1/dlq/redrive$")) as sent:
        page.get_by_role("button", name="Redrive", exact=True).click()
    assert sent.value.post_data_json == {"job_ids": [job_id], "limit": 1000}
    expect(page.get_by_text("Queued again with a fresh retry budget")).to_be_visible(timeout=60_000)
    until(redriven(2))


def test_a_segment_takes_user_ids_from_a_csv_file(page: Any) -> None:
    from playwright.sync_api import expect

    segment = f"csv-{uuid.uuid4().hex[:6]}"
    enter_key(page)
    page.get_by_role("link", name="Segments").click()
    page.get_by_label("Segment id").fill(segment)
    page.get_by_label("Name").fill("From a CSV")
    page.get_by_role("button", name="Create segment").click()
    expect(page.get_by_role("heading", name=f"Segment {segment}")).to_be_visible()
    expect(page.locator("#segment-size")).to_have_text("0")
    rows = "user_id\n" + "\n".join(f'"demo-user-{n}",x' for n in range(1, 26)) + "\ndemo-user-1\n\n"
    # RFC 4180: separators and doubled quotes inside a quoted first field, and quoted fields after it.
    rows += '"Smith, Ada ""42""";x\r\n"demo-user-26"\t"a note, with; separators"\n'
    parsed = page.evaluate(
        "async (text) => (await import(new URL('segments.js', document.baseURI).href)).parseCsv(text)", rows
    )
    assert parsed == [*(f"demo-user-{n}" for n in range(1, 26)), 'Smith, Ada "42"', "demo-user-26"], parsed
    page.get_by_label("CSV file of user ids").set_input_files(
        files=[{"name": "users.csv", "mimeType": "text/csv", "buffer": rows.encode()}]
    )
    expect(page.get_by_text("27 distinct user ids in users.csv.")).to_be_visible()
    page.get_by_role("button", name="Add these users").click()
    expect(page.locator("#segment-size")).to_have_text("27")
    expect(page.get_by_text("The segment now has 27 users.")).to_be_visible()
    shot(page, "segment")
    page.get_by_role("link", name="All segments").click()
    expect(page.get_by_role("row").filter(has_text=segment)).to_contain_text("27")
    shot(page, "segments")


# A 1×1 transparent PNG: what a tracking pixel looks like.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


class ImageHost:
    """A remote image host on 127.0.0.1 over HTTPS (a self-signed certificate made here): every request it gets is
    in ``requests``, so a test can tell whether the console fetched an email's image."""

    def __init__(self, directory: Path) -> None:
        self.requests: list[str] = []
        cert, key = _self_signed(directory)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        host = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                host.requests.append(self.path)
                self.send_response(200)
                self.send_header("content-type", "image/png")
                self.send_header("content-length", str(len(PIXEL)))
                self.end_headers()
                self.wfile.write(PIXEL)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _self_signed(directory: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, as PEM files in ``directory``."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


@pytest.fixture
def image_host(tmp_path: Path) -> Iterator[ImageHost]:
    host = ImageHost(tmp_path)
    yield host
    host.close()


@pytest.mark.timeout(600)  # 120 s for the job, then the page's waits
def test_an_emails_remote_images_load_only_when_the_operator_asks(
    live_stack: StackProcess, browser: Any, image_host: ImageHost
) -> None:
    from playwright.sync_api import expect

    locale = f"zz-{uuid.uuid4().hex[:6]}"  # a locale no other test renders with
    poster = f"{image_host.url}/poster.png?{locale}"
    template = {
        "event_type": "new_film",
        "channel": "email",
        "locale": locale,
        "subject": "{{ title }}",
        "body_text": "{{ title }}",
        "body_html": f'<p>{{{{ title }}}}</p><img alt="poster" src="{poster}">',
    }
    status, created = live_stack.call("POST", "/api/v1/templates", template)
    assert status == 201, created
    event = {
        "event_type": "new_film",
        "payload": {**EVENT_TYPES["new_film"].sample_payload(), "title": "Dune"},
        "recipients": {"user_ids": ["demo-user-32"]},
        "channels": ["email"],
        "locale": locale,
    }
    status, accepted = live_stack.call("POST", "/api/v1/events", event)
    assert status == 202, accepted
    (job_id,) = accepted["job_ids"]
    job_status(live_stack, job_id, "SENT")
    image_host.requests.clear()  # nothing of the worker's: it never fetches images, but be sure

    context = new_context(browser, viewport=VIEWPORT, ignore_https_errors=True)  # trusts the host's certificate
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{live_stack.api}/admin/")
        enter_key(page)
        page.goto(f"{live_stack.api}/admin/#/notifications/{job_id}")
        rendered = page.get_by_role("region", name="Message as rendered")
        shown = rendered.frame_locator('iframe[title="The HTML part, rendered"]')
        expect(shown.locator("p")).to_have_text("Dune")
        # The image element is in the frame and its load is over (refused by the frame's policy): had the browser
        # fetched it, the host would have had the request by now.
        frame = next(f for f in page.frames if f.url.endswith("/admin/frame.html"))
        until(lambda: frame.evaluate("(() => { const i = document.querySelector('img'); return i && i.complete })()"))
        assert image_host.requests == [], "the preview fetched a remote image before the operator asked"
        assert frame.evaluate("document.querySelector('img').naturalWidth") == 0
        button = rendered.get_by_role("button", name="Load remote images")
        expect(button).to_be_visible()
        button.scroll_into_view_if_needed()
        shot(page, "remote-images")
        button.click()
        until(lambda: image_host.requests)
        assert image_host.requests == [f"/poster.png?{locale}"]
        expect(shown.locator("p")).to_have_text("Dune")
        expect(shown.get_by_role("img", name="poster")).to_have_js_property("naturalWidth", 1)
        expect(rendered.get_by_role("button", name="Load remote images")).to_have_count(0)
    finally:
        context.close()
        live_stack.call("DELETE", f"/api/v1/templates/{created['template_id']}")
    assert errors == [], errors


def test_a_notification_shows_its_short_link_clicks_on_its_timeline(page: Any, live_stack: StackProcess) -> None:
    import http.client
    from urllib.parse import urlsplit

    from playwright.sync_api import expect

    user = f"console-links-{uuid.uuid4().hex[:8]}"
    payload = {"film_id": "f-2", "title": "Clicked", "release_date": "2026-12-01", "watch_url": "https://example.com/f"}
    event = {"event_type": "new_film", "payload": payload, "recipients": {"users": [{"user_id": user}]}}
    status, accepted = live_stack.call("POST", "/api/v1/events", {**event, "channels": ["websocket"]})
    assert status == 202, accepted
    (job_id,) = accepted["job_ids"]
    job_status(live_stack, job_id, "SENT")
    status, token = live_stack.call("POST", f"/api/v1/users/{user}/tokens")
    status, inbox = live_stack.call("GET", "/api/v1/inbox", key=None, authorization=f"Bearer {token['token']}")
    (item,) = inbox["items"]
    found = re.search(r"https?://[^\s/]+/l/[A-Za-z0-9_-]{16}", item["body"])
    assert found is not None, item
    link = urlsplit(found.group(0))
    for _ in range(2):  # a person's clicks (a browser's User-Agent), the redirect not followed
        connection = http.client.HTTPConnection(link.netloc, timeout=30)
        connection.request("GET", link.path, headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0"})
        assert connection.getresponse().status == 302
        connection.close()

    enter_key(page)
    page.goto(f"{live_stack.api}/admin/#/notifications/{job_id}")
    timeline = page.get_by_role("table").filter(has_text="Every transition")
    clicked = timeline.get_by_role("row").filter(has_text="CLICKED")
    expect(clicked).to_have_count(1)
    expect(clicked).to_contain_text("https://example.com/f")
    expect(page.locator("dl.facts dt", has_text="Clicks").locator("xpath=following-sibling::dd[1]")).to_have_text("2")
    clicked.scroll_into_view_if_needed()
    shot(page, "clicks")


def test_a_digests_page_lists_its_members_and_a_members_page_links_to_its_digest(
    page: Any, live_stack: StackProcess
) -> None:
    from playwright.sync_api import expect

    rule = {"channels": ["email"], "window": {"seconds": 10}, "key": []}  # the local stack's shortest window
    assert live_stack.call("PUT", "/api/v1/digest-rules/review_liked", rule)[0] == 200
    user = f"console-digest-{uuid.uuid4().hex[:8]}"
    members = []
    try:
        time.sleep(1.5)  # the local worker keeps the rules 1 s (PreferencesCacheSeconds)
        for liker in [f"Liker{i}" for i in range(22)]:  # past the 20 a digest's notification lists
            payload = {**EVENT_TYPES["review_liked"].sample_payload(), "liked_by": liker}
            recipients = {"users": [{"user_id": user, "email": f"{user}@example.com"}]}
            event = {"event_type": "review_liked", "payload": payload, "recipients": recipients, "channels": ["email"]}
            status, accepted = live_stack.call("POST", "/api/v1/events", event)
            assert status == 202, accepted
            members += accepted["job_ids"]
        digest = job_status(live_stack, members[0], "DIGESTED")["digest_job_id"]
        job_status(live_stack, digest, "SENT")
    finally:
        live_stack.call("DELETE", "/api/v1/digest-rules/review_liked")

    enter_key(page)
    page.goto(f"{live_stack.api}/admin/#/notifications/{digest}")
    listed = page.get_by_role("region", name="Digest of 22 notifications")
    expect(listed.get_by_role("link")).to_have_count(20)
    shot(page, "digest")
    listed.get_by_role("button", name="More members").click()  # the rest, through the members' cursor
    for job_id in members:
        expect(listed.get_by_role("link", name=job_id)).to_be_visible()
    expect(listed.get_by_role("button", name="More members")).to_have_count(0)
    listed.get_by_role("link", name=members[1]).click()
    expect(page).to_have_url(re.compile(f"#/notifications/{members[1]}$"))
    page.get_by_role("link", name=digest).click()  # "Sent in digest"
    expect(page.get_by_role("region", name="Digest of 22 notifications")).to_be_visible()
